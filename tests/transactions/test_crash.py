"""A process killed in the middle of a capture leaves nothing reconciliation cannot settle.

A worker (a real process, see `workers`) runs a capture against the same database and
sandbox as the test and is killed with SIGKILL at one of the two moments that matter:

- after the provider accepted the capture and before the outcome was recorded: the
  ledger says ``pending``, the provider says captured. Reconciliation asks the provider
  and records the capture once; nothing is sent again.
- after the capture was written ahead and before it was sent: the ledger says
  ``pending``, the provider knows nothing. Reconciliation fails it only once no attempt
  can still be on its way, and then the payment can be captured again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paycore.errors import PaymentBusy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions import states
from paycore.transactions.model import PaymentStatus, TransactionStatus, TransactionType
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import DEFAULT_GRACE, Reconciler
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.transactions.workers import CaptureJob

WORKERS = Path(__file__).with_name("workers.py")
WORKER_TIMEOUT = 60.0


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
def capture_job(
    database_url: str,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    authorized_payment: Payment,
) -> CaptureJob:
    """A capture of 6.00 of ``authorized_payment`` for a worker, with key ``ship-1``."""
    config = sandbox.gateway_config(paycore_dummy_server.url)
    return CaptureJob(database_url, config, authorized_payment.id, 600, "USD", "ship-1")


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


def run_worker(command: str, job: CaptureJob) -> dict[str, Any]:
    """Run a worker that kills itself; what it said just before."""
    finished = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, str(WORKERS), command, job.as_json()],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    assert finished.returncode == -signal.SIGKILL, finished.stderr
    said: dict[str, Any] = json.loads(finished.stdout)
    return said


def the_capture(services: PaymentTransactionServices, payment: Payment) -> PaymentTransaction:
    (capture,) = [
        t for t in services.list_transactions(payment.id) if t.type is TransactionType.CAPTURE
    ]
    return capture


def capture_posts(sandbox: DummySandbox, payment: Payment) -> int:
    path = f"/v1/payments/{payment.gateway_reference}/captures"
    return sandbox.requests_received.count(("POST", path))


def provider_payment(sandbox: DummySandbox, payment: Payment) -> dict[str, Any]:
    (found,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == payment.gateway_reference]
    return dict(found)


def provider_totals(sandbox: DummySandbox, payment: Payment) -> dict[str, int]:
    """The provider's totals, named as the ledger names them."""
    found = provider_payment(sandbox, payment)
    return {
        "authorized": found["amount"],
        "captured": found["amount_captured"],
        "refunded": found["amount_refunded"],
        "capturable": found["amount_capturable"],
    }


def test_a_capture_killed_after_the_provider_took_it_is_recorded_once_by_reconciliation(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    authorized_payment: Payment,
    capture_job: CaptureJob,
    reconciling: Callable[[Clock], Reconciler],
) -> None:
    payment = authorized_payment

    said = run_worker("capture-and-die", capture_job)

    assert 200 <= said["killed_after"] < 300
    pending = the_capture(services, payment)
    assert pending.status is TransactionStatus.PENDING
    assert services.get_payment(payment.id).captured == Money(0, "USD")
    assert capture_posts(sandbox, payment) == 1
    (taken,) = [
        op for op in provider_payment(sandbox, payment)["operations"] if op["type"] == "capture"
    ]
    assert (taken["reference"], taken["amount"], taken["status"]) == (pending.id, 600, "succeeded")

    # Within the grace period its sender may still be at work: it is left alone.
    clock = Clock(pending.created_at + DEFAULT_GRACE - timedelta(seconds=1))
    assert reconciling(clock).run().rows == ()
    assert the_capture(services, payment).status is TransactionStatus.PENDING

    clock.now = pending.created_at + DEFAULT_GRACE + timedelta(seconds=1)
    (row,) = reconciling(clock).run().rows
    assert (row.transaction_id, row.before, row.after) == (
        pending.id,
        TransactionStatus.PENDING,
        TransactionStatus.SUCCEEDED,
    )

    settled = the_capture(services, payment)
    assert settled.status is TransactionStatus.SUCCEEDED
    assert settled.amount == Money(600, "USD")
    after = services.get_payment(payment.id)
    assert after.status is PaymentStatus.PARTIALLY_CAPTURED
    assert after.totals() == provider_totals(sandbox, payment)
    assert states.problems(after, services.list_transactions(payment.id)) == []
    # The caller retrying with its key gets the capture, and nothing is sent again.
    retried = services.capture(payment.id, Money(600, "USD"), idempotency_key="ship-1")
    assert (retried.id, retried.status) == (pending.id, TransactionStatus.SUCCEEDED)
    assert capture_posts(sandbox, payment) == 1


def test_a_capture_killed_before_it_was_sent_fails_once_nothing_can_arrive_and_is_sent_again(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    paycore_dummy_gateway: DummyGateway,
    authorized_payment: Payment,
    capture_job: CaptureJob,
    reconciling: Callable[[Clock], Reconciler],
) -> None:
    payment = authorized_payment

    said = run_worker("begin-and-die", capture_job)

    assert said["action"] == "send"
    pending = the_capture(services, payment)
    assert (pending.id, pending.status) == (said["transaction_id"], TransactionStatus.PENDING)
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

    # Definitely not done: the same request captures now, under the same transaction.
    again = services.capture(payment.id, Money(600, "USD"), idempotency_key="ship-1")
    assert (again.id, again.status) == (pending.id, TransactionStatus.SUCCEEDED)
    assert capture_posts(sandbox, payment) == 1
    after = services.get_payment(payment.id)
    assert after.captured == Money(600, "USD")
    assert after.totals() == provider_totals(sandbox, payment)
    assert states.problems(after, services.list_transactions(payment.id)) == []
