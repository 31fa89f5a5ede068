"""Checkouts that cannot finish yet never keep the sweep from the others."""

from __future__ import annotations

from datetime import timedelta

import httpx

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.transactions.model import PaymentMethod

from .conftest import cart

CHALLENGED = PaymentMethod(type="card", token="tok_3ds")


def _submitted(checkout: CheckoutService) -> tuple[str, str]:
    started = checkout.create(cart(3000), owner="customer-1")
    payment = checkout.add_payment(
        started.id, Money(3000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    challenge = checkout.submit(started.id).next_actions[payment.id].url
    return started.id, challenge


def test_abandoned_checkouts_do_not_starve_the_sweep(checkout: CheckoutService) -> None:
    # Two customers abandon 3-D Secure; their checkouts wait (honestly) for the provider.
    _submitted(checkout)
    _submitted(checkout)
    # A third customer passes 3-D Secure, but neither return nor webhook ever arrives.
    paid, challenge = _submitted(checkout)
    with httpx.Client(trust_env=False) as browser:
        submit_form(browser, challenge, "approve")

    # The sweep runs again and again, as a scheduler would (a small batch here).
    swept = set()
    for _ in range(5):
        swept |= {c.id for c in checkout.complete_unfinished(older_than=timedelta(0), limit=2)}

    assert paid in swept, "the sweep only ever revisits the oldest checkouts that cannot finish"
    assert checkout.get(paid).status is CheckoutStatus.COMPLETED
