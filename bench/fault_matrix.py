"""The fault matrix of every gateway: each money-moving operation under each fault.

Runs the matrix part of the gateway contract (`paycore.testing.contract_faults`) for
the dummy and the three first-party plugins (MilkyPay with Paytone, XPAY, WooshPay) in
one pytest run, collects the cell each test records, and prints them: the transaction's
status after the call (``failed`` where nothing was sent, ``unknown`` otherwise), after
reconciliation, and what the provider's own state says was done. A cell the gateway's
capabilities rule out is listed as skipped, with the reason.

Exits with status 1 when any cell is wrong (or none ran), so `make bench` fails on it.

    python bench/fault_matrix.py [PYTEST_ARGS...]     # e.g. -x
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = (
    "tests/gateways/test_dummy_contract.py",
    "plugins/milkypay/tests/test_contract.py",
    "plugins/xpay/tests/test_contract.py",
    "plugins/wooshpay/tests/test_contract.py",
)
MATRIX_TEST = "test_a_fault_leaves_the_ledger_settled_as_the_provider_did"
ROW_PROPERTY = "fault_matrix"  # paycore.testing.contract_faults.ROW_PROPERTY
VERDICTS = {"passed": "[green]right[/]", "failed": "[bold red]WRONG[/]", "skipped": "[dim]skip[/]"}


class MatrixCollector:
    """A pytest plugin keeping, per matrix test, its cell, outcome and why."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, Any]] = {}

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "fault" not in params or "operation" not in params:
            return
        self.cells[item.nodeid] = {
            "gateway": getattr(item.cls, "gateway_name", "?"),
            "operation": str(params["operation"]),
            "fault": str(params["fault"]),
            "outcome": "not run",
            "why": "",
        }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self.cells.get(report.nodeid)
        if cell is None:
            return
        for name, value in report.user_properties:
            if name == ROW_PROPERTY:
                cell.update(json.loads(str(value)))
        if report.when == "call" or report.outcome != "passed":
            if cell["outcome"] in ("not run", "passed"):
                cell["outcome"] = report.outcome
            if report.skipped and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
                cell["why"] = reason.split("' ", 1)[-1]  # without "gateway 'name' "
            elif report.failed:
                cell["why"] = _first_error_line(report)


def _first_error_line(report: pytest.TestReport) -> str:
    text = str(report.longrepr)
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return (errors[0] if errors else text.splitlines()[-1] if text else "")[:160]


def table(cells: list[dict[str, Any]]) -> Table:
    grid = Table(title="Fault matrix: every operation under every fault, on every attempt")
    for column in ("gateway", "operation", "fault", "attempts"):
        grid.add_column(column, no_wrap=True)
    grid.add_column("after the call")
    for column in ("after reconciliation", "provider", "verdict", "why"):
        grid.add_column(column)
    for cell in cells:
        grid.add_row(
            cell["gateway"],
            cell["operation"],
            cell["fault"],
            str(cell.get("attempts", "")),
            cell.get("after_call", ""),
            cell.get("after_reconcile", ""),
            "; ".join(filter(None, (cell.get("provider", ""), cell.get("made", "")))),
            VERDICTS.get(cell["outcome"], f"[bold red]{cell['outcome']}[/]"),
            cell["why"],
        )
    return grid


def main(extra: list[str]) -> int:
    os.chdir(ROOT)
    collector = MatrixCollector()
    started = time.perf_counter()
    code = pytest.main(
        ["-q", "--no-header", "-p", "no:cacheprovider", "-k", MATRIX_TEST, *CONTRACTS, *extra],
        plugins=[collector],
    )
    elapsed = time.perf_counter() - started
    cells = list(collector.cells.values())
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table(cells))
    counts = dict.fromkeys(("passed", "failed", "skipped", "not run"), 0)
    for cell in cells:
        counts[cell["outcome"]] = counts.get(cell["outcome"], 0) + 1
    console.print(
        f"{counts['passed']} cells right, {counts['failed']} wrong, "
        f"{counts['skipped']} ruled out by capabilities, {counts['not run']} not run; "
        f"{elapsed:.1f} s"
    )
    wrong = counts["failed"] or not counts["passed"] or code not in (0, pytest.ExitCode.OK)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
