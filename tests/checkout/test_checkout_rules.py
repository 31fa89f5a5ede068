"""The checkout's rules: carts and input are validated before anything is written;
creating is idempotent; payments leave an open checkout only when nothing is held;
a payment that succeeds after its checkout failed is released; forgotten checkouts
are swept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from paycore.checkout import Cart, CartItem, CheckoutService, CheckoutStatus
from paycore.errors import (
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    StateError,
)
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.transactions.model import PaymentMethod, PaymentStatus
from paycore.transactions.schema import checkout_payments, checkouts, payments, transactions
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

from .conftest import CARD, DECLINED, cart

CHALLENGED = PaymentMethod(type="card", token="tok_3ds")


def _rows(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in (checkouts, checkout_payments, payments, transactions)
        }


def _item(**changes: Any) -> dict[str, Any]:
    return {"sku": "tea", "name": "Tea", "quantity": 1, "unit_price": Money(450, "EUR"), **changes}


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Cart(currency="EUR", items=[]), InvalidRequest, "at least one item"),
        (lambda: CartItem(**_item(quantity=0)), InvalidRequest, "between 1 and"),
        (lambda: CartItem(**_item(quantity=1.5)), InvalidRequest, "integer"),
        (lambda: CartItem(**_item(quantity=True)), InvalidRequest, "integer"),
        (lambda: CartItem(**_item(unit_price=4.5)), InvalidAmount, "must be Money"),
        (lambda: CartItem(**_item(unit_price=Decimal("4.50"))), InvalidAmount, "must be Money"),
        (lambda: CartItem(**_item(unit_price=Money(-1, "EUR"))), InvalidAmount, "negative"),
        (lambda: CartItem(**_item(sku="")), InvalidRequest, "sku"),
        (lambda: CartItem(**_item(name="x\x00y")), InvalidRequest, "name"),
        (
            lambda: Cart(currency="EUR", items=[CartItem(**_item(unit_price=Money(1, "USD")))]),
            CurrencyMismatch,
            "priced in USD",
        ),
        (
            lambda: Cart(currency="EUR", items=[CartItem(**_item(unit_price=Money(0, "EUR")))]),
            InvalidAmount,
            "positive",
        ),
        (
            lambda: Cart(currency="EUR", items=[CartItem(**_item())], country="de"),
            InvalidRequest,
            "alpha-2",
        ),
        (lambda: Cart(currency="XYZ", items=[CartItem(**_item())]), InvalidRequest, "XYZ"),
        (
            lambda: Cart(
                currency="EUR",
                items=[CartItem(**_item(unit_price=Money(2**62, "EUR"), quantity=4))],
            ),
            InvalidAmount,
            None,
        ),
    ],
)
def test_a_bad_cart_is_a_typed_error(
    build: Any, error: type[Exception], message: str | None
) -> None:
    with pytest.raises(error, match=message):
        build()


def test_bad_calls_write_nothing(checkout: CheckoutService, store: Store) -> None:
    with pytest.raises(InvalidRequest):
        checkout.create("not a cart", owner="customer-1")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        checkout.create(cart(), owner="x" * 256)
    before = _rows(store)
    started = checkout.create(cart(3000), owner="customer-1")
    after_create = _rows(store)
    bad_calls = [
        lambda: checkout.add_payment(started.id, 1000),  # type: ignore[arg-type]
        lambda: checkout.add_payment(started.id, Money(1000, "EUR"), gateway="dummy"),
        lambda: checkout.add_payment(started.id, Money(3001, "USD"), gateway="dummy"),
        lambda: checkout.add_payment(started.id, Money(1000, "USD"), gateway="nope"),
        lambda: checkout.add_payment(started.id, Money(1000, "USD"), saved_method="spm_x"),
        lambda: checkout.add_payment("chk_missing", Money(1000, "USD"), gateway="dummy"),
        lambda: checkout.submit(started.id),  # nothing covers the total
        lambda: checkout.remove_payment(started.id, "pay_missing"),
        lambda: checkout.start_payment(started.id, "pay_missing"),
        lambda: checkout.get("chk missing"),
    ]
    for call in bad_calls:
        with pytest.raises((InvalidRequest, StateError)):
            call()
    assert before["checkouts"] == 0
    assert _rows(store) == after_create
    assert checkout.get(started.id).status is CheckoutStatus.OPEN


def test_creating_again_with_the_key_gives_the_same_checkout(checkout: CheckoutService) -> None:
    first = checkout.create(cart(3000), owner="customer-1", idempotency_key="cart-7")
    assert checkout.create(cart(3000), owner="customer-1", idempotency_key="cart-7") == first
    with pytest.raises(IdempotencyConflict):
        checkout.create(cart(3100), owner="customer-1", idempotency_key="cart-7")
    with pytest.raises(IdempotencyConflict):
        checkout.create(cart(3000), owner="customer-2", idempotency_key="cart-7")


def test_adding_a_payment_again_with_the_key_adds_it_once(checkout: CheckoutService) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    first = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    again = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD, idempotency_key="p1"
    )
    assert again.id == first.id
    assert checkout.get(started.id).payment_ids == (first.id,)


def test_removing_payments_releases_what_they_hold(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    held = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    waiting = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    fresh = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    services.authorize(held.id)
    services.authorize(waiting.id)  # now waits for 3-D Secure

    with pytest.raises(StateError, match="may still pay"):
        checkout.remove_payment(started.id, waiting.id)
    checkout.remove_payment(started.id, held.id)
    left = checkout.remove_payment(started.id, fresh.id)

    assert left.payment_ids == (waiting.id,)
    assert services.get_payment(held.id).status is PaymentStatus.VOIDED
    assert services.get_payment(fresh.id).status is PaymentStatus.NEW


def test_a_payment_that_succeeds_after_its_checkout_failed_is_released(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    late = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    checkout.add_payment(started.id, Money(2000, "USD"), gateway="dummy", payment_method=DECLINED)
    submission = checkout.submit(started.id)
    assert submission.checkout.status is CheckoutStatus.FAILED
    challenge = submission.next_actions[late.id].url

    # The customer completes 3-D Secure anyway; the return completes the checkout.
    with httpx.Client(trust_env=False) as browser:
        submit_form(browser, challenge, "approve")
    after = checkout.complete(started.id, confirm=True)

    assert after.status is CheckoutStatus.FAILED
    assert services.get_payment(late.id).status is PaymentStatus.VOIDED


def test_the_sweep_completes_checkouts_nobody_came_back_for(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    payment = checkout.add_payment(
        started.id, Money(3000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    challenge = checkout.submit(started.id).next_actions[payment.id].url
    with httpx.Client(trust_env=False) as browser:
        submit_form(browser, challenge, "approve")

    assert checkout.complete_unfinished(older_than=timedelta(hours=1)) == []
    (swept,) = checkout.complete_unfinished(older_than=timedelta(0))
    assert swept.id == started.id
    assert swept.status is CheckoutStatus.COMPLETED
    with pytest.raises(NotFound):
        checkout.get("chk_unknown")


def test_the_sweep_releases_what_a_failed_checkout_still_holds(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    started = checkout.create(cart(3000), owner="customer-1")
    late = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    checkout.add_payment(started.id, Money(2000, "USD"), gateway="dummy", payment_method=DECLINED)
    submission = checkout.submit(started.id)
    with httpx.Client(trust_env=False) as browser:
        submit_form(browser, submission.next_actions[late.id].url, "approve")
    # Reconciliation learns that the late payment went through; nobody completes.
    (opened,) = services.list_transactions(late.id)
    services.fetch_status(opened.id)
    assert services.get_payment(late.id).status is PaymentStatus.AUTHORIZED

    (swept,) = checkout.complete_unfinished(older_than=timedelta(0))

    assert swept.id == started.id and swept.status is CheckoutStatus.FAILED
    assert services.get_payment(late.id).status is PaymentStatus.VOIDED
    assert checkout.complete_unfinished(older_than=timedelta(0)) == []
