"""Webhook events applied to the ledger: each stored once, settling what it reports, and
never moving a payment backwards. The events come from the dummy sandbox's signed
deliveries, verified by the gateway, unless a test needs one the sandbox would not send."""

from __future__ import annotations

from datetime import timedelta

import attrs
import httpx
import pytest
import sqlalchemy as sa

from paycore.errors import InvalidRequest
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.transactions.ledger import Settlement
from paycore.transactions.model import (
    DeclineReason,
    GatewayEvent,
    Outcome,
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.states import problems
from paycore.transactions.store import Store, webhook_events


@pytest.fixture
def paycore_dummy_sandbox(paycore_webhook_receiver: WebhookReceiver) -> DummySandbox:
    """The dummy sandbox, delivering its webhooks to the test's receiver."""
    return DummySandbox(seed=0, webhook_url=paycore_webhook_receiver.url)


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


def delivered_events(
    services: PaymentTransactionServices, receiver: WebhookReceiver, count: int
) -> list[GatewayEvent]:
    """The first ``count`` deliveries, verified and normalised by the dummy gateway."""
    deliveries = receiver.wait_for(count)
    assert len(deliveries) >= count, f"{len(deliveries)} of {count} webhooks arrived"
    driver = services.drivers["dummy"]
    events = []
    for delivery in deliveries[:count]:
        handling = driver.run(
            driver.gateway.handle_webhook(delivery.as_request()), operation="handle_webhook"
        )
        events.extend(handling.events)
    return events


def stored_events(store: Store) -> list[dict[str, object]]:
    with store.reading() as session:
        rows = session.connection.execute(sa.select(webhook_events).order_by(webhook_events.c.id))
        return [dict(row._mapping) for row in rows]


def bank_transfer(services: PaymentTransactionServices, minor_units: int = 2500) -> Payment:
    return services.create_payment(
        usd(minor_units), gateway="dummy", payment_method=PaymentMethod(type="bank_transfer")
    )


def settle(http: httpx.Client, server: SandboxServer, reference: str | None, outcome: str) -> None:
    answer = http.post(
        f"{server.url}/_sandbox/payments/{reference}/settle", json={"outcome": outcome}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("outcome", "transaction_status", "payment_status", "captured"),
    [
        ("succeeded", TransactionStatus.SUCCEEDED, PaymentStatus.CAPTURED, 2500),
        ("failed", TransactionStatus.DECLINED, PaymentStatus.FAILED, 0),
    ],
)
def test_an_event_settles_a_processing_bank_transfer(
    services: PaymentTransactionServices,
    receiver: WebhookReceiver,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    store: Store,
    outcome: str,
    transaction_status: TransactionStatus,
    payment_status: PaymentStatus,
    captured: int,
):
    payment = bank_transfer(services, 2500)
    sale = services.sale(payment.id)
    assert sale.status is TransactionStatus.PROCESSING
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.PROCESSING

    settle(http, paycore_dummy_server, payment.gateway_reference, outcome)
    (event,) = delivered_events(services, receiver, 1)
    result = services.apply_event("dummy", event)

    assert result.disposition == "applied"
    assert result.transaction is not None and result.transaction.id == sale.id
    assert result.transaction.status is transaction_status
    if transaction_status is TransactionStatus.DECLINED:
        assert result.transaction.decline_reason is DeclineReason.PROCESSING_ERROR
    assert result.payment == services.get_payment(payment.id)
    assert result.payment.status is payment_status
    assert result.payment.captured == usd(captured)
    assert problems(result.payment, services.list_transactions(payment.id)) == []
    (stored,) = stored_events(store)
    assert (stored["event_id"], stored["transaction_id"], stored["disposition"]) == (
        event.event_id,
        sale.id,
        "applied",
    )


def test_a_duplicate_event_is_recognised_and_changes_nothing(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    receiver: WebhookReceiver,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    store: Store,
):
    payment = bank_transfer(services)
    services.sale(payment.id)
    sandbox.set_faults(FaultPlan(webhook_next=("duplicate",)))  # the provider sends it twice
    settle(
        http, paycore_dummy_server, services.get_payment(payment.id).gateway_reference, "succeeded"
    )

    first, again = delivered_events(services, receiver, 2)
    assert first.event_id == again.event_id
    applied = services.apply_event("dummy", first)
    before = (services.get_payment(payment.id), services.list_transactions(payment.id))
    duplicate = services.apply_event("dummy", again)

    assert applied.disposition == "applied"
    assert duplicate.disposition == "duplicate"
    assert (duplicate.payment, duplicate.transaction) == (None, None)
    assert (services.get_payment(payment.id), services.list_transactions(payment.id)) == before
    assert len(stored_events(store)) == 1


@pytest.mark.parametrize("outcome", [Outcome.PROCESSING, Outcome.DECLINED])
def test_a_late_event_for_a_settled_transaction_is_ignored_and_moves_nothing_backwards(
    services: PaymentTransactionServices,
    receiver: WebhookReceiver,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    store: Store,
    outcome: Outcome,
):
    payment = bank_transfer(services)
    services.sale(payment.id)
    settle(
        http, paycore_dummy_server, services.get_payment(payment.id).gateway_reference, "succeeded"
    )
    (succeeded,) = delivered_events(services, receiver, 1)
    services.apply_event("dummy", succeeded)
    before = (services.get_payment(payment.id), services.list_transactions(payment.id))
    assert before[0].status is PaymentStatus.CAPTURED
    # What the provider said earlier, delivered late (under its own event id).
    late = attrs.evolve(
        succeeded,
        event_id="evt_late",
        event_type="payment.updated",
        outcome=outcome,
        occurred_at=succeeded.occurred_at - timedelta(minutes=5),
        provider_status=outcome.value,
        decline_reason=DeclineReason.PROCESSING_ERROR if outcome is Outcome.DECLINED else None,
    )

    result = services.apply_event("dummy", late)

    assert result.disposition == "ignored"
    assert (services.get_payment(payment.id), services.list_transactions(payment.id)) == before
    assert [row["disposition"] for row in stored_events(store)] == ["applied", "ignored"]


def test_a_3ds_authorization_is_settled_by_the_webhook_the_customer_triggers(
    services: PaymentTransactionServices,
    receiver: WebhookReceiver,
    http: httpx.Client,
):
    payment = services.create_payment(
        usd(1500), gateway="dummy", payment_method=PaymentMethod(type="card", token="tok_3ds")
    )
    action = services.authorize(payment.id)
    assert action.status is TransactionStatus.REQUIRES_ACTION and action.next_action is not None

    http.post(action.next_action.url, data={"result": "approve"})
    (event,) = delivered_events(services, receiver, 1)
    result = services.apply_event("dummy", event)

    assert result.disposition == "applied"
    assert services.get_transaction(action.id).status is TransactionStatus.SUCCEEDED
    assert services.get_payment(payment.id).status is PaymentStatus.AUTHORIZED


def test_an_event_settles_a_capture_whose_answer_was_lost(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    receiver: WebhookReceiver,
    paycore_dummy_server: SandboxServer,
    store: Store,
):
    gateway = DummyGateway.from_config(sandbox.gateway_config(paycore_dummy_server.url))
    with GatewayDriver(gateway, hooks=None, retry=RetryPolicy(max_attempts=1)) as driver:
        unretried = PaymentTransactionServices(store, {"dummy": driver}, hooks=None)
        payment = services.create_payment(
            usd(1000), gateway="dummy", payment_method=PaymentMethod(type="card", token="tok_visa")
        )
        services.authorize(payment.id)
        sandbox.queue_faults("drop")
        lost = unretried.capture(payment.id, usd(400))
    assert lost.status is TransactionStatus.UNKNOWN

    authorized, captured = delivered_events(services, receiver, 2)
    assert captured.transaction_type is TransactionType.CAPTURE
    # The caller recorded the authorization first: its event finds it settled.
    assert services.apply_event("dummy", authorized).disposition == "ignored"
    result = services.apply_event("dummy", captured)

    assert result.disposition == "applied"
    assert result.transaction is not None and result.transaction.id == lost.id
    assert result.transaction.status is TransactionStatus.SUCCEEDED
    payment = services.get_payment(payment.id)
    assert (payment.status, payment.captured) == (PaymentStatus.PARTIALLY_CAPTURED, usd(400))
    assert services.capture(payment.id).status is TransactionStatus.SUCCEEDED  # no longer busy


def test_an_event_for_a_payment_the_ledger_does_not_know_is_stored_once_as_unmatched(
    services: PaymentTransactionServices, store: Store
):
    event = GatewayEvent(
        gateway="dummy",
        event_id="evt_stranger",
        event_type="payment.captured",
        occurred_at=services.clock(),
        transaction_type=TransactionType.SALE,
        outcome=Outcome.APPROVED,
        gateway_reference="pay_elsewhere",
        transaction_reference="sale_elsewhere",
        amount=usd(700),
    )

    first = services.apply_event("dummy", event)
    again = services.apply_event("dummy", event)

    assert (first.disposition, first.payment, first.transaction) == ("unmatched", None, None)
    assert again.disposition == "duplicate"
    (stored,) = stored_events(store)
    assert (stored["event_id"], stored["disposition"], stored["payment_id"]) == (
        "evt_stranger",
        "unmatched",
        None,
    )


def test_an_event_of_another_gateway_finds_nothing_of_this_one(
    services: PaymentTransactionServices, store: Store, paycore_dummy_gateway: DummyGateway
):
    # Two accounts of one provider: a reference of one never settles the other's payment.
    with PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway, "other": paycore_dummy_gateway}, hooks=None
    ) as both:
        payment = both.create_payment(
            usd(2500), gateway="dummy", payment_method=PaymentMethod(type="bank_transfer")
        )
        sale = both.sale(payment.id)
        reference = both.get_payment(payment.id).gateway_reference
        event = GatewayEvent(
            gateway="dummy",
            event_id="evt_1",
            event_type="payment.captured",
            occurred_at=both.clock(),
            transaction_type=TransactionType.SALE,
            outcome=Outcome.APPROVED,
            gateway_reference=reference,
            transaction_id=sale.id,
            amount=usd(2500),
        )

        assert both.apply_event("other", event).disposition == "unmatched"
        assert both.get_transaction(sale.id).status is TransactionStatus.PROCESSING
        assert both.apply_event("dummy", event).disposition == "applied"


