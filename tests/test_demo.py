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
    output = demo_output.split("A checkout through", 1)[0]
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
    """The demo's output about the checkout through ``provider``'s sandbox."""
    section = output.split(f"A checkout through {provider}'s sandbox", 1)[1]
    return section.split("A checkout through", 1)[0]


def rows_of(section: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in section.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and len(cells) == 8
    }


@pytest.mark.parametrize(
    ("provider", "first"), [("WooshPay", "webhook"), ("MilkyPay", "return"), ("XPAY", "webhook")]
)
def test_each_checkout_is_split_submitted_paid_on_the_page_and_completed_once(
    demo_output: str, provider: str, first: str
) -> None:
    section = checkout_section(demo_output, provider)
    words = " ".join(section.split())  # the console wraps long lines
    rows = rows_of(section)

    # Options from both gateways, asked at once.
    assert re.search(r"payment options for the cart: dummy: [^;]*gift_card; \w+: ", words)
    # The gift card is authorized at submit; the provider's page waits for the customer.
    assert rows["submit: gift card"][:3] == ["succeeded", "authorized", "20.00"]
    assert rows["submit: hosted page"][:3] == ["requires_action", "requires_action", "29.99"]
    paid = rows[f"paid; the {first} first"]
    assert paid[0] == "succeeded"
    order = re.search(r"order (ord_\w+): completed by the (webhook|customer's return)", words)
    assert order is not None, words
    assert order.group(2) == ("webhook" if first == "webhook" else "customer's return")
    # The customer lands on the merchant's success page, with that order.
    assert "landed on https://shop.example/order/thanks?checkout=chk_" in words
    assert f"&order={order.group(1)}" in words


@pytest.mark.parametrize(
    ("provider", "totals"),
    [
        ("WooshPay", "captured 10.00 USD, refunded 5.00 USD, the rest of the authorization"),
        ("MilkyPay", "captured 10.00 USD, refunded 5.00 USD, the rest of the authorization"),
        ("XPAY", "captured 29.99 UAH, refunded 5.00 UAH"),
    ],
)
def test_each_order_is_then_captured_and_refunded_in_part_and_agrees_with_the_provider(
    demo_output: str, provider: str, totals: str
) -> None:
    section = checkout_section(demo_output, provider)
    words = " ".join(section.split())
    rows = rows_of(section)

    if provider == "XPAY":
        assert "capture (partial)" not in rows  # XPAY sells: nothing to capture
        assert rows["paid; the webhook first"][:4] == ["succeeded", "captured", "29.99", "29.99"]
    else:
        assert rows["capture (partial)"][:5] == ["succeeded", "captured", "10.00", "10.00", "0.00"]
    assert rows["refund (partial)"][0] == "succeeded"
    counts = re.search(
        r"the web app took (\d+) events from the provider: (\d+) moved a transaction, "
        r"(\d+) confirmed what was already recorded, (\d+) repeated",
        words,
    )
    assert counts is not None, words
    events, moved, confirmed, repeated = map(int, counts.groups())
    assert events >= 2 and moved + confirmed + repeated == events
    if provider == "MilkyPay":  # the return settled it: the webhooks only confirmed
        assert moved == 0
    assert "ledger = provider: pay_" in words and totals in words
    assert "the gift card holds 20.00" in words


def test_the_demo_runs_with_a_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything the demo talks to is on loopback: a proxy must not be asked to carry it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert "ledger = provider" in run_demo()
