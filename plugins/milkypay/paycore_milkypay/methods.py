"""The services a commerce account offers for an amount (``payment-prerequest``).

Each service (``payment_card_usd_hpp``, ``test_usd`` …) becomes one
`PaymentMethodOption` whose ``type`` is the service code, the `PaymentMethod.type`
that pays with it; its required fields, in their ``position`` order, are what the
frontend collects into `PaymentMethod.fields`. The answer's ``services`` is an object
keyed by code, as documented for the platform's payout twin; a list of services is
read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from paycore.money import Money
from paycore.transactions.model import PaymentMethodOption
from paycore_milkypay.documents import DocumentReader

__all__ = ["options_from"]

_LAST = 2**31  # where a field without a position goes


def options_from(
    read: DocumentReader, body: Mapping[str, Any], amount: Money
) -> tuple[PaymentMethodOption, ...]:
    """The options a ``payment-prerequest`` answer lists, in its order."""
    data = read.object(body.get("data"), "the answer's data")
    services = data.get("services") or {}
    if isinstance(services, Mapping):
        entries: Iterable[Any] = services.values()
    elif isinstance(services, list):
        entries = services
    else:
        raise read.error("the answer's 'services' is neither an object nor an array")
    return tuple(_option(read, read.object(entry, "a service"), amount) for entry in entries)


def _option(read: DocumentReader, service: Mapping[str, Any], amount: Money) -> PaymentMethodOption:
    code = read.text(service, "code")
    currency = read.optional_text(service, "currency") or amount.currency.code
    fields = [read.object(item, "a service field") for item in service.get("fields") or ()]
    fields.sort(key=lambda item: _position(read, item))
    return PaymentMethodOption(
        gateway=read.gateway,
        type=code,
        display_name=(
            read.optional_text(service, "name") or read.optional_text(service, "method") or code
        ),
        required_fields=tuple(
            read.text(item, "key") for item in fields if item.get("required") is True
        ),
        min_amount=_limit(read, service, "min_amount", currency),
        max_amount=_limit(read, service, "max_amount", currency),
    )


def _position(read: DocumentReader, field: Mapping[str, Any]) -> int:
    return _LAST if field.get("position") is None else read.integer(field, "position")


def _limit(
    read: DocumentReader, service: Mapping[str, Any], key: str, currency: str
) -> Money | None:
    return None if service.get(key) is None else read.money(service, key, currency)
