"""``paycore oms run`` and ``paycore oms expiring`` on a SQLite ledger and a served dummy
sandbox; ``--celery`` with a real worker process and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from paycore.cli import cli
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import Instruction
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.settings_files import write_settings

CARD = PaymentMethod(type="card", token="tok_visa")


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env={"COLUMNS": "200", **(env or {})})


def eur(minor_units: int) -> Money:
    return Money(minor_units, "EUR")


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = Store.connect(url)
    store.upgrade()
    store.close()
    return url


@pytest.fixture
def settings_file(
    tmp_path: Path,
    ledger_url: str,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
) -> Path:
    config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    return write_settings(tmp_path / "paycore.toml", ledger_url, config)


@pytest.fixture
def services(
    ledger_url: str, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    services = PaymentTransactionServices(
        Store.connect(ledger_url), {"dummy": paycore_dummy_gateway}, hooks=None
    )
    yield services
    services.close()


def authorized_order(
    services: PaymentTransactionServices, order_id: str, amount: int = 1000
) -> str:
    payment = services.create_payment(
        eur(amount), gateway="dummy", payment_method=CARD, owner=order_id
    )
    assert services.authorize(payment.id).succeeded
    return payment.id


def capture_line(order_id: str, reference: str, amount: int = 1000) -> str:
    instruction = Instruction(
        kind="capture", order_id=order_id, reference=reference, amount=eur(amount)
    )
    return json.dumps(instruction.as_json())


def batch_file(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def captures_at(sandbox: DummySandbox) -> int:
    return sum(
        1
        for payment in sandbox.snapshot()["payments"]
        for operation in payment["operations"]
        if operation["type"] == "capture"
    )


# -- run -------------------------------------------------------------------------------


def test_run_carries_out_a_file_prints_progress_and_the_summary_and_exits_0(
    settings_file: Path,
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    tmp_path: Path,
) -> None:
    for order in ("ord-1", "ord-2", "ord-3"):
        authorized_order(services, order)
    path = batch_file(
        tmp_path / "batch.jsonl",
        capture_line("ord-1", "shp-1"),
        "",
        capture_line("ord-2", "shp-2"),
        capture_line("ord-3", "shp-3", 400),
    )

    result = run("--config", str(settings_file), "oms", "run", str(path), "--concurrency", "2")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "batch of 3 lines: started"
    assert "3/3 (100%)" in result.stdout
    assert lines[-1].startswith("3 instructions: 3 succeeded, 0 skipped, 0 declined")
    assert captures_at(paycore_dummy_sandbox) == 3

    again = run("--config", str(settings_file), "oms", "run", str(path))

    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-1].startswith("3 instructions: 0 succeeded, 3 skipped")
    assert captures_at(paycore_dummy_sandbox) == 3


def test_bad_lines_and_instructions_that_fail_are_listed_by_line_and_exit_1(
    settings_file: Path,
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    tmp_path: Path,
) -> None:
    authorized_order(services, "ord-1")
    path = batch_file(
        tmp_path / "batch.jsonl",
        capture_line("ord-1", "shp-1", 600),
        "{oops",
        capture_line("nowhere", "shp-2"),
        '{"op": "refund", "order_id": "ord-1", "return_id": "r-1", "amount": -5, '
        '"currency": "EUR"}',
        capture_line("ord-1", "shp-3", 400),
    )

    result = run("--config", str(settings_file), "oms", "run", str(path))

    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "line 2: rejected: not JSON" in out
    assert "line 4: rejected: amount must be positive, got -0.05 EUR" in out
    assert "line 3: capture:shp-2 of order nowhere: failed: " in out
    assert "rejected lines (skipped):" in out and "not done:" in out
    assert out.splitlines()[-1].startswith(
        "3 instructions: 2 succeeded, 0 skipped, 0 declined, 1 failed"
    )
    assert "2 rejected" in out.splitlines()[-1]
    assert captures_at(paycore_dummy_sandbox) == 2


def test_run_reads_standard_input_for_dash(
    settings_file: Path, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    authorized_order(services, "ord-1")

    result = run(
        "--config", str(settings_file), "oms", "run", "-", input=capture_line("ord-1", "s") + "\n"
    )

    assert result.exit_code == 0, result.output
    assert "1 instruction: 1 succeeded" in result.stdout
    assert captures_at(paycore_dummy_sandbox) == 1


def test_a_dry_run_says_what_it_would_do_and_sends_nothing(
    settings_file: Path,
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    tmp_path: Path,
) -> None:
    authorized_order(services, "ord-1")
    path = batch_file(tmp_path / "batch.jsonl", capture_line("ord-1", "shp-1", 300))
    before = len(paycore_dummy_sandbox.requests_received)

    result = run("--config", str(settings_file), "oms", "run", str(path), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "dry run: nothing is sent or written" in result.stdout
    assert "dry run: 1 instruction: 1 to do, 0 done before" in result.stdout
    assert len(paycore_dummy_sandbox.requests_received) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "0 is not in the range 1<=x<=1024"),
        (["--celery", "--dry-run"], "--dry-run plans in this process; leave out --celery"),
    ],
)
def test_usage_mistakes_exit_2(
    settings_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    path = batch_file(tmp_path / "batch.jsonl", capture_line("ord-1", "s"))

    result = run("--config", str(settings_file), "oms", "run", str(path), *args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_missing_file_is_a_usage_mistake(settings_file: Path, tmp_path: Path) -> None:
    result = run("--config", str(settings_file), "oms", "run", str(tmp_path / "nope.jsonl"))

    assert result.exit_code == 2
    assert "nope.jsonl" in result.stderr and "No such file" in result.stderr


def test_a_ledger_not_migrated_is_refused_before_anything_runs(
    tmp_path: Path, paycore_dummy_sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> None:
    config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    settings = write_settings(tmp_path / "p.toml", f"sqlite:///{tmp_path / 'new.db'}", config)
    path = batch_file(tmp_path / "batch.jsonl", capture_line("ord-1", "s"))

    result = run("--config", str(settings), "oms", "run", str(path))

    assert result.exit_code == 1
    assert "is at revision none" in result.stderr and "paycore db upgrade" in result.stderr


def test_run_needs_a_gateway(tmp_path: Path, ledger_url: str) -> None:
    settings = write_settings(tmp_path / "p.toml", ledger_url, None)
    path = batch_file(tmp_path / "batch.jsonl", capture_line("ord-1", "s"))

    result = run("--config", str(settings), "oms", "run", str(path))

    assert result.exit_code == 1
    assert "no gateway is configured" in result.stderr


# -- expiring --------------------------------------------------------------------------


def test_expiring_lists_the_authorizations_still_holding_money_soonest_first(
    settings_file: Path, services: PaymentTransactionServices
) -> None:
    first = authorized_order(services, "ord-1")
    second = authorized_order(services, "ord-2", 2500)
    captured = authorized_order(services, "ord-3")
    assert services.capture(captured).succeeded

    soon = run("--config", str(settings_file), "oms", "expiring")
    week = run("--config", str(settings_file), "oms", "expiring", "--within", "8d")

    assert soon.exit_code == 0, soon.output
    assert soon.stdout.strip() == "No authorization expires within 2 days."
    assert week.exit_code == 0, week.output
    rows = [line for line in week.stdout.splitlines() if "pay_" in line]
    assert [row.split()[1] for row in rows] == [first, second]
    assert "ord-2" in rows[1] and "25.00 EUR" in rows[1] and "6 d 23 h" in rows[1]
    assert week.stdout.splitlines()[-1] == "2 authorizations expiring within 8 days"


def test_expiring_takes_a_duration(settings_file: Path) -> None:
    result = run("--config", str(settings_file), "oms", "expiring", "--within", "soon")

    assert result.exit_code == 2
    assert "is not a duration" in result.stderr


# -- on Celery ---------------------------------------------------------------------------


def test_run_on_celery_carries_out_the_file_on_the_workers(
    tmp_path: Path,
    ledger_url: str,
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
) -> None:
    from tests.oms.celery_support import Deployment, redis_url

    broker = redis_url()
    config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    (tmp_path / "celery").mkdir()
    deployment = Deployment(
        tmp_path / "celery", broker_url=broker, database_url=ledger_url, gateway_config=config
    )
    try:
        deployment.start(1)
        for order in ("ord-1", "ord-2"):
            authorized_order(services, order)
        path = batch_file(
            tmp_path / "batch.jsonl",
            capture_line("ord-1", "s-1"),
            "nope",
            capture_line("ord-2", "s-2"),
        )

        result = run("oms", "run", str(path), "--celery", env=deployment.env)
    finally:
        deployment.close()

    assert result.exit_code == 1, result.output + deployment.logs()  # the rejected line
    assert "line 2: rejected: not JSON" in result.stdout
    assert "2 instructions: 2 succeeded" in result.stdout
    assert captures_at(paycore_dummy_sandbox) == 2
