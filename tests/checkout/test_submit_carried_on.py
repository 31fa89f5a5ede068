"""A submit whose process stopped halfway (one payment authorized, the next never sent)
is carried on by the sweep under the same keys, and the checkout finishes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.money import Money
from paycore.transactions.model import PaymentStatus
from paycore.transactions.orchestration import DbStep, RunStep
from paycore.transactions.services import PaymentTransactionServices

from .conftest import CARD, cart


def test_the_sweep_finishes_a_submit_that_stopped_half_way(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    first = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    second = checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CARD
    )

    # submit runs until the first payment is authorized, then its process stops
    # (a deploy, an OOM kill, the request's worker timing out).
    steps = checkout._submit(started.id)
    value: Any = None
    while services.get_payment(first.id).status is not PaymentStatus.AUTHORIZED:
        step = steps.send(value)
        value = step.call() if isinstance(step, DbStep) else services._run(step)
        assert isinstance(step, DbStep | RunStep)
    steps.close()
    assert checkout.get(started.id).status is CheckoutStatus.SUBMITTED

    for _ in range(3):
        checkout.complete_unfinished(older_than=timedelta(0))

    after = checkout.get(started.id)
    assert after.status is not CheckoutStatus.SUBMITTED, (
        f"still submitted after the sweeps: {first.id} "
        f"{services.get_payment(first.id).status}, {second.id} "
        f"{services.get_payment(second.id).status} (never sent)"
    )
