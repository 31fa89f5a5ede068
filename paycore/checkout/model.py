"""The checkout's vocabulary: carts, checkouts, payment options and stored methods (DESIGN §7).

A `Cart` is what the customer buys: items priced in one currency, whose sum is the
total to pay. A `Checkout` is one attempt to pay a cart: it belongs to an ``owner``
(the merchant's customer or session id), holds the ledger payments that together pay
the total (split tender: a gift card and a card, say), and ends ``completed`` with an
``order_id`` or ``failed`` with the payment that failed and why.

A `StoredMethod` is a payment method a gateway keeps for a customer (its vault), as
the checkout lists it: the gateway's token reference and masked display data only.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen

from paycore.errors import CurrencyMismatch, InvalidAmount, InvalidRequest
from paycore.money import MAX_MINOR_UNITS, Currency, Money
from paycore.transactions.model import (
    NextAction,
    PaymentMethodOption,
    SavedMethod,
    _frozen_mapping,
    _member,
)
from paycore.transactions.records import Payment

__all__ = [
    "CaptureMode",
    "Cart",
    "CartItem",
    "Checkout",
    "CheckoutFailure",
    "CheckoutStatus",
    "PaymentOptions",
    "StoredMethod",
    "Submission",
]

MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
# No control characters, and no lone surrogates (no UTF-8 text, so no database, holds one).
_TEXT = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,255}")
_COUNTRY = re.compile(r"[A-Z]{2}")


class CheckoutStatus(enum.StrEnum):
    """Where a checkout stands.

    ``open``: payments are being added. ``submitted``: its payments are being
    authorized (some may wait for the customer or the provider). ``completed``: every
    payment went through; the checkout is an order. ``failed``: one payment was
    declined or failed, and the others were released.
    """

    OPEN = "open"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (CheckoutStatus.COMPLETED, CheckoutStatus.FAILED)


class CaptureMode(enum.StrEnum):
    """What submitting a checkout does with each payment (a merchant setting).

    ``authorize`` reserves the money, captured later on shipment (the OMS);
    ``sale`` takes it at once. A gateway that cannot authorize (it only sells) is
    paid by sale either way.
    """

    AUTHORIZE = "authorize"
    SALE = "sale"


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        raise InvalidRequest(f"{name} must be 1 to 255 printable characters")
    return value


@frozen(kw_only=True)
class CartItem:
    """One line of a cart: ``quantity`` times ``unit_price``."""

    sku: str
    name: str
    quantity: int
    unit_price: Money

    def __attrs_post_init__(self) -> None:
        _text("sku", self.sku)
        _text("name", self.name)
        quantity = self.quantity
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise InvalidRequest(f"quantity must be an integer, not {type(quantity).__name__}")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidRequest(f"quantity must be between 1 and {MAX_QUANTITY}")
        if not isinstance(self.unit_price, Money):
            raise InvalidAmount(f"unit_price must be Money, not {type(self.unit_price).__name__}")
        if self.unit_price.minor_units < 0:
            raise InvalidAmount(f"unit_price must not be negative, got {self.unit_price}")

    @property
    def subtotal(self) -> Money:
        return self.unit_price * self.quantity


def _currency(value: Currency | str) -> Currency:
    return Currency.of(value)


def _items(value: Any) -> tuple[CartItem, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise InvalidRequest("items must be a sequence of CartItem")
    items = tuple(value)
    if not items:
        raise InvalidRequest("a cart needs at least one item")
    if len(items) > MAX_ITEMS:
        raise InvalidRequest(f"a cart has at most {MAX_ITEMS} items")
    for item in items:
        if not isinstance(item, CartItem):
            raise InvalidRequest(f"items must be CartItem, not {type(item).__name__}")
    return items


def _country(_: object, __: object, value: str | None) -> None:
    if value is not None and not (isinstance(value, str) and _COUNTRY.fullmatch(value)):
        raise InvalidRequest("country must be an ISO 3166-1 alpha-2 code such as 'DE'")


@frozen(kw_only=True)
class Cart:
    """What the customer buys: items in ``currency``; ``total`` is their sum.

    ``country`` (ISO 3166-1 alpha-2), where known, narrows the payment options.
    """

    currency: Currency = field(converter=_currency)
    items: tuple[CartItem, ...] = field(converter=_items)
    country: str | None = field(default=None, validator=_country)

    def __attrs_post_init__(self) -> None:
        for item in self.items:
            if item.unit_price.currency != self.currency:
                raise CurrencyMismatch(
                    f"item {item.sku!r} is priced in {item.unit_price.currency}, the cart "
                    f"in {self.currency}"
                )
        total = sum(item.subtotal.minor_units for item in self.items)
        if total <= 0:
            raise InvalidAmount("a cart's total must be positive")
        if total > MAX_MINOR_UNITS:
            raise InvalidAmount("a cart's total is too large")

    @property
    def total(self) -> Money:
        return Money(sum(item.subtotal.minor_units for item in self.items), self.currency)

    def as_json(self) -> list[dict[str, Any]]:
        """The items as stored: prices in minor units of the cart's currency."""
        return [
            {
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": item.unit_price.minor_units,
            }
            for item in self.items
        ]

    @classmethod
    def from_json(cls, currency: str, items: list[Mapping[str, Any]], country: str | None) -> Cart:
        return cls(
            currency=currency,
            country=country,
            items=[
                CartItem(
                    sku=item["sku"],
                    name=item["name"],
                    quantity=item["quantity"],
                    unit_price=Money(item["unit_price"], currency),
                )
                for item in items
            ],
        )


