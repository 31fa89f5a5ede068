"""A retried add_payment (same key) gives back the same payment, even once the total is
covered or the checkout submitted."""

from __future__ import annotations

from paycore.checkout import CheckoutService
from paycore.money import Money

from .conftest import CARD, cart


def test_retrying_add_payment_for_the_whole_total_returns_the_same_payment(
    checkout: CheckoutService,
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    first = checkout.add_payment(
        started.id, Money(3000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    # The client timed out and retries the very same call.
    again = checkout.add_payment(
        started.id, Money(3000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    assert again.id == first.id


def test_retrying_add_payment_after_submit_returns_the_same_payment(
    checkout: CheckoutService,
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    first = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p2"
    )
    checkout.submit(started.id)
    again = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    assert again.id == first.id
