"""Recording outcomes when several parties report on one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from paycore import plugins
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DEFAULT_API_KEY, DummySandbox
from paycore.hookspecs import hookimpl
from paycore.money import Money
from paycore.transactions.ledger import Settlement
from paycore.transactions.model import (
    DeclineReason,
    GatewayEvent,
    Outcome,
    PaymentMethod,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.states import problems
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")
A_DAY = timedelta(days=1)


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


class ProcessingWebhookFirst:
    """Delivers a "processing" event for a capture before its caller records the answer."""

    def __init__(self) -> None:
        self.services: PaymentTransactionServices | None = None
        self.delivered: list[str] = []

    @hookimpl
    def paycore_gateway_exchange(self, gateway: str, operation: str, transcript: Any) -> None:
        # The driver calls this once the provider answered, before the ledger records it.
        if operation != "capture" or self.services is None:
            return
        services = self.services
        with services.store.reading() as session:
            [pending] = session.unresolved(
                {TransactionStatus.PENDING}, updated_before=services.clock() + A_DAY
            )
        payment = services.get_payment(pending.payment_id)
        result = services.apply_event(
            "dummy",
            GatewayEvent(
                gateway="dummy",
                event_id=f"evt_{pending.id}",
                event_type="payment.capture_processing",
                occurred_at=services.clock(),
                transaction_type=TransactionType.CAPTURE,
                outcome=Outcome.PROCESSING,
                gateway_reference=payment.gateway_reference,
                transaction_id=pending.id,
            ),
        )
        self.delivered.append(result.disposition)


def test_the_callers_answer_counts_even_when_a_processing_event_came_first(
    store: Store, paycore_dummy_gateway: DummyGateway, paycore_dummy_sandbox: DummySandbox
) -> None:
    early = ProcessingWebhookFirst()
    manager = plugins.new_hook_manager(load_entry_points=False)
    manager.register(early)
    with PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway}, hooks=manager.hook
    ) as services:
        payment = services.create_payment(usd(1000), gateway="dummy", payment_method=CARD)
        services.authorize(payment.id)
        early.services = services

        capture = services.capture(payment.id, usd(400))

        assert early.delivered == ["applied"]  # the event moved it to processing first
        assert capture.status is TransactionStatus.SUCCEEDED
        settled = services.get_payment(payment.id)
        assert settled.captured == usd(400)
        assert problems(settled, services.list_transactions(payment.id)) == []
    [provider] = paycore_dummy_sandbox.snapshot()["payments"]
    assert provider["amount_captured"] == 400


def test_a_providers_message_is_scrubbed_before_it_is_stored(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(usd(1000), gateway="dummy", payment_method=CARD)
    begun = services.ledger.begin(
        payment.id, TransactionType.AUTHORIZE, None, idempotency_key="echoing"
    )
    services.ledger.record(
        begun.transaction.id,
        Settlement(
            status=TransactionStatus.DECLINED,
            decline_reason=DeclineReason.CARD_DECLINED,
            decline_code="card_declined",
            message=f"card 4111 1111 1111 1111 refused for key {DEFAULT_API_KEY}",
        ),
    )

    stored = services.get_transaction(begun.transaction.id)
    assert stored.message is not None
    assert DEFAULT_API_KEY not in stored.message
    assert "4111 1111 1111 1111" not in stored.message
    assert "refused" in stored.message


def test_an_owners_payments_are_listed_oldest_first_and_no_others(
    services: PaymentTransactionServices,
) -> None:
    first = services.create_payment(usd(600), gateway="dummy", payment_method=CARD, owner="o-1")
    services.create_payment(usd(100), gateway="dummy", payment_method=CARD, owner="o-2")
    second = services.create_payment(usd(400), gateway="dummy", payment_method=CARD, owner="o-1")

    assert [p.id for p in services.payments_of("o-1")] == [first.id, second.id]
    assert services.payments_of("o-3") == ()
