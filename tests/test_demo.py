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


def test_the_demo_prints_the_lifecycle_with_the_providers_totals() -> None:
    output = run_demo()
    rows = {
        cells[0]: cells[1:]
        for line in output.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and len(cells) == 7
    }
    # outcome, amount, authorized, captured, refunded
    assert rows["authorize"][:5] == ["approved", "100.00", "100.00", "0.00", "0.00"]
    assert rows["capture 1 (partial)"][:5] == ["approved", "40.00", "100.00", "40.00", "0.00"]
    assert rows["refund (partial)"][:5] == ["approved", "15.00", "100.00", "40.00", "15.00"]
    assert rows["capture 2"][:5] == ["approved", "35.00", "100.00", "75.00", "15.00"]
    assert rows["status of capture 1"][:2] == ["approved", "40.00"]
    assert rows["authorize (2nd card)"][0] == "declined: insufficient_funds"
    assert "5 sent by the sandbox, 5 delivered, 5 verified" in output


def test_the_demo_runs_with_a_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything the demo talks to is on loopback: a proxy must not be asked to carry it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert "5 sent by the sandbox, 5 delivered, 5 verified" in run_demo()