def test_events_for_a_gateway_that_is_not_configured_are_refused(
    services: PaymentTransactionServices, store: Store
):
    event = GatewayEvent(
        gateway="wooshpay",
        event_id="evt_1",
        event_type="payment_intent.succeeded",
        occurred_at=services.clock(),
        transaction_type=TransactionType.SALE,
        outcome=Outcome.APPROVED,
        gateway_reference="pi_1",
    )

    with pytest.raises(InvalidRequest, match="no gateway 'wooshpay'"):
        services.apply_event("wooshpay", event)
    with pytest.raises(InvalidRequest, match="GatewayEvent"):
        services.apply_event("dummy", {"id": "evt_1"})  # type: ignore[arg-type]
    assert stored_events(store) == []


def test_a_capture_that_succeeds_after_the_authorization_expired_still_counts(
    services: PaymentTransactionServices,
):
    payment = services.create_payment(
        usd(1000), gateway="dummy", payment_method=PaymentMethod(type="card", token="tok_visa")
    )
    services.authorize(payment.id)
    ledger = services.ledger
    # The provider accepts a capture and settles it later; a second one comes too late.
    first = ledger.begin(payment.id, TransactionType.CAPTURE, usd(400), idempotency_key="c1")
    ledger.record(first.transaction.id, Settlement(status=TransactionStatus.PROCESSING))
    second = ledger.begin(payment.id, TransactionType.CAPTURE, usd(600), idempotency_key="c2")
    ledger.record(
        second.transaction.id,
        Settlement(
            status=TransactionStatus.DECLINED,
            decline_reason=DeclineReason.AUTHORIZATION_EXPIRED,
            decline_code="authorization_expired",
        ),
    )
    assert services.get_payment(payment.id).status is PaymentStatus.EXPIRED
    event = GatewayEvent(
        gateway="dummy",
        event_id="evt_capture_settled",
        event_type="payment.captured",
        occurred_at=services.clock(),
        transaction_type=TransactionType.CAPTURE,
        outcome=Outcome.APPROVED,
        gateway_reference=services.get_payment(payment.id).gateway_reference,
        transaction_id=first.transaction.id,
        amount=usd(400),
    )

    assert services.apply_event("dummy", event).disposition == "applied"

    payment = services.get_payment(payment.id)
    assert payment.captured == usd(400)
    assert payment.status is PaymentStatus.CAPTURED
    assert problems(payment, services.list_transactions(payment.id)) == []


