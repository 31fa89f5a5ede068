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


def test_the_demo_writes_payments_ahead_and_agrees_with_the_provider() -> None:
    output = run_demo().split("A hosted checkout", 1)[0]
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
    assert "6 sent by the sandbox, 6 delivered and verified" in output
    assert "6 confirmed one already recorded" in output
    assert "ledger = provider" in output and "every invariant holds" in output


def test_the_demo_pays_on_a_hosted_checkout_page_settled_by_the_providers_webhook() -> None:
    output = run_demo()
    rows = {
        cells[0]: cells[1:]
        for line in output.split("A hosted checkout", 1)[1].splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and len(cells) == 8
    }

    assert rows["hosted page opened"][:3] == ["requires_action", "requires_action", "49.99"]
    assert rows["customer paid, webhook"][:2] == ["succeeded", "authorized"]
    # WooshPay captures once: the rest of the authorization is released.
    assert rows["capture (partial)"][:5] == ["succeeded", "captured", "30.00", "30.00", "0.00"]
    assert rows["refund (partial)"][:5] == [
        "succeeded",
        "partially_refunded",
        "10.00",
        "30.00",
        "10.00",
    ]
    assert "1 settled a transaction" in output
    assert "captured 30.00 USD, refunded 10.00 USD" in output


def test_the_demo_runs_with_a_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything the demo talks to is on loopback: a proxy must not be asked to carry it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert "ledger = provider" in run_demo()
