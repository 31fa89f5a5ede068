"""Money: an integer count of minor units and an ISO 4217 currency.

Floats are refused everywhere. Decimal strings are parsed exactly or not at all:
``Money.parse("10.005", "USD")`` raises `InvalidAmount` instead of rounding.
Exponents come from the ``iso4217`` package (JPY 0, USD 2, KWD 3, CLF 4).
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from functools import cache
from typing import Any

import iso4217
from attrs import field, frozen

from paycore.errors import CurrencyMismatch, InvalidAmount, InvalidRequest

__all__ = ["Currency", "Money"]

# A ledger stores minor units in signed 64-bit integers; nothing larger is money.
MAX_MINOR_UNITS = 2**63 - 1

_DECIMAL_STRING = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

# Money arithmetic never uses the caller's decimal context (its precision may be
# anything): this one has room for every amount and refuses to round.
_EXACT = Context(prec=100, traps=[Inexact, Rounded, InvalidOperation])


@frozen
class Currency:
    """An ISO 4217 currency: its alphabetic ``code`` and its minor-unit ``exponent``.

    Build one with `Currency.of`; a code and exponent that disagree with ISO 4217
    are refused.
    """

    code: str
    exponent: int

    def __attrs_post_init__(self) -> None:
        known = _iso_exponent(self.code)
        if known != self.exponent:
            raise InvalidRequest(
                f"{self.code} has {known} decimal places in ISO 4217, not {self.exponent}"
            )

    @classmethod
    def of(cls, code: str | Currency) -> Currency:
        """The currency for an ISO 4217 alphabetic code (case-insensitive)."""
        if isinstance(code, Currency):
            return code
        if not isinstance(code, str):
            raise InvalidRequest(
                f"a currency is a 3-letter ISO 4217 code, not {type(code).__name__}"
            )
        if not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise InvalidRequest(f"{code[:8]!r} is not an ISO 4217 currency code such as 'USD'")
        return _currency(code.upper())

    def __str__(self) -> str:
        return self.code


@cache
def _currency(code: str) -> Currency:
    return Currency(code, _iso_exponent(code))


@cache
def _iso_exponent(code: str) -> int:
    if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
        raise InvalidRequest(f"{code[:8]!r} is not an ISO 4217 currency code such as 'USD'")
    try:
        entry = iso4217.Currency(code)
    except ValueError:
        raise InvalidRequest(f"{code!r} is not an ISO 4217 currency code") from None
    if entry.exponent is None:
        raise InvalidRequest(
            f"{code} has no minor unit in ISO 4217 and cannot be used for payments"
        )
    exponent: int = entry.exponent
    return exponent


def _to_currency(code: str | Currency) -> Currency:
    return Currency.of(code)


def _check_minor_units(_: object, __: object, value: Any) -> None:
    # bool is an int subclass; True is not one cent.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(
            f"minor_units must be an int, not {type(value).__name__}; "
            "use Money.parse('12.34', 'USD') for decimal strings"
        )
    if abs(value) > MAX_MINOR_UNITS:
        raise InvalidAmount("amount is out of range (more than 2**63 - 1 minor units)")


@frozen(repr=False, order=False)
class Money:
    """An exact amount: ``minor_units`` (an int) of ``currency``.

    ``Money(1050, "USD")`` is 10.50 USD. Arithmetic and ordering work only between
    amounts of the same currency; mixing raises `CurrencyMismatch`.
    """

    minor_units: int = field(validator=_check_minor_units)
    currency: Currency = field(converter=_to_currency)

    @classmethod
    def parse(cls, amount: str | Decimal, currency: str | Currency) -> Money:
        """Parse a decimal major-unit amount (``"10.50"``) exactly.

        Digits beyond the currency's exponent must be zeros: ``"10.005"`` USD is an
        error, never a rounding. Floats are refused; pass a string.
        """
        cur = Currency.of(currency)
        if isinstance(amount, str):
            text = amount.strip()
            if len(text) > 64 or not _DECIMAL_STRING.fullmatch(text):
                raise InvalidAmount(
                    f"{amount[:32]!r} is not a decimal amount such as '10.50' for {cur.code}"
                )
            value = Decimal(text)
        elif isinstance(amount, Decimal):
            if not amount.is_finite():
                raise InvalidAmount(f"{amount} is not a finite amount")
            value = amount
        else:
            raise InvalidAmount(_not_a_decimal(amount))
        try:
            scaled = _EXACT.scaleb(value, cur.exponent)
        except (ArithmeticError, ValueError):  # decimal's traps are ArithmeticErrors
            raise InvalidAmount(f"{str(value)[:40]} {cur.code} is out of range") from None
        minor = int(scaled)
        if _EXACT.compare(scaled, minor) != 0:
            raise InvalidAmount(
                f"{value} has more decimals than {cur.code} allows ({cur.exponent}); "
                "amounts are never rounded"
            )
        return cls(minor, cur)

    @classmethod
    def zero(cls, currency: str | Currency) -> Money:
        return cls(0, currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exact, with the currency's number of decimals."""
        return _EXACT.scaleb(Decimal(self.minor_units), -self.currency.exponent)

    def to_decimal_string(self) -> str:
        """Major units as a plain string: ``"10.50"``, ``"1000"`` for JPY."""
        return f"{self.to_decimal():f}"

    def is_zero(self) -> bool:
        return self.minor_units == 0

    def is_positive(self) -> bool:
        return self.minor_units > 0

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money({self.minor_units}, {self.currency.code!r})"

    def _same_currency(self, other: object, operation: str) -> Money:
        if not isinstance(other, Money):
            raise InvalidAmount(f"cannot {operation} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self.currency.code} and {other.currency.code}"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(
            self.minor_units + self._same_currency(other, "add").minor_units, self.currency
        )

    def __sub__(self, other: Money) -> Money:
        return Money(
            self.minor_units - self._same_currency(other, "subtract").minor_units, self.currency
        )

    def __neg__(self) -> Money:
        return Money(-self.minor_units, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise InvalidAmount(
                f"Money can be multiplied by an int only, not {type(factor).__name__}"
            )
        return Money(self.minor_units * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.minor_units < self._same_currency(other, "compare").minor_units

    def __le__(self, other: Money) -> bool:
        return self.minor_units <= self._same_currency(other, "compare").minor_units

    def __gt__(self, other: Money) -> bool:
        return self.minor_units > self._same_currency(other, "compare").minor_units

    def __ge__(self, other: Money) -> bool:
        return self.minor_units >= self._same_currency(other, "compare").minor_units


def _not_a_decimal(amount: Any) -> str:
    if isinstance(amount, float):
        return (
            f"floats are not accepted for money ({amount!r} is not exact); "
            "pass a decimal string such as '10.50'"
        )
    return f"an amount is a decimal string such as '10.50', not {type(amount).__name__}"
