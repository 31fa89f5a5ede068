"""What the services take from their callers, checked before anything is written or sent.

Bad input is refused with `InvalidRequest` (or `InvalidAmount`) and changes nothing
(DESIGN §11). Text is checked here rather than left to the database, because the two
databases disagree: PostgreSQL refuses a NUL character that SQLite stores, and a lone
surrogate (``"\\ud800"``, which no UTF-8 text can hold) fails in the driver as a bare
`UnicodeEncodeError`. Checking once, before the first write, makes both refuse alike.
Messages name the field, never quote its value: it may be anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from paycore.errors import InvalidAmount, InvalidRequest
from paycore.gateways.scrub import luhn_valid
from paycore.money import Money
from paycore.transactions.model import Customer, PaymentMethod

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_KEY",
    "MAX_METADATA_VALUE",
    "check_id",
    "check_owner",
    "check_payment_input",
]

# Providers bound what they keep (Stripe-shaped APIs: 50 metadata keys, values of 500
# characters); paycore refuses more up front rather than after the payment is recorded.
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 500
MAX_DESCRIPTION = 1000
_MAX_URL = 2048
_MAX_METHOD_TYPE = 64  # the ledger's method_type column
_MAX_TOKEN = 255  # the ledger's method_token column
_CARD_NUMBER = re.compile(r"[0-9](?:[ -]?[0-9]){12,18}")


def check_owner(value: Any) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 255 or not _storable(value):
        raise InvalidRequest("owner must be a checkout or order id (1 to 255 characters)")


def check_id(value: Any, name: str) -> None:
    # A control character or a lone surrogate names nothing, and is not looked up.
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise InvalidRequest(f"{name} must be a paycore id (a string such as 'pay_…')")


def check_payment_input(
    amount: Any,
    *,
    payment_method: Any,
    customer: Any,
    owner: Any,
    description: Any,
    return_url: Any,
    notification_url: Any,
    metadata: Any,
    idempotency_key: Any,
) -> None:
    """Refuse what `create_payment` cannot record as given; see the module docstring."""
    if not isinstance(amount, Money):
        raise InvalidAmount(
            f"amount must be Money (e.g. Money.parse('10.00', 'USD')), not {type(amount).__name__}"
        )
    if not amount.is_positive():
        raise InvalidAmount(f"amount must be positive, got {amount}")
    if payment_method is not None:
        _check_method(payment_method)
    if customer is not None:
        if not isinstance(customer, Customer):
            raise InvalidRequest("customer must be a Customer")
        for field in ("reference", "gateway_customer_id", "email", "name", "country"):
            _optional_text(getattr(customer, field), f"customer.{field}", 255)
        _optional_text(customer.ip_address, "customer.ip_address", 64)
        _optional_text(customer.locale, "customer.locale", 64)
    if owner is not None and (
        not isinstance(owner, str) or not 0 < len(owner) <= 255 or not _storable(owner)
    ):
        raise InvalidRequest("owner must be a string of 1 to 255 characters")
    _optional_text(description, "description", MAX_DESCRIPTION)
    _optional_url(return_url, "return_url")
    _optional_url(notification_url, "notification_url")
    if metadata is not None:
        _check_metadata(metadata)
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str)
        or not 0 < len(idempotency_key) <= 255
        or not idempotency_key.isprintable()
    ):
        raise InvalidRequest("idempotency_key must be 1 to 255 printable characters")


def _check_method(method: Any) -> None:
    if not isinstance(method, PaymentMethod):
        raise InvalidRequest("payment_method must be a PaymentMethod")
    kind = method.type
    if not isinstance(kind, str) or not 0 < len(kind) <= _MAX_METHOD_TYPE or not kind.isprintable():
        raise InvalidRequest(
            f"payment_method.type must be 1 to {_MAX_METHOD_TYPE} printable characters"
        )
    token = method.token
    if token is not None and (
        not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN or not token.isprintable()
    ):
        raise InvalidRequest(f"payment_method.token must be 1 to {_MAX_TOKEN} printable characters")
    if token is not None and _is_card_number(token):
        # Card numbers never enter paycore (DESIGN §11): the provider's page or its
        # client-side tokenisation takes them, and paycore gets the token.
        raise InvalidRequest(
            "payment_method.token is a card number: pay with the provider's token for "
            "the card, or on its hosted page"
        )
    for key, value in method.fields.items():
        if not (_storable(key) and _storable(value)):
            raise InvalidRequest("payment_method.fields must hold text (no NUL, valid Unicode)")


def _is_card_number(text: str) -> bool:
    """Whether ``text`` is a card number alone: 13 to 19 digits (single spaces or dashes
    between them allowed) that pass the Luhn check."""
    if _CARD_NUMBER.fullmatch(text) is None:
        return False
    return luhn_valid(text.replace(" ", "").replace("-", ""))


def _check_metadata(metadata: Any) -> None:
    if not (
        isinstance(metadata, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise InvalidRequest("metadata must map strings to strings")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InvalidRequest(f"metadata holds at most {MAX_METADATA_ENTRIES} entries")
    for key, value in metadata.items():
        if not 0 < len(key) <= MAX_METADATA_KEY or not _storable(key):
            raise InvalidRequest(
                f"metadata keys must be 1 to {MAX_METADATA_KEY} characters of text"
            )
        if len(value) > MAX_METADATA_VALUE or not _storable(value):
            raise InvalidRequest(
                f"metadata values must be at most {MAX_METADATA_VALUE} characters of text"
            )


def _optional_text(value: Any, name: str, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > limit or not _storable(value):
        raise InvalidRequest(
            f"{name} must be text of at most {limit} characters (no NUL, valid Unicode)"
        )


def _optional_url(value: Any, name: str) -> None:
    """An absolute http(s) URL: the provider sends the customer or its webhooks there."""
    if value is None:
        return
    problem = f"{name} must be an absolute http(s) URL of at most {_MAX_URL} characters"
    if not isinstance(value, str) or len(value) > _MAX_URL:
        raise InvalidRequest(problem)
    if not value.isprintable() or any(character.isspace() for character in value):
        raise InvalidRequest(f"{name} must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidRequest(problem) from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(problem)


def _storable(text: str) -> bool:
    """Whether both databases store ``text`` as it is: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
