"""Amounts on the Corefy wire: JSON numbers in major units, exact both ways.

The platform writes ``"amount": 100.55`` for 100.55 USD, ``1000`` for 1000 JPY and
``1.005`` for 1.005 KWD. paycore's `Money` counts minor units, so every amount crosses
the wire through this module: out as a `Decimal` (or an int for a currency without
minor units), which `paycore.gateways.json_codec` writes digit for digit; in from the
`Decimal` or int that `decode_json` reads. A float never takes part, and an answer
with more decimals than its currency has is an error, never a rounding.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from paycore.errors import GatewayProtocolError, InvalidRequest
from paycore.money import Money

__all__ = ["money_from", "to_wire"]

DEFAULT_GATEWAY = "milkypay"


def to_wire(amount: Money) -> Decimal | int:
    """``amount`` in major units, as the JSON number the platform expects.

    ``Money(10055, "USD")`` → ``Decimal("100.55")``; ``Money(1000, "JPY")`` → ``1000``.
    The currency's decimals are kept (``Money(1000, "USD")`` → ``Decimal("10.00")``).
    """
    if amount.currency.exponent == 0:
        return amount.minor_units
    return amount.to_decimal()


def money_from(
    value: Any, currency: str, *, what: str = "amount", gateway: str = DEFAULT_GATEWAY
) -> Money:
    """The `Money` a wire amount ``value`` of ``currency`` stands for, exactly.

    ``value`` is what `decode_json` gives: an int or a `Decimal`. Anything else (a
    float, a bool, a string), a negative amount, an unknown currency, or more
    decimals than the currency has raises `GatewayProtocolError` naming ``what``.
    """
    # bool is an int subclass: True is not one unit of anything.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise GatewayProtocolError(
            f"the answer's {what} is not a number (got {type(value).__name__})", gateway=gateway
        )
    if not (isinstance(value, int) or value.is_finite()) or value < 0:
        raise GatewayProtocolError(
            f"the answer's {what} is not a plausible amount", gateway=gateway
        )
    try:
        return Money.parse(Decimal(value), currency)
    except InvalidRequest as exc:
        raise GatewayProtocolError(
            f"the answer's {what} is not an amount of its currency: {exc}", gateway=gateway
        ) from None
