"""The in-flight match never gives one refund's webhook to another: with two refunds the
provider never named, a late event is nobody's."""

from __future__ import annotations

from datetime import timedelta

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


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def test_a_late_decline_of_the_first_refund_does_not_settle_its_retry(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(
        usd(1000), gateway="dummy", payment_method=PaymentMethod(type="card", token="tok_visa")
    )
    services.sale(payment.id)
    ledger = services.ledger

    # First refund: declined at once, and the answer carried no refund id (common for
    # declines).
    first = ledger.begin(payment.id, TransactionType.REFUND, usd(300), idempotency_key="r1")
    ledger.record(
        first.transaction.id,
        Settlement(
            status=TransactionStatus.DECLINED,
            decline_reason=DeclineReason.CARD_DECLINED,
            message="refund declined",
        ),
    )
    declined_at = services.clock()
    # The merchant retries a few seconds later with a new key; it is on its way.
    retry = ledger.begin(payment.id, TransactionType.REFUND, usd(300), idempotency_key="r2")

    # The provider's webhook for the *first* refund arrives now, naming its own id.
    event = GatewayEvent(
        gateway="dummy",
        event_id="evt_refund_1_failed",
        event_type="payment.refund_failed",
        occurred_at=declined_at - timedelta(seconds=5),
        transaction_type=TransactionType.REFUND,
        outcome=Outcome.DECLINED,
        gateway_reference=services.get_payment(payment.id).gateway_reference,
        transaction_reference="re_first",
        amount=usd(300),
    )
    result = services.apply_event("dummy", event)

    # Then the retry's own answer: the provider refunded it (its id: re_second).
    answer = ledger.record(
        retry.transaction.id,
        Settlement(status=TransactionStatus.SUCCEEDED, gateway_transaction_id="re_second"),
    )

    refunded = services.get_payment(payment.id).refunded
    settled = services.get_transaction(retry.transaction.id)
    assert refunded == usd(300), (
        f"the provider refunded 3.00, the ledger says {refunded}: the first refund's event "
        f"({result.disposition}) settled the retry as {settled.status} "
        f"({settled.gateway_transaction_id}) and its own answer was dropped "
        f"(changed={answer.changed})"
    )
