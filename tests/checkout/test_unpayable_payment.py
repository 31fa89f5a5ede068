"""A payment that cannot be paid (no method, and its gateway has no hosted page) is
refused before anything is written or authorized."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.errors import InvalidRequest
from paycore.money import Money
from paycore.transactions.model import PaymentStatus
from paycore.transactions.services import PaymentTransactionServices

from .conftest import CARD, cart


def test_a_payment_without_a_method_on_a_gateway_without_a_page_is_refused_up_front(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    card = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    try:
        # The dummy gateway has no hosted page: this payment can never be paid.
        checkout.add_payment(started.id, Money(2000, "USD"), gateway="dummy")
    except InvalidRequest:
        return  # refused up front: what should happen

    with pytest.raises(InvalidRequest, match="no hosted page"):
        checkout.submit(started.id)
    with pytest.raises(InvalidRequest, match="no hosted page"):
        checkout.submit(started.id)  # every retry the same
    swept = checkout.complete_unfinished(older_than=timedelta(0))

    after = checkout.get(started.id)
    held = services.get_payment(card.id)
    assert [c.id for c in swept] == [started.id]
    # Stuck for good: neither completed nor failed, and the card stays authorized.
    assert (
        after.status is not CheckoutStatus.SUBMITTED or held.status is not PaymentStatus.AUTHORIZED
    ), f"checkout {after.status}, {held.amount} authorized on {card.id} with no way out"
