"""The notification hooks: called after commit, with keywords, once per change, and
delivered from the outbox when the process that committed the change never called them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pluggy
import pytest

from paycore.errors import InvalidAmount
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.hookspecs import hookimpl
from paycore.money import Money
from paycore.plugins import new_hook_manager
from paycore.sandbox.server import SandboxServer
from paycore.transactions.ledger import Ledger, Settlement
from paycore.transactions.model import (
    GatewayEvent,
    Outcome,
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

S = TransactionStatus
P = PaymentStatus


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


class Observer:
    """Records each notification with what another connection sees at that moment."""

    def __init__(self, database_url: str) -> None:
        self.store = Store.connect(database_url)
        self.calls: list[dict[str, Any]] = []

    def _committed(self, payment: Payment, transaction: PaymentTransaction | None) -> Any:
        with self.store.reading() as session:
            seen = session.payment(payment.id)
            seen_transaction = None if transaction is None else session.transaction(transaction.id)
        return seen, seen_transaction

    @hookimpl
    def paycore_transaction_recorded(
        self, payment: Payment, transaction: PaymentTransaction
    ) -> None:
        seen, seen_transaction = self._committed(payment, transaction)
        self.calls.append(
            {
                "hook": "recorded",
                "payment": payment,
                "transaction": transaction,
                "seen": seen,
                "seen_transaction": seen_transaction,
            }
        )

    @hookimpl
    def paycore_payment_status_changed(
        self,
        payment: Payment,
        previous_status: PaymentStatus,
        transaction: PaymentTransaction | None,
    ) -> None:
        seen, seen_transaction = self._committed(payment, transaction)
        self.calls.append(
            {
                "hook": "status_changed",
                "payment": payment,
                "previous_status": previous_status,
                "transaction": transaction,
                "seen": seen,
                "seen_transaction": seen_transaction,
            }
        )

    def summary(self) -> list[tuple[Any, ...]]:
        """(hook, transaction type and status, previous → new payment status) per call."""
        rows: list[tuple[Any, ...]] = []
        for call in self.calls:
            transaction = call["transaction"]
            what = None if transaction is None else (transaction.type, transaction.status)
            if call["hook"] == "recorded":
                rows.append(("recorded", *what))
            else:
                rows.append(("status_changed", call["previous_status"], call["payment"].status))
        return rows


@pytest.fixture
def manager() -> pluggy.PluginManager:
    return new_hook_manager(load_entry_points=False)


@pytest.fixture
def observer(database_url: str, manager: pluggy.PluginManager) -> Iterator[Observer]:
    observer = Observer(database_url)
    manager.register(observer)
    yield observer
    observer.store.close()


@pytest.fixture
def hooked(
    store: Store, paycore_dummy_gateway: DummyGateway, manager: pluggy.PluginManager
) -> Iterator[PaymentTransactionServices]:
    """Services whose hooks are ``manager``'s."""
    services = PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway}, hooks=manager.hook
    )
    yield services
    services.close()


def card_payment(services: PaymentTransactionServices, token: str = "tok_visa") -> Payment:
    return services.create_payment(
        usd(1000), gateway="dummy", payment_method=PaymentMethod(type="card", token=token)
    )


def test_hooks_run_after_commit_and_see_what_another_connection_sees(
    hooked: PaymentTransactionServices, observer: Observer
):
    payment = card_payment(hooked)

    authorized = hooked.authorize(payment.id)

    # pluggy refuses positional arguments: being called at all shows the keywords.
    recorded, changed = observer.calls
    assert recorded["hook"] == "recorded"
    assert recorded["transaction"] == recorded["seen_transaction"] == authorized
    assert recorded["payment"] == recorded["seen"] == hooked.get_payment(payment.id)
    assert recorded["seen"].status is P.AUTHORIZED
    assert changed["hook"] == "status_changed"
    assert changed["previous_status"] is P.NEW
    assert changed["payment"] == changed["seen"]
    assert changed["seen"].status is P.AUTHORIZED
    assert changed["transaction"] == authorized


def test_hooks_are_called_once_per_change(hooked: PaymentTransactionServices, observer: Observer):
    payment = card_payment(hooked)

    hooked.authorize(payment.id)
    hooked.capture(payment.id, usd(300))
    hooked.capture(payment.id, usd(200))  # totals change, the status does not
    hooked.capture(payment.id, usd(500))
    hooked.refund(payment.id, usd(1000))

    assert observer.summary() == [
        ("recorded", TransactionType.AUTHORIZE, S.SUCCEEDED),
        ("status_changed", P.NEW, P.AUTHORIZED),
        ("recorded", TransactionType.CAPTURE, S.SUCCEEDED),
        ("status_changed", P.AUTHORIZED, P.PARTIALLY_CAPTURED),
        ("recorded", TransactionType.CAPTURE, S.SUCCEEDED),
        ("recorded", TransactionType.CAPTURE, S.SUCCEEDED),
        ("status_changed", P.PARTIALLY_CAPTURED, P.CAPTURED),
        ("recorded", TransactionType.REFUND, S.SUCCEEDED),
        ("status_changed", P.CAPTURED, P.REFUNDED),
    ]
    assert len({call["transaction"].id for call in observer.calls}) == 5


def test_a_decline_is_recorded_and_fails_the_payment(
    hooked: PaymentTransactionServices, observer: Observer
):
    hooked.authorize(card_payment(hooked, "tok_declined").id)

    assert observer.summary() == [
        ("recorded", TransactionType.AUTHORIZE, S.DECLINED),
        ("status_changed", P.NEW, P.FAILED),
    ]


