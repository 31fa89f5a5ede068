"""A payment approved for less than its amount never completes the checkout: it fails,
naming it, and the rest is released."""

from __future__ import annotations

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.money import Money
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import GatewayEvent, PaymentMethod
from paycore.transactions.services import PaymentTransactionServices

from .conftest import cart

CHALLENGED = PaymentMethod(type="card", token="tok_3ds")


def test_a_partial_approval_does_not_complete_the_checkout(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    payment = checkout.add_payment(
        started.id, Money(3000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    checkout.submit(started.id)
    (opened,) = services.list_transactions(payment.id)
    # The provider's verified webhook: approved, for 10.00 of the 30.00 asked (a
    # partial approval, which the ledger records as such).
    services.apply_event(
        "dummy",
        GatewayEvent(
            gateway="dummy",
            event_id="evt_partial_1",
            event_type="payment.authorized",
            occurred_at=utc_now(),
            transaction_type="authorize",
            outcome="approved",
            transaction_id=opened.id,
            amount=Money(1000, "USD"),
        ),
    )
    held = services.get_payment(payment.id)
    assert held.authorized == Money(1000, "USD")  # the ledger knows only 10.00 is held

    done = checkout.complete(started.id)  # what the webhook route does next

    # 30.00 of goods must not become an order backed by 10.00.
    assert done.status is not CheckoutStatus.COMPLETED, (
        f"completed as {done.order_id} with {held.authorized} of {held.amount} authorized"
    )
