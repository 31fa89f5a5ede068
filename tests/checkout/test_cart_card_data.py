"""Card numbers in a merchant's free text never reach the database: the checkout masks
them in the cart's lines, as the ledger does in a payment's description and metadata."""

from __future__ import annotations

import sqlalchemy as sa

from paycore.checkout import Cart, CartItem, CheckoutService
from paycore.money import Money
from paycore.transactions.schema import checkouts, payments
from paycore.transactions.store import Store

from .conftest import CARD

PAN = "4111111111111111"


def test_a_card_number_in_a_cart_line_is_not_stored(
    checkout: CheckoutService, store: Store
) -> None:
    # A shop that puts what the customer typed into the line's name (a gift message).
    cart = Cart(
        currency="USD",
        items=[
            CartItem(
                sku="gift-card",
                name=f"Gift card, message: card {PAN}",
                quantity=1,
                unit_price=Money(3000, "USD"),
            )
        ],
    )
    started = checkout.create(cart, owner="customer-1")
    checkout.add_payment(
        started.id,
        Money(3000, "USD"),
        gateway="dummy",
        payment_method=CARD,
        description=f"Gift card, message: card {PAN}",
    )

    with store.engine.connect() as connection:
        description = connection.execute(sa.select(payments.c.description)).scalar_one()
        items = connection.execute(sa.select(checkouts.c["items"])).scalar_one()
    assert PAN not in description  # the ledger masks it …
    assert PAN not in str(items), f"stored in checkouts.items: {items}"  # … the checkout does not