def test_no_hook_runs_for_the_write_ahead_record_a_replay_or_a_refusal(
    hooked: PaymentTransactionServices, observer: Observer
):
    payment = card_payment(hooked)
    hooked.authorize(payment.id)
    hooked.capture(payment.id, usd(300), idempotency_key="ship-1")
    observer.calls.clear()

    hooked.capture(payment.id, usd(300), idempotency_key="ship-1")  # a replay
    with pytest.raises(InvalidAmount, match="at most"):
        hooked.capture(payment.id, usd(5000))  # refused
    begun = hooked.ledger.begin(
        payment.id, TransactionType.CAPTURE, usd(100), idempotency_key="ship-2"
    )

    assert begun.transaction.status is S.PENDING
    assert observer.calls == []


def test_an_unknown_outcome_is_announced_and_so_is_its_resolution_once(
    store: Store,
    hooked: PaymentTransactionServices,
    observer: Observer,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    manager: pluggy.PluginManager,
):
    payment = card_payment(hooked)
    hooked.authorize(payment.id)
    gateway = DummyGateway.from_config(sandbox.gateway_config(paycore_dummy_server.url))
    with GatewayDriver(gateway, hooks=None, retry=RetryPolicy(max_attempts=1)) as driver:
        unretried = PaymentTransactionServices(store, {"dummy": driver}, hooks=manager.hook)
        sandbox.queue_faults("drop")
        lost = unretried.capture(payment.id, usd(400), idempotency_key="ship-1")
    assert lost.status is S.UNKNOWN
    reference = hooked.get_payment(payment.id).gateway_reference
    event = GatewayEvent(
        gateway="dummy",
        event_id="evt_capture",
        event_type="payment.captured",
        occurred_at=hooked.clock(),
        transaction_type=TransactionType.CAPTURE,
        outcome=Outcome.APPROVED,
        gateway_reference=reference,
        transaction_id=lost.id,
        amount=usd(400),
    )

    hooked.apply_event("dummy", event)  # the webhook settles it first
    hooked.apply_event("dummy", event)  # delivered again
    again = hooked.capture(payment.id, usd(400), idempotency_key="ship-1")  # the caller retries

    assert again.status is S.SUCCEEDED
    assert observer.summary()[2:] == [
        ("recorded", TransactionType.CAPTURE, S.UNKNOWN),
        ("recorded", TransactionType.CAPTURE, S.SUCCEEDED),
        ("status_changed", P.AUTHORIZED, P.PARTIALLY_CAPTURED),
    ]


def test_a_failing_hook_is_logged_and_the_result_stands(
    hooked: PaymentTransactionServices,
    manager: pluggy.PluginManager,
    caplog: pytest.LogCaptureFixture,
):
    class Broken:
        @hookimpl
        def paycore_payment_status_changed(self, payment: Payment) -> None:
            raise RuntimeError("the warehouse is down")

    manager.register(Broken())
    payment = card_payment(hooked)

    with caplog.at_level(logging.ERROR, logger="paycore.hooks"):
        authorized = hooked.authorize(payment.id)

    assert authorized.status is S.SUCCEEDED
    assert hooked.get_payment(payment.id).status is P.AUTHORIZED
    (logged,) = [r for r in caplog.records if r.name == "paycore.hooks"]
    assert "paycore_payment_status_changed" in logged.getMessage()
    assert logged.exc_info is not None and "warehouse" in str(logged.exc_info[1])
    # The next operation is not affected either.
    assert hooked.capture(payment.id).status is S.SUCCEEDED


def test_a_notification_left_in_the_outbox_is_delivered_later_exactly_once(
    store: Store,
    hooked: PaymentTransactionServices,
    observer: Observer,
    manager: pluggy.PluginManager,
):
    payment = card_payment(hooked)
    hooked.authorize(payment.id)
    hooked.ledger.outbox.flush()  # what its timer does within seconds of delivering
    observer.calls.clear()
    # A process records a capture's outcome, then dies before calling the hooks.
    begun = hooked.ledger.begin(payment.id, TransactionType.CAPTURE, usd(300), idempotency_key="k")
    assert begun.request is not None
    driver = hooked.drivers["dummy"]
    answer = driver.run(driver.gateway.capture(begun.request), operation="capture")
    committed = hooked.ledger.record(begun.transaction.id, Settlement.from_result(answer))
    assert len(committed.outbox) == 1  # one entry: both hooks are told from it
    assert observer.calls == []

    # Reconciliation, in another process: not while the first may still deliver them.
    reconciler = Ledger(store, hooked.gateways, hooks=manager.hook)
    assert reconciler.outbox.redeliver(older_than=timedelta(minutes=1)) == 0
    assert observer.calls == []
    delivered = reconciler.outbox.redeliver(older_than=timedelta(0))
    again = reconciler.outbox.redeliver(older_than=timedelta(0))

    assert (delivered, again) == (2, 0)
    assert observer.summary() == [
        ("recorded", TransactionType.CAPTURE, S.SUCCEEDED),
        ("status_changed", P.AUTHORIZED, P.PARTIALLY_CAPTURED),
    ]
    assert observer.calls[0]["transaction"] == committed.transaction
    assert observer.calls[1]["payment"] == committed.payment


def test_notifications_delivered_in_process_are_not_delivered_again(
    hooked: PaymentTransactionServices, observer: Observer
):
    hooked.authorize(card_payment(hooked).id)

    assert hooked.ledger.outbox.redeliver(older_than=timedelta(0)) == 0
    assert len(observer.calls) == 2
