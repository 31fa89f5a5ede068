"""What a process killed in the middle of a capture leaves, while nobody has recovered it.

The gateway contract (`paycore.testing.contract_crash`) kills a worker at each step of
the write-ahead for every gateway and shows that reconciliation and a re-run under
the same key end with the capture done once. These tests look, for the dummy and on
each database, at the time in between, when the dead process's capture is ``pending``:

- it holds the payment: any other mutation gets `PaymentBusy`;
- killed after the provider took it: the provider holds it under paycore's
  transaction id, and reconciliation leaves it alone during the grace period (its
  sender might still be at work);
- killed before it was sent: the provider has no record of it, and reconciliation
  fails it only once no attempt could still reach the provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from paycore.errors import PaymentBusy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.testing.contract_crash import run_crash_worker
from paycore.testing.crash_worker import CrashJob, CrashStep, class_path
from paycore.transactions.model import PaymentStatus, TransactionStatus, TransactionType
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import DEFAULT_GRACE, Reconciler
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store


class Clock:
    """The reconciling side's clock, set by the test relative to the crash."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def authorized_payment(
    services: PaymentTransactionServices, new_payment: Callable[..., Payment]
) -> Payment:
    """A payment of 10.00 USD, authorized in full."""
    payment = new_payment(1000)
    assert services.authorize(payment.id).status is TransactionStatus.SUCCEEDED
    return services.get_payment(payment.id)


@pytest.fixture
def killed_at(
    database_url: str,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    authorized_payment: Payment,
) -> Callable[[CrashStep], dict[str, Any]]:
    """Run a worker capturing 6.00 of ``authorized_payment`` (key ``ship-1``) that is
    killed at a step; what it said before dying."""

    def kill(step: CrashStep) -> dict[str, Any]:
        job = CrashJob(
            database_url=database_url,
            gateway_name="dummy",
            gateway_class=class_path(DummyGateway),
            gateway_config=sandbox.gateway_config(paycore_dummy_server.url),
            payment_id=authorized_payment.id,
            operation="capture",
            minor_units=600,
            currency="USD",
            idempotency_key="ship-1",
            step=step,
        )
        return run_crash_worker(job)

    return kill


@pytest.fixture
def reconciling(
    database_url: str, paycore_dummy_gateway: DummyGateway
) -> Iterator[Callable[[Clock], Reconciler]]:
    """A `Reconciler` on services of its own (another process, in production) on ``clock``."""
    opened: list[PaymentTransactionServices] = []

    def build(clock: Clock) -> Reconciler:
        services = PaymentTransactionServices(
            Store.connect(database_url), {"dummy": paycore_dummy_gateway}, hooks=None, clock=clock
        )
        opened.append(services)
        return Reconciler(services)

    yield build
    for services in opened:
        services.close()


def the_capture(services: PaymentTransactionServices, payment: Payment) -> PaymentTransaction:
    (capture,) = [
        t for t in services.list_transactions(payment.id) if t.type is TransactionType.CAPTURE
    ]
    return capture


def capture_posts(sandbox: DummySandbox, payment: Payment) -> int:
    path = f"/v1/payments/{payment.gateway_reference}/captures"
    return sandbox.requests_received.count(("POST", path))


def provider_payment(sandbox: DummySandbox, payment: Payment) -> dict[str, Any]:
    assert payment.gateway_reference is not None
    return sandbox.ledger.get(payment.gateway_reference)


def provider_totals(sandbox: DummySandbox, payment: Payment) -> dict[str, int]:
    """The provider's totals, named as the ledger names them."""
    found = provider_payment(sandbox, payment)
    return {
        "authorized": found["amount"],
        "captured": found["amount_captured"],
        "refunded": found["amount_refunded"],
        "capturable": found["amount_capturable"],
    }


def test_a_capture_killed_after_the_provider_took_it_holds_the_payment_through_the_grace_period(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    authorized_payment: Payment,
    killed_at: Callable[[CrashStep], dict[str, Any]],
    reconciling: Callable[[Clock], Reconciler],
) -> None:
    payment = authorized_payment

    said = killed_at(CrashStep.BEFORE_RECORD)

    assert said["exchange"] == "completed"
    assert 200 <= said["answered"][-1] < 300
    pending = the_capture(services, payment)
    assert pending.status is TransactionStatus.PENDING
    assert services.get_payment(payment.id).captured == Money(0, "USD")
    assert capture_posts(sandbox, payment) == 1
    # The provider knows it by paycore's transaction id: what reconciliation asks by.
    (taken,) = [
        op for op in provider_payment(sandbox, payment)["operations"] if op["type"] == "capture"
    ]
    assert (taken["reference"], taken["amount"], taken["status"]) == (pending.id, 600, "succeeded")
    with pytest.raises(PaymentBusy):
        services.capture(payment.id, Money(100, "USD"), idempotency_key="ship-2")

    # Within the grace period its sender may still be at work: it is left alone.
    clock = Clock(pending.created_at + DEFAULT_GRACE - timedelta(seconds=1))
    assert reconciling(clock).run().rows == ()
    assert the_capture(services, payment).status is TransactionStatus.PENDING
    assert capture_posts(sandbox, payment) == 1


def test_a_capture_killed_before_it_was_sent_fails_only_once_nothing_can_still_arrive(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    paycore_dummy_gateway: DummyGateway,
    authorized_payment: Payment,
    killed_at: Callable[[CrashStep], dict[str, Any]],
    reconciling: Callable[[Clock], Reconciler],
) -> None:
    payment = authorized_payment

    said = killed_at(CrashStep.BEFORE_SEND)

    assert said["sending"] == "POST"
    pending = the_capture(services, payment)
    assert pending.status is TransactionStatus.PENDING
    assert capture_posts(sandbox, payment) == 0
    # Written ahead, it holds the payment: no other mutation may start meanwhile.
    with pytest.raises(PaymentBusy):
        services.capture(payment.id, Money(100, "USD"), idempotency_key="ship-2")

    # The provider has no record of it, but an attempt could still reach the provider
    # while the exchange's time budget runs: it stays pending, checked again later.
    budget = timedelta(seconds=paycore_dummy_gateway.timeouts.total)
    clock = Clock(pending.created_at + budget)
    (early,) = reconciling(clock).run(older_than=timedelta(0)).rows
    assert early.after is TransactionStatus.PENDING
    assert early.next_check_at is not None

    clock.now = max(early.next_check_at, pending.created_at + budget + NOT_FOUND_MARGIN)
    (row,) = reconciling(clock).run().rows
    assert (row.before, row.after) == (TransactionStatus.PENDING, TransactionStatus.FAILED)

    failed = the_capture(services, payment)
    assert (failed.status, failed.failure) == (TransactionStatus.FAILED, "NotFound")
    unchanged = services.get_payment(payment.id)
    assert unchanged.status is PaymentStatus.AUTHORIZED
    assert unchanged.totals() == provider_totals(sandbox, payment)
    assert capture_posts(sandbox, payment) == 0
