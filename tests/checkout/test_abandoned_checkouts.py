"""Abandoned checkouts: the merchant cancels one, or the sweep gives up on one not finished
in time; either way what its payments hold is released, whether it was submitted or
still open (a page paid before submit)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.errors import StateError
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.transactions.model import PaymentMethod, PaymentStatus
from paycore.transactions.services import PaymentTransactionServices

from .conftest import CARD, cart
from .test_hosted_checkout import PAYING_CARD, browser, deliver, services, wooshpay  # noqa: F401 - WooshPay fixtures

GIFT_CARD = PaymentMethod(type="gift_card", token="gc_test_5000")
CHALLENGED = PaymentMethod(type="card", token="tok_3ds")


def test_money_held_by_an_abandoned_open_checkout_is_released_by_the_sweep(
    checkout: CheckoutService,
    services: PaymentTransactionServices,  # noqa: F811
    browser: httpx.Client,  # noqa: F811
    deliver: Callable[[], dict[str, int]],  # noqa: F811
) -> None:
    started = checkout.create(cart(3000), owner="customer-7")
    on_page = checkout.add_payment(started.id, Money(2000, "USD"), gateway="wooshpay")
    checkout.add_payment(started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD)
    page = checkout.start_payment(started.id, on_page.id).url
    submit_form(browser, page, "pay", {"card_number": PAYING_CARD})
    deliver()
    checkout.complete(started.id)  # the webhook route
    assert services.get_payment(on_page.id).status is PaymentStatus.AUTHORIZED
    # The customer never submits (closed the tab before paying the rest).

    swept = checkout.complete_unfinished(older_than=timedelta(0), abandon_after=timedelta(0))

    assert [c.id for c in swept] == [started.id]
    after = checkout.get(started.id)
    assert after.status is CheckoutStatus.FAILED
    assert after.failure is not None and after.failure.reason == "abandoned"
    assert services.get_payment(on_page.id).status is PaymentStatus.VOIDED


def test_the_merchant_cancels_a_checkout_waiting_for_the_customer(
    checkout: CheckoutService,
    services: PaymentTransactionServices,  # noqa: F811
    paycore_dummy_sandbox: DummySandbox,
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    gift = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=GIFT_CARD
    )
    card = checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    assert set(checkout.submit(started.id).next_actions) == {card.id}
    assert services.get_payment(gift.id).status is PaymentStatus.AUTHORIZED

    canceled = checkout.cancel(started.id)

    assert canceled.status is CheckoutStatus.FAILED
    assert canceled.failure is not None and canceled.failure.reason == "canceled"
    assert services.get_payment(gift.id).status is PaymentStatus.VOIDED
    balance = paycore_dummy_sandbox.snapshot()["gift_cards"]["gc_test_5000"]
    assert (balance["balance"], balance["held"]) == (5000, 0)
    assert checkout.cancel(started.id) == canceled  # again: nothing more


def test_a_completed_checkout_is_an_order_and_is_not_cancelled_here(
    checkout: CheckoutService,
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    checkout.add_payment(started.id, Money(3000, "USD"), gateway="dummy", payment_method=CARD)
    order = checkout.submit(started.id).checkout.order_id

    with pytest.raises(StateError, match=f"cancel its order {order}"):
        checkout.cancel(started.id)
    assert checkout.get(started.id).status is CheckoutStatus.COMPLETED
