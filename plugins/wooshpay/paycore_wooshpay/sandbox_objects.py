"""The WooshPay sandbox's records and their JSON as the API answers it.

Records hold integers (amounts in minor units, ``created`` in milliseconds); a card is
only what its number told once classified (`paycore_wooshpay.sandbox_cards`): the
number and the security code are never kept.
"""

from __future__ import annotations

from typing import Any

from attrs import Factory, define, field

from paycore_wooshpay.sandbox_cards import CHALLENGE, Card

__all__ = [
    "CheckoutSession",
    "Customer",
    "LineItem",
    "PaymentIntent",
    "PaymentLink",
    "PaymentMethod",
    "Price",
    "Product",
    "Refund",
    "WebhookEndpoint",
]


@define(kw_only=True)
class PaymentMethod:
    id: str
    type: str
    created: int
    card: Card | None = None
    billing_details: dict[str, Any] = Factory(dict)
    customer: str | None = None
    metadata: dict[str, str] = Factory(dict)
    detached: bool = False  # detached from a customer: never usable with one again

    @property
    def outcome(self) -> str:
        """What paying with it does; a method other than a card asks its wallet first."""
        return self.card.outcome if self.card is not None else CHALLENGE

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_method",
            "type": self.type,
            "card": self.card.as_json() if self.card is not None else None,
            "billing_details": self.billing_details,
            "customer": self.customer,
            "created": self.created,
            "livemode": False,
            "metadata": self.metadata,
        }


@define(kw_only=True)
class Customer:
    id: str
    created: int
    email: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = Factory(dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "customer",
            "email": self.email,
            "name": self.name,
            "description": self.description,
            "created": self.created,
            "livemode": False,
            "metadata": self.metadata,
        }


@define(kw_only=True)
class PaymentIntent:
    id: str
    amount: int
    currency: str
    created: int
    client_secret: str = field(repr=False)
    capture_method: str = "automatic"
    status: str = "requires_payment_method"
    amount_capturable: int = 0
    amount_received: int = 0
    customer: str | None = None
    description: str | None = None
    merchant_order_id: str | None = None
    metadata: dict[str, str] = Factory(dict)
    payment_method: str | None = None
    payment_method_types: list[str] = Factory(lambda: ["card"])
    payment_method_options: dict[str, Any] = Factory(dict)
    return_url: str | None = None
    shipping: dict[str, Any] | None = None
    setup_future_usage: str | None = None
    next_action: dict[str, Any] | None = None
    last_payment_error: dict[str, Any] | None = None
    cancellation_reason: str | None = None
    canceled_at: int | None = None
    latest_charge: str | None = None
    # Not shown: when the authorization lapses (seconds), and the session paying it.
    capture_before: float | None = None
    checkout_session: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "currency": self.currency,
            "status": self.status,
            "capture_method": self.capture_method,
            "confirmation_method": "automatic",
            "client_secret": self.client_secret,
            "created": self.created,
            "livemode": False,
            "customer": self.customer,
            "description": self.description,
            "merchant_order_id": self.merchant_order_id,
            "metadata": self.metadata,
            "payment_method": self.payment_method,
            "payment_method_types": self.payment_method_types,
            "payment_method_options": self.payment_method_options,
            "return_url": self.return_url,
            "shipping": self.shipping,
            "next_action": self.next_action,
            "last_payment_error": self.last_payment_error,
            "cancellation_reason": self.cancellation_reason,
            "canceled_at": self.canceled_at,
            "latest_charge": self.latest_charge,
            "setup_future_usage": self.setup_future_usage,
        }


@define(kw_only=True)
class Refund:
    id: str
    amount: int
    currency: str
    payment_intent: str
    charge: str | None
    created: int
    status: str
    reason: str | None = None
    failure_reason: str | None = None
    metadata: dict[str, str] = Factory(dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "currency": self.currency,
            "payment_intent": self.payment_intent,
            "charge": self.charge,
            "status": self.status,
            "reason": self.reason,
            "failure_reason": self.failure_reason,
            "metadata": self.metadata,
            "created": self.created,
        }


