"""``paycore reconcile`` on a SQLite ledger and a served dummy sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from paycore.cli import cli
from paycore.gateways.attempts import RetryPolicy
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod, TransactionStatus
from paycore.transactions.records import PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.settings_files import write_settings


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


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
def past_services(
    ledger_url: str, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    """Services on the same ledger whose clock reads ten minutes ago: what they leave
    unresolved is past the grace period when the command runs."""
    started = datetime.now(UTC) - timedelta(minutes=10)
    ticks = iter(range(1_000_000))

    def ten_minutes_ago() -> datetime:
        return started + timedelta(milliseconds=next(ticks))

    driver = GatewayDriver(paycore_dummy_gateway, hooks=None, retry=RetryPolicy(max_attempts=1))
    services = PaymentTransactionServices(
        Store.connect(ledger_url), {"dummy": driver}, hooks=None, clock=ten_minutes_ago
    )
    yield services
    services.close()


def unknown_capture(
    services: PaymentTransactionServices, sandbox: DummySandbox
) -> PaymentTransaction:
    payment = services.create_payment(
        Money(2500, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_visa"),
    )
    assert services.authorize(payment.id).succeeded
    sandbox.queue_faults("drop")
    capture = services.capture(payment.id)
    assert capture.status is TransactionStatus.UNKNOWN
    return capture


def bank_transfer(services: PaymentTransactionServices) -> PaymentTransaction:
    payment = services.create_payment(
        Money(1500, "EUR"), gateway="dummy", payment_method=PaymentMethod(type="bank_transfer")
    )
    sale = services.sale(payment.id)
    assert sale.status is TransactionStatus.PROCESSING
    return sale


def row_of(result: Result, transaction: PaymentTransaction) -> str:
    (line,) = [line for line in result.stdout.splitlines() if transaction.id in line]
    return line


def test_reconcile_shows_what_it_resolved_and_exits_1_while_some_stay_unresolved(
    settings_file: Path,
    past_services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
) -> None:
    capture = unknown_capture(past_services, paycore_dummy_sandbox)
    sale = bank_transfer(past_services)
    # Their hooks ran: drop the delivered outbox entries, as their next write would.
    past_services.ledger.outbox.flush()
    requests = len(paycore_dummy_sandbox.requests_received)

    dry = run("--config", str(settings_file), "reconcile", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert "unknown" in row_of(dry, capture) and "25.00 USD" in row_of(dry, capture)
    assert "processing" in row_of(dry, sale)
    assert dry.stdout.splitlines()[-1] == (
        "dry run: 2 transactions due for a check; nothing was asked or recorded"
    )
    assert len(paycore_dummy_sandbox.requests_received) == requests

    first = run("--config", str(settings_file), "reconcile")

    assert first.exit_code == 1, first.output
    assert "unknown → succeeded" in row_of(first, capture)
    assert "capture" in row_of(first, capture)
    assert "processing → processing" in row_of(first, sale)
    assert "still processing at the gateway" in row_of(first, sale)
    assert first.stdout.splitlines()[-1] == (
        "2 checked: 1 resolved, 1 still unresolved; 0 hook notifications redelivered"
    )
    assert past_services.get_transaction(capture.id).status is TransactionStatus.SUCCEEDED

    reference = past_services.get_payment(sale.payment_id).gateway_reference
    http.post(
        f"{paycore_dummy_server.url}/_sandbox/payments/{reference}/settle",
        json={"outcome": "succeeded"},
    ).raise_for_status()
    not_yet = run("--config", str(settings_file), "reconcile", "--older-than", "1m")

    assert not_yet.exit_code == 0, not_yet.output
    assert not_yet.stdout == "nothing was due for a check; 0 hook notifications redelivered\n"
    assert past_services.get_transaction(sale.id).status is TransactionStatus.PROCESSING


@pytest.mark.parametrize("duration", ["5x", "1.5h", "-5m", "5"])
def test_reconcile_refuses_a_duration_it_cannot_read(settings_file: Path, duration: str) -> None:
    result = run("--config", str(settings_file), "reconcile", "--older-than", duration)

    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Invalid value for '--older-than': ")
    assert "(30s, 5m, 1h, 2d)" in line


def test_reconcile_with_nothing_due_exits_0(settings_file: Path) -> None:
    result = run("--config", str(settings_file), "reconcile", "--older-than", "2d", "--limit", "5")

    assert result.exit_code == 0, result.output
    assert result.stdout == "nothing was due for a check; 0 hook notifications redelivered\n"


def test_reconcile_without_a_gateway_is_a_one_line_error(tmp_path: Path, ledger_url: str) -> None:
    settings = tmp_path / "empty.toml"
    settings.write_text(f'database_url = "{ledger_url}"\n', encoding="utf-8")

    result = run("--config", str(settings), "reconcile")

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: settings file {settings}: no gateway is configured, so none can be asked; "
        "add a [gateways.NAME] table\n"
    )


def test_reconcile_help_documents_the_exit_status() -> None:
    result = run("reconcile", "--help")

    assert result.exit_code == 0
    assert "--older-than DURATION" in result.stdout
    assert "1  some transactions stay unresolved" in result.stdout


def test_reconcile_completes_the_checkouts_whose_payments_it_settled(
    settings_file: Path,
    past_services: PaymentTransactionServices,
    paycore_dummy_server: SandboxServer,
) -> None:
    from paycore.checkout import Cart, CartItem, CheckoutService, CheckoutStatus

    shop = CheckoutService(past_services, capture="sale")  # a bank transfer is only sold
    price = Money(1500, "EUR")
    cart = Cart(currency="EUR", items=[CartItem(sku="a", name="A", quantity=1, unit_price=price)])
    started = shop.create(cart, owner="customer-1")
    payment = shop.add_payment(
        started.id, price, gateway="dummy", payment_method=PaymentMethod(type="bank_transfer")
    )
    assert shop.submit(started.id).checkout.status is CheckoutStatus.SUBMITTED
    # The bank pays; nobody tells the merchant (no webhook endpoint, no customer back).
    reference = past_services.get_payment(payment.id).gateway_reference
    with httpx.Client(trust_env=False) as http:
        settled = http.post(
            f"{paycore_dummy_server.url}/_sandbox/payments/{reference}/settle",
            json={"outcome": "succeeded"},
        )
    assert settled.status_code == 200, settled.text

    result = run("--config", str(settings_file), "reconcile")

    assert result.exit_code == 0, result.output
    assert "checkouts waiting past the grace period: 1; 1 completed, 0 failed" in result.stdout
    assert shop.get(started.id).status is CheckoutStatus.COMPLETED
