"""`paycore demo`: the lifecycle runs against the sandbox and prints the provider's totals."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from paycore.cli import cli


def run_demo() -> str:
    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def demo_output() -> str:
    """One run of the demo, read by the tests of what it shows."""
    return run_demo()


def test_the_demo_writes_payments_ahead_and_agrees_with_the_provider(demo_output: str) -> None:
    output = demo_output.split("A hosted checkout", 1)[0]
    rows = {
        cells[0]: cells[1:]
        for line in output.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and len(cells) == 8
    }
    # transaction, payment, amount, captured, refunded, attempts
    assert rows["authorize"][:5] == ["succeeded", "authorized", "100.00", "0.00", "0.00"]
    assert rows["capture (partial)"][:5] == [
        "succeeded",
        "partially_captured",
        "40.00",
        "40.00",
        "0.00",
    ]
    # Replayed from the ledger: same totals, no second capture.
    assert rows["same capture, same key"][:5] == rows["capture (partial)"][:5]
    assert rows["refund (partial)"][3:5] == ["40.00", "15.00"]
    # The sandbox cut the connection after capturing; the retry under the same key
    # got the first answer, so 35.00 was captured once.
    assert rows["capture (dropped, retried)"][3:6] == ["75.00", "15.00", "2"]
    assert rows["void the rest"][:3] == ["succeeded", "partially_refunded", "25.00"]
    assert rows["authorize (2nd card)"][:2] == ["declined: insufficient_funds", "failed"]
    words = " ".join(output.split())  # the console wraps long lines
    assert "6 sent by the sandbox, 6 delivered and verified" in words
    # Every event confirms what the ledger wrote ahead from the API's answers.
    assert "carrying 6 events: 0 moved a transaction, 6 confirmed what was already" in words
    assert "ledger = provider" in output and "every invariant holds" in output


def checkout_section(output: str, provider: str) -> str:
    """The demo's output about the hosted checkout through ``provider``'s sandbox."""
    section = output.split(f"A hosted checkout through {provider}'s sandbox", 1)[1]
    return section.split("A hosted checkout", 1)[0]


def rows_of(section: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in section.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and len(cells) == 8
    }


@pytest.mark.parametrize("provider", ["WooshPay", "MilkyPay"])
def test_the_demo_authorizes_on_a_hosted_page_then_captures_and_refunds_in_part(
    demo_output: str, provider: str
) -> None:
    rows = rows_of(checkout_section(demo_output, provider))

    assert rows["hosted page opened"][:3] == ["requires_action", "requires_action", "49.99"]
    assert rows["customer paid, webhook"][:2] == ["succeeded", "authorized"]
    # Both capture once: the rest of the authorization is released.
    assert rows["capture (partial)"][:5] == ["succeeded", "captured", "30.00", "30.00", "0.00"]
    assert rows["refund (partial)"][:5] == [
        "succeeded",
        "partially_refunded",
        "10.00",
        "30.00",
        "10.00",
    ]


def test_the_demo_sells_on_xpays_page_then_refunds_in_part(demo_output: str) -> None:
    rows = rows_of(checkout_section(demo_output, "XPAY"))

    assert rows["hosted page opened"][:3] == ["requires_action", "requires_action", "49.99"]
    assert rows["customer paid, webhook"][:4] == ["succeeded", "captured", "49.99", "49.99"]
    assert "capture (partial)" not in rows  # XPAY sells: nothing to capture
    assert rows["refund (partial)"][:5] == [
        "succeeded",
        "partially_refunded",
        "10.00",
        "49.99",
        "10.00",
    ]


@pytest.mark.parametrize(
    ("provider", "totals"),
    [
        ("WooshPay", "captured 30.00 USD, refunded 10.00 USD"),
        ("MilkyPay", "captured 30.00 USD, refunded 10.00 USD"),
        ("XPAY", "captured 49.99 UAH, refunded 10.00 UAH"),
    ],
)
def test_each_hosted_checkout_is_settled_by_the_providers_webhook_and_agrees_with_it(
    demo_output: str, provider: str, totals: str
) -> None:
    section = checkout_section(demo_output, provider)

    # The payment was settled by a webhook; every other event confirmed the ledger.
    words = " ".join(section.split())  # the console wraps long lines
    counts = re.search(
        r"(\d+) delivered and verified, carrying (\d+) events: (\d+) moved a transaction, "
        r"(\d+) confirmed what was already recorded, (\d+) repeated",
        words,
    )
    assert counts is not None, section
    delivered, events, moved, confirmed, repeated = map(int, counts.groups())
    # At least the payment's and the refund's; none left unaccounted for.
    assert delivered >= 2 and moved >= 1 and moved + confirmed + repeated == events
    assert "ledger = provider" in section
    assert totals in words


def test_the_demo_runs_with_a_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything the demo talks to is on loopback: a proxy must not be asked to carry it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert "ledger = provider" in run_demo()
