"""Taking a payment out of a checkout while something else happens to it (another request,
another process): a submit never completes an order with a payment being released, and a
page opened for a payment being taken out never leaves its money held for good."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.errors import StateError
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.transactions.model import PaymentStatus
from paycore.transactions.orchestration import RunStep, Steps
from paycore.transactions.services import PaymentTransactionServices

from .conftest import CARD, cart
from .test_hosted_checkout import (  # noqa: F401 - WooshPay fixtures
    PAYING_CARD,
    browser,
    deliver,
    services,
    wooshpay,
)


def before_first_exchange(steps: Steps[Any], meanwhile: Callable[[], None]) -> Steps[Any]:
    """``steps`` as they are, with ``meanwhile`` run (as another request) just before
    their first call to a gateway."""
    value: Any = None
    error: BaseException | None = None
    fired = False
    while True:
        try:
            step = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, RunStep) and not fired:
            fired = True
            meanwhile()
        value, error = None, None
        try:
            value = yield step
        except Exception as exc:
            error = exc


def test_a_submit_while_an_authorized_payment_is_taken_out_does_not_count_it(
    checkout: CheckoutService,
    services: PaymentTransactionServices,  # noqa: F811
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    held = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    kept = checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CARD
    )
    services.authorize(held.id)
    refused: list[Exception] = []

    def submit() -> None:
        try:
            checkout.submit(started.id)
        except StateError as error:
            refused.append(error)

    # The shop submits just as the void of the payment taken out goes to the gateway.
    services._carry_out(
        before_first_exchange(checkout._remove_payment(started.id, held.id), submit)
    )

    assert len(refused) == 1 and "add up to 20.00 USD" in str(refused[0])
    after = checkout.get(started.id)
    assert after.status is CheckoutStatus.OPEN and after.payment_ids == (kept.id,)
    assert services.get_payment(held.id).status is PaymentStatus.VOIDED


def test_a_page_opened_as_its_payment_is_taken_out_is_released_once_paid(
    checkout: CheckoutService,
    services: PaymentTransactionServices,  # noqa: F811
    browser: httpx.Client,  # noqa: F811
    deliver: Callable[[], dict[str, int]],  # noqa: F811
) -> None:
    started = checkout.create(cart(3000), owner="customer-7")
    on_page = checkout.add_payment(started.id, Money(3000, "USD"), gateway="wooshpay")

    # The customer's other tab takes the payment out just as this one opens its page.
    page = services._carry_out(
        before_first_exchange(
            checkout._start_payment(started.id, on_page.id, "hosted_page"),
            lambda: checkout.remove_payment(started.id, on_page.id),
        )
    )
    assert checkout.get(started.id).payment_ids == ()
    submit_form(browser, page.url, "pay", {"card_number": PAYING_CARD})
    deliver()
    assert services.get_payment(on_page.id).status is PaymentStatus.AUTHORIZED

    # The sweep finds the money held for a payment the checkout no longer has.
    swept = checkout.complete_unfinished(older_than=timedelta(0))

    assert [c.id for c in swept] == [started.id]
    assert services.get_payment(on_page.id).status is PaymentStatus.VOIDED
    assert checkout.complete_unfinished(older_than=timedelta(0)) == []


def test_a_payment_waiting_for_the_customer_is_not_taken_out(
    checkout: CheckoutService,
    services: PaymentTransactionServices,  # noqa: F811
) -> None:
    started = checkout.create(cart(3000), owner="customer-7")
    on_page = checkout.add_payment(started.id, Money(3000, "USD"), gateway="wooshpay")
    checkout.start_payment(started.id, on_page.id)

    with pytest.raises(StateError, match="may still pay"):
        checkout.remove_payment(started.id, on_page.id)
    assert checkout.get(started.id).payment_ids == (on_page.id,)