def _refund_event(
    services: PaymentTransactionServices, payment: Payment, amount: Money, **changes: object
) -> GatewayEvent:
    """The provider's "refund succeeded" naming its own refund id, not paycore's."""
    fields: dict[str, object] = {
        "gateway": "dummy",
        "event_id": "evt_refund_early",
        "event_type": "payment.refunded",
        "occurred_at": services.clock(),
        "transaction_type": TransactionType.REFUND,
        "outcome": Outcome.APPROVED,
        "gateway_reference": services.get_payment(payment.id).gateway_reference,
        "transaction_reference": "op_refund_new",
        "amount": amount,
    }
    return GatewayEvent(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.fixture
def captured(services: PaymentTransactionServices) -> Payment:
    payment = services.create_payment(
        usd(1000), gateway="dummy", payment_method=PaymentMethod(type="card", token="tok_visa")
    )
    services.sale(payment.id)
    return payment


def test_a_webhook_that_overtakes_the_answer_settles_the_transaction_on_its_way(
    services: PaymentTransactionServices, captured: Payment
) -> None:
    ledger = services.ledger
    begun = ledger.begin(captured.id, TransactionType.REFUND, usd(300), idempotency_key="r1")

    result = services.apply_event("dummy", _refund_event(services, captured, usd(300)))

    assert result.disposition == "applied"
    refund = services.get_transaction(begun.transaction.id)
    assert refund.status is TransactionStatus.SUCCEEDED
    assert refund.gateway_transaction_id == "op_refund_new"
    assert services.get_payment(captured.id).refunded == usd(300)
    # The answer arriving afterwards finds it settled and changes nothing.
    late = ledger.record(
        begun.transaction.id,
        Settlement(status=TransactionStatus.SUCCEEDED, gateway_transaction_id="op_refund_new"),
    )
    assert not late.changed
    assert services.get_payment(captured.id).refunded == usd(300)


@pytest.mark.parametrize(
    ("amount", "changes"),
    [
        pytest.param(usd(299), {}, id="another amount"),
        pytest.param(usd(300), {"occurred_at_shift": -120}, id="before it was written"),
    ],
)
def test_an_event_that_cannot_be_the_one_on_its_way_is_unmatched(
    services: PaymentTransactionServices,
    captured: Payment,
    amount: Money,
    changes: dict[str, int],
) -> None:
    begun = services.ledger.begin(
        captured.id, TransactionType.REFUND, usd(300), idempotency_key="r1"
    )
    shift = timedelta(seconds=changes.get("occurred_at_shift", 0))
    event = _refund_event(services, captured, amount, occurred_at=services.clock() + shift)

    assert services.apply_event("dummy", event).disposition == "unmatched"
    assert services.get_transaction(begun.transaction.id).status is TransactionStatus.PENDING
