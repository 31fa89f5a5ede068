"""What paycore sends WooshPay: request bodies built from paycore's requests.

Every object paycore creates carries ``metadata.paycore_transaction_id`` and
``paycore_payment_id`` (paycore's ids win over the caller's metadata keys), so
`fetch_status` finds an intent whose creating answer was lost. Amounts are integer
minor units, except a refund's ``amount``: a decimal-digit string, as documented.
Card numbers never appear: a card is a ``pm_…`` token or a hosted page.
"""

from __future__ import annotations

from typing import Any

from paycore.errors import InvalidRequest
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    PaymentMethod,
    PaymentRequest,
    TransactionType,
)
from paycore_wooshpay.answers import CHECKOUT_MARKER
from paycore_wooshpay.methods import METHOD_TYPES

__all__ = [
    "CAPTURE_METHODS",
    "capture_method",
    "check_checkout",
    "checkout_session",
    "customer",
    "intent",
    "intent_id",
    "payable_method",
    "payment_link",
    "price",
    "product",
    "refund",
    "search_query",
]

CAPTURE_METHODS = {TransactionType.AUTHORIZE: "manual", TransactionType.SALE: "automatic"}
MAX_METADATA_KEYS = 50


def payable_method(request: PaymentRequest) -> PaymentMethod:
    """``request``'s payment method, refused before anything is sent if WooshPay can't use it."""
    method = request.payment_method
    if method is None:
        raise InvalidRequest("a WooshPay payment needs a payment_method")
    _known_type(method)
    if method.type == "card" and not method.token:
        raise InvalidRequest(
            "a card is paid with its WooshPay token (pm_…) or through a checkout; "
            "card numbers never pass through paycore"
        )
    _metadata(request)
    return method


def check_checkout(request: PaymentRequest) -> None:
    """Refuse, before anything is sent, a checkout WooshPay could not make."""
    capture_method(request)
    if request.payment_method is not None:
        _known_type(request.payment_method)
    _metadata(request)


def intent(request: PaymentRequest, customer_id: str | None) -> dict[str, Any]:
    """A PaymentIntent created and confirmed at once: an authorization or a sale."""
    method = payable_method(request)
    payload = {
        "amount": request.amount.minor_units,
        "currency": request.amount.currency.code,
        "confirm": True,
        "capture_method": capture_method(request),
        **_method_fields(method),
        **_optional(customer=customer_id, description=request.description),
        "merchant_order_id": request.order_reference or request.payment_id,
        "metadata": _metadata(request),
    }
    if method.off_session:
        payload["off_session"] = True  # nobody to send anywhere: no return_url
    elif request.return_url:
        payload["return_url"] = request.return_url
    if method.save:
        payload["setup_future_usage"] = "off_session"
    return payload


def checkout_session(request: PaymentRequest, customer_id: str | None) -> dict[str, Any]:
    """A hosted page for ``request``; its intent authorizes or sells as ``request`` says."""
    method = request.payment_method
    intent_data = {
        "capture_method": capture_method(request),
        "metadata": _checkout_metadata(request, CheckoutKind.HOSTED_PAGE),
        **_optional(description=request.description),
    }
    if method is not None and method.save:
        intent_data["setup_future_usage"] = "off_session"
    payload = {
        "mode": "payment",
        "success_url": request.return_url,
        "cancel_url": request.cancel_url or request.return_url,
        "line_items": [{"price_data": _price_data(request), "quantity": 1}],
        "client_reference_id": request.transaction_id,
        "metadata": _metadata(request),
        "payment_intent_data": intent_data,
        **_optional(customer=customer_id),
    }
    if customer_id is None and request.customer and request.customer.email:
        payload["customer_email"] = request.customer.email
    if method is not None:
        payload["payment_method_types"] = [_known_type(method)]
    return payload


def product(request: PaymentRequest) -> dict[str, str]:
    return {"name": request.description or f"Order {request.order_reference or request.payment_id}"}


def price(request: PaymentRequest, product_id: str) -> dict[str, Any]:
    return {
        "product": product_id,
        "unit_amount": request.amount.minor_units,
        "currency": request.amount.currency.code,
    }


def payment_link(request: PaymentRequest, price_id: str) -> dict[str, Any]:
    return {
        "line_items": [{"price": price_id, "quantity": 1}],
        "metadata": _metadata(request),
        "payment_intent_data": {
            "capture_method": capture_method(request),
            "metadata": _checkout_metadata(request, CheckoutKind.PAYMENT_LINK),
        },
        "after_completion": {"type": "redirect", "redirect": {"url": request.return_url}},
    }


def refund(request: PaymentRequest) -> dict[str, Any]:
    return {
        "payment_intent": intent_id(request),
        "amount": str(request.amount.minor_units),
        "reason": "requested_by_customer",
        "metadata": _paycore_ids(request),
    }


def customer(who: Customer) -> dict[str, Any]:
    payload = _optional(email=who.email, name=who.name)
    if who.reference:
        payload["metadata"] = {"paycore_customer_reference": who.reference}
    return payload


def search_query(transaction_id: str) -> str:
    """The search for intents paycore's transaction created (Stripe's query syntax)."""
    quoted = transaction_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['paycore_transaction_id']:'{quoted}'"


def capture_method(request: PaymentRequest) -> str:
    """``manual`` for an authorization, ``automatic`` for a sale."""
    capture = CAPTURE_METHODS.get(request.transaction_type)
    if capture is None:
        raise InvalidRequest(
            f"a payment authorizes or sells; got a {request.transaction_type} request"
        )
    return capture


def intent_id(request: PaymentRequest) -> str:
    if not request.gateway_reference:
        raise InvalidRequest(
            f"a {request.transaction_type} needs the payment's gateway_reference (pi_…)"
        )
    return request.gateway_reference


def _known_type(method: PaymentMethod) -> str:
    if method.type not in METHOD_TYPES:
        raise InvalidRequest(
            f"WooshPay has no payment method type {method.type[:32]!r}; "
            "`payment_methods` lists the types it offers"
        )
    return method.type


def _method_fields(method: PaymentMethod) -> dict[str, Any]:
    if method.token:
        fields: dict[str, Any] = {"payment_method": method.token}
    else:
        fields = {"payment_method_data": {"type": method.type}}
    if method.type != "card":
        fields["payment_method_types"] = [method.type]
    return fields


def _price_data(request: PaymentRequest) -> dict[str, Any]:
    return {
        "currency": request.amount.currency.code,
        "unit_amount": request.amount.minor_units,
        "product_data": product(request),
    }


def _paycore_ids(request: PaymentRequest) -> dict[str, str]:
    return {
        "paycore_payment_id": request.payment_id,
        "paycore_transaction_id": request.transaction_id,
    }


def _metadata(request: PaymentRequest) -> dict[str, str]:
    metadata = {**request.metadata, **_paycore_ids(request)}
    if len(metadata) >= MAX_METADATA_KEYS:  # one key stays free for the checkout marker
        raise InvalidRequest(
            f"WooshPay keeps at most {MAX_METADATA_KEYS} metadata keys, paycore's own "
            f"included: send at most {MAX_METADATA_KEYS - 3}"
        )
    return metadata


def _checkout_metadata(request: PaymentRequest, kind: CheckoutKind) -> dict[str, str]:
    return {**_metadata(request), CHECKOUT_MARKER: kind.value}


def _optional(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
