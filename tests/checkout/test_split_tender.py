"""Split tender: payments covering the total exactly, submitted in order, released on a decline."""

from __future__ import annotations

import pytest

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.errors import CurrencyMismatch, InvalidAmount, StateError
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.transactions.model import PaymentStatus
from paycore.transactions.services import PaymentTransactionServices

from .conftest import CARD, DECLINED, cart


def test_two_cards_cover_the_total_and_complete_as_an_order(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    first = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    second = checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CARD
    )

    submission = checkout.submit(started.id)

    assert submission.checkout.status is CheckoutStatus.COMPLETED
    order = submission.checkout.order_id
    assert order is not None and order.startswith("ord_")
    assert submission.checkout.payment_ids == (first.id, second.id)
    assert [p.status for p in submission.payments] == [PaymentStatus.AUTHORIZED] * 2
    # The payments now belong to the order.
    assert {p.id for p in services.payments_of(order)} == {first.id, second.id}
    assert submission.next_actions == {}


def test_payments_must_cover_the_total_exactly(checkout: CheckoutService) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    checkout.add_payment(started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD)
    with pytest.raises(StateError, match=r"add up to 10\.00 USD.*total is 30\.00 USD"):
        checkout.submit(started.id)
    with pytest.raises(InvalidAmount, match="more than what remains"):
        checkout.add_payment(started.id, Money(2001, "USD"), gateway="dummy", payment_method=CARD)
    with pytest.raises(CurrencyMismatch):
        checkout.add_payment(started.id, Money(2000, "EUR"), gateway="dummy", payment_method=CARD)
    assert checkout.get(started.id).status is CheckoutStatus.OPEN
    assert len(checkout.get(started.id).payment_ids) == 1


def test_the_last_of_three_declined_voids_the_first_two(
    checkout: CheckoutService, services: PaymentTransactionServices, sandbox: DummySandbox
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    payments = [
        checkout.add_payment(started.id, Money(1000, "USD"), gateway="dummy", payment_method=method)
        for method in (CARD, CARD, DECLINED)
    ]

    submission = checkout.submit(started.id)

    failed = submission.checkout
    assert failed.status is CheckoutStatus.FAILED
    assert failed.failure is not None
    assert failed.failure.payment_id == payments[2].id
    assert failed.failure.reason == "card_declined"
    assert [services.get_payment(p.id).status for p in payments] == [
        PaymentStatus.VOIDED,
        PaymentStatus.VOIDED,
        PaymentStatus.FAILED,
    ]
    at_sandbox = {p["id"]: p["status"] for p in sandbox.snapshot()["payments"]}
    for payment in payments[:2]:
        reference = services.get_payment(payment.id).gateway_reference
        assert at_sandbox[reference] == "voided"
