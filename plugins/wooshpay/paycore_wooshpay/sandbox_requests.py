"""What the bodies of the WooshPay sandbox's creating routes mean, checked: each function
turns one route's `Params` into the spec its state transition takes, or raises the 400
(or, for a card that is not one, the 402) the provider answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from paycore.sandbox.base import SandboxError
from paycore_wooshpay.sandbox_cards import Card, card_from_number
from paycore_wooshpay.sandbox_checkout import IntentData, ItemSpec, SessionSpec
from paycore_wooshpay.sandbox_params import Params
from paycore_wooshpay.sandbox_state import IntentSpec, NewMethod

__all__ = [
    "CANCELLATION_REASONS",
    "INTENT_FIELDS",
    "PAYMENT_METHOD_TYPES",
    "REFUND_REASONS",
    "SESSION_FIELDS",
    "intent_data",
    "intent_spec",
    "line_items",
    "new_method",
    "session_spec",
]

# The payment_method_types the provider documents.
PAYMENT_METHOD_TYPES = (
    "card",
    "alipay",
    "alipay_hk",
    "alipayplus",
    "wechat_pay",
    "sepa_debit",
    "boost",
    "truemoney",
    "gcash",
    "kakaopay",
    "touchngo",
    "rabbit_line_pay",
    "dana",
    "klarna",
    "ideal",
    "giropay",
    "sofort",
    "eps",
    "trustly",
    "bancontact",
    "p24",
    "unionpay",
    "fpx",
    "mcash",
    "grabpay",
    "bank_transfer_id",
    "qris",
    "promptpay",
    "ovo",
    "shopeepay",
    "upi",
    "boleto",
    "paynow",
    "pix",
    "9pay",
    "stitch",
    "bpi",
)
CAPTURE_METHODS = ("automatic", "manual")
FUTURE_USAGES = ("off_session", "on_session")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")
INTENT_FIELDS = (
    "amount",
    "currency",
    "confirm",
    "capture_method",
    "payment_method",
    "payment_method_data",
    "payment_method_types",
    "customer",
    "off_session",
    "off-session",
    "setup_future_usage",
    "return_url",
    "description",
    "merchant_order_id",
    "metadata",
    "payment_method_options",
    "shipping",
    "quantity",
)
SESSION_FIELDS = (
    "mode",
    "success_url",
    "cancel_url",
    "payment_method_types",
    "line_items",
    "client_reference_id",
    "customer",
    "customer_email",
    "metadata",
    "payment_intent_data",
    "expires_at",
)


def new_method(params: Params, now: float) -> NewMethod:
    """``POST /v1/payment_methods`` or ``payment_method_data``: a card or another type."""
    method_type = params.string("type", required=True, limit=40)
    if method_type not in PAYMENT_METHOD_TYPES:
        raise SandboxError(
            400,
            "payment_method_unactivated",
            f"The payment method type {str(method_type)[:40]!r} is not activated.",
            param=params.name("type"),
        )
    card_params = params.object("card", "number", "exp_month", "exp_year", "cvc", "name")
    if (method_type == "card") != (card_params is not None):
        raise SandboxError(
            400,
            "parameter_missing" if card_params is None else "parameter_unknown",
            "card details go with type card, and only with it",
            param=params.name("card"),
        )
    return NewMethod(
        type=str(method_type),
        card=_card(card_params, now) if card_params is not None else None,
        billing_details=_billing_details(params),
        metadata=params.metadata(),
    )


def _card(params: Params, now: float) -> Card:
    """Classify the card; only brand, last four digits and expiry leave this function."""
    number = params.string("number", required=True, limit=23)
    month = params.integer("exp_month", required=True, digits=True)
    year = params.integer("exp_year", required=True, digits=True)
    cvc = params.string("cvc", limit=8)
    params.string("name", limit=200)
    assert number is not None and month is not None and year is not None
    year += 2000 if year < 100 else 0
    today = datetime.fromtimestamp(now, UTC)
    if not 1 <= month <= 12:
        raise _card_error(
            "invalid_expiry_month", "exp_month", "Your card's expiration month is invalid."
        )
    if (year, month) < (today.year, today.month) or year > today.year + 50:
        raise _card_error(
            "invalid_expiry_year", "exp_year", "Your card's expiration year is invalid."
        )
    if cvc is not None and not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4):
        raise _card_error("invalid_cvc", "cvc", "Your card's security code is invalid.")
    return card_from_number(number, month, year)


def _card_error(code: str, field: str, message: str) -> SandboxError:
    return SandboxError(402, code, message, kind="card_error", param=f"card[{field}]")


def _billing_details(params: Params) -> dict[str, Any]:
    details = params.object("billing_details", "name", "email", "phone", "address")
    if details is None:
        return {}
    return {
        "name": details.string("name", limit=200),
        "email": details.string("email", limit=200),
        "phone": details.string("phone", limit=40),
        "address": _address(details),
    }


def _address(params: Params) -> dict[str, str | None] | None:
    address = params.object("address", *_ADDRESS)
    if address is None:
        return None
    return {name: address.string(name, limit=200) for name in _ADDRESS}


def intent_spec(params: Params, now: float) -> IntentSpec:
    """``POST /v1/payment_intents``."""
    params.only(*INTENT_FIELDS)
    customer = params.string("customer", limit=255)
    future = params.string("setup_future_usage", choices=FUTURE_USAGES)
    if future is not None and customer is None:
        raise SandboxError(
            400, "parameter_missing", "setup_future_usage needs a customer", param="customer"
        )
    method_data = params.object("payment_method_data", "type", "card", "billing_details")
    payment_method = params.string("payment_method", limit=255)
    if method_data is not None and payment_method is not None:
        raise SandboxError(
            400,
            "parameter_unknown",
            "send payment_method or payment_method_data, not both",
            param="payment_method_data",
        )
    options = params.object("payment_method_options", "card")
    card_options = options.object("card", "request_three_d_secure") if options else None
    params.integer("quantity")
    return IntentSpec(
        amount=_required(params.integer("amount", required=True, amount=True)),
        currency=params.currency(),
        capture_method=params.string("capture_method", choices=CAPTURE_METHODS) or "automatic",
        confirm=bool(params.boolean("confirm")),
        payment_method=payment_method,
        new_method=new_method(method_data, now) if method_data is not None else None,
        payment_method_types=params.strings(
            "payment_method_types", choices=PAYMENT_METHOD_TYPES, code="payment_method_unactivated"
        ),
        customer=customer,
        off_session=bool(params.boolean("off_session") or params.boolean("off-session")),
        setup_future_usage=future,
        return_url=params.url("return_url"),
        description=params.string("description", limit=1000),
        merchant_order_id=params.string("merchant_order_id", limit=255),
        metadata=params.metadata(),
        three_d_secure=card_options.string(
            "request_three_d_secure", choices=("auto", "any", "challenge")
        )
        if card_options
        else None,
        shipping=_shipping(params),
    )


def _shipping(params: Params) -> dict[str, Any] | None:
    shipping = params.object("shipping", "name", "phone", "address")
    if shipping is None:
        return None
    return {
        "name": shipping.string("name", required=True, limit=200),
        "phone": shipping.string("phone", limit=40),
        "address": _address(shipping),
    }


def intent_data(params: Params, *allowed: str) -> IntentData:
    """``payment_intent_data`` of a checkout session or a payment link."""
    data = params.object("payment_intent_data", *allowed)
    if data is None:
        return IntentData()
    return IntentData(
        capture_method=data.string("capture_method", choices=CAPTURE_METHODS) or "automatic",
        metadata=data.metadata(),
        setup_future_usage=data.string("setup_future_usage", choices=FUTURE_USAGES),
        description=data.string("description", limit=1000),
    )


def line_items(params: Params, *, inline: bool) -> list[ItemSpec]:
    """``line_items``: ``{price, quantity}``, or (``inline``) ``{price_data, quantity}``."""
    allowed = ("price", "quantity", "price_data") if inline else ("price", "quantity")
    items = []
    for item in params.objects("line_items", *allowed):
        quantity = _required(item.integer("quantity", required=True))
        data = item.object("price_data", "currency", "unit_amount", "product_data")
        if (data is None) == (item.data.get("price") is None):
            raise SandboxError(
                400,
                "parameter_missing",
                "each line item needs a price or price_data",
                param=item.name("price"),
            )
        if data is None:
            items.append(ItemSpec(price=item.string("price", limit=255), quantity=quantity))
            continue
        product = data.object("product_data", "name", "description", required=True)
        assert product is not None
        product.string("description", limit=1000)
        items.append(
            ItemSpec(
                quantity=quantity,
                currency=data.currency(),
                unit_amount=data.integer("unit_amount", required=True, amount=True),
                name=product.string("name", required=True, limit=250),
            )
        )
    return items


def session_spec(params: Params) -> SessionSpec:
    """``POST /v1/checkout/sessions``."""
    params.only(*SESSION_FIELDS)
    params.string("mode", required=True, choices=("payment",))
    data = intent_data(params, "capture_method", "metadata", "setup_future_usage", "description")
    return SessionSpec(
        line_items=line_items(params, inline=True),
        success_url=params.url("success_url", required=True),
        cancel_url=params.url("cancel_url"),
        payment_method_types=params.strings(
            "payment_method_types", choices=PAYMENT_METHOD_TYPES, code="payment_method_unactivated"
        )
        or ["card"],
        client_reference_id=params.string("client_reference_id", limit=200),
        customer=params.string("customer", limit=255),
        customer_email=params.string("customer_email", limit=200),
        metadata=params.metadata(),
        intent_data=data,
        expires_at=params.integer("expires_at"),
    )


def _required(value: int | None) -> int:
    assert value is not None  # asked with required=True
    return value