@frozen(kw_only=True)
class CheckoutFailure:
    """Why the checkout failed: the payment that failed and its decline reason or failure,
    or (no payment) ``canceled`` by the merchant or ``abandoned`` by the customer."""

    payment_id: str | None
    reason: str
    message: str | None = None


@frozen(kw_only=True)
class Checkout:
    """A checkout as committed: see the module docstring.

    ``payment_ids`` are its ledger payments in the order they were added (and are
    submitted). ``order_id`` is set when it completes; its payments then belong to
    the order (`Payment.owner`).
    """

    id: str
    owner: str
    status: CheckoutStatus = field(converter=CheckoutStatus)
    cart: Cart
    capture: CaptureMode = field(converter=CaptureMode)
    payment_ids: tuple[str, ...] = ()
    order_id: str | None = None
    failure: CheckoutFailure | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None

    @property
    def total(self) -> Money:
        return self.cart.total


@frozen(kw_only=True)
class StoredMethod:
    """A customer's saved payment method, kept by ``method.gateway`` (its vault).

    ``id`` is paycore's (``spm_…``); ``owner`` the merchant's customer id. Only the
    gateway's token reference and masked display data are kept.
    """

    id: str
    owner: str
    method: SavedMethod
    created_at: datetime

    @property
    def gateway(self) -> str:
        return self.method.gateway


@frozen(kw_only=True)
class PaymentOptions:
    """How a cart can be paid.

    ``methods``: what each configured gateway offers for the cart's currency and
    amount, with the fields the frontend must collect. ``saved``: the customer's stored
    methods at those gateways (paying with one needs no hosted page). ``unavailable``:
    gateways that did not answer in time or failed, with why; the others are listed.
    """

    methods: tuple[PaymentMethodOption, ...]
    saved: tuple[StoredMethod, ...] = ()
    unavailable: Mapping[str, str] = field(default=None, converter=_frozen_mapping)


@frozen(kw_only=True)
class Submission:
    """What submitting a checkout gave: the checkout, its payments, and for each
    payment that waits for the customer, where to send them (``next_actions``)."""

    checkout: Checkout
    payments: tuple[Payment, ...]
    next_actions: Mapping[str, NextAction] = field(default=None, converter=_frozen_mapping)


def capture_mode(value: CaptureMode | str) -> CaptureMode:
    return _member(CaptureMode, value, "capture")