@define(kw_only=True)
class Product:
    id: str
    name: str
    created: int
    description: str | None = None
    active: bool = True
    metadata: dict[str, str] = Factory(dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "product",
            "name": self.name,
            "description": self.description,
            "active": self.active,
            "created": self.created,
            "livemode": False,
            "metadata": self.metadata,
        }


@define(kw_only=True)
class Price:
    id: str
    product: str
    unit_amount: int
    currency: str
    created: int
    active: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "price",
            "product": self.product,
            "unit_amount": self.unit_amount,
            "currency": self.currency,
            "active": self.active,
            "created": self.created,
            "livemode": False,
        }


@define(kw_only=True)
class LineItem:
    id: str
    price: Price
    description: str  # the product's name
    quantity: int

    @property
    def amount(self) -> int:
        return self.price.unit_amount * self.quantity

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "item",
            "amount_subtotal": self.amount,
            "amount_total": self.amount,
            "currency": self.price.currency,
            "description": self.description,
            "price": self.price.as_json(),
            "quantity": self.quantity,
        }


def _item_list(items: list[LineItem], url: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [item.as_json() for item in items],
        "has_more": False,
        "url": url,
    }


@define(kw_only=True)
class CheckoutSession:
    id: str
    url: str
    created: int
    expires_at: int  # seconds
    payment_intent: str
    line_items: list[LineItem]
    currency: str
    success_url: str | None
    cancel_url: str | None
    mode: str = "payment"
    status: str = "open"
    payment_status: str = "unpaid"
    client_reference_id: str | None = None
    customer: str | None = None
    customer_email: str | None = None
    metadata: dict[str, str] = Factory(dict)
    payment_method_types: list[str] = Factory(lambda: ["card"])
    payment_link: str | None = None

    @property
    def amount_total(self) -> int:
        return sum(item.amount for item in self.line_items)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "checkout.session",
            "url": self.url,
            "status": self.status,
            "payment_status": self.payment_status,
            "payment_intent": self.payment_intent,
            "amount_subtotal": self.amount_total,
            "amount_total": self.amount_total,
            "currency": self.currency,
            "mode": self.mode,
            "client_reference_id": self.client_reference_id,
            "customer": self.customer,
            "customer_email": self.customer_email,
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "payment_method_types": self.payment_method_types,
            "payment_link": self.payment_link,
            "created": self.created,
            "expires_at": self.expires_at,
            "livemode": False,
            "metadata": self.metadata,
            "line_items": _item_list(
                self.line_items, f"/v1/checkout/sessions/{self.id}/line_items"
            ),
        }


@define(kw_only=True)
class PaymentLink:
    id: str
    url: str
    created: int
    line_items: list[LineItem]
    metadata: dict[str, str] = Factory(dict)
    payment_intent_data: dict[str, Any] = Factory(dict)
    after_completion: dict[str, Any] = Factory(lambda: {"type": "hosted_confirmation"})
    payment_method_types: list[str] = Factory(lambda: ["card"])
    active: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_link",
            "url": self.url,
            "active": self.active,
            "after_completion": self.after_completion,
            "payment_intent_data": self.payment_intent_data,
            "payment_method_types": self.payment_method_types,
            "created": self.created,
            "livemode": False,
            "metadata": self.metadata,
            "line_items": _item_list(self.line_items, f"/v1/payment_links/{self.id}/line_items"),
        }


@define(kw_only=True)
class WebhookEndpoint:
    id: str
    url: str
    enabled_events: list[str]
    created: int
    target: str  # the name deliveries to it go by
    secrets: tuple[str, ...] = field(repr=False)
    status: str = "enabled"
    description: str | None = None
    api_version: str | None = None
    metadata: dict[str, str] = Factory(dict)

    def receives(self, event_type: str) -> bool:
        return self.status == "enabled" and (
            "*" in self.enabled_events or event_type in self.enabled_events
        )

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        shown = {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "enabled_events": self.enabled_events,
            "status": self.status,
            "description": self.description,
            "api_version": self.api_version,
            "created": self.created,
            "livemode": False,
            "metadata": self.metadata,
        }
        if with_secret:
            shown["secret"] = self.secrets[0]
        return shown
