"""The MilkyPay sandbox's payment services, its amounts and its test cards.

[PROPOSAL] The catalogue: for each sandbox currency (USD, EUR, UAH, GBP: 2 decimals; JPY:
0; KWD: 3) a card service ``payment_card_<cur>_hpp`` (paid on the hosted page) and a
test service ``test_<cur>`` whose one field, ``test_details_success_rate`` (0–100, as
the platform's test services document it), decides the outcome at once. Minimum and
maximum amounts are the sandbox's, in major units of the currency.

Amounts arrive as JSON numbers of major units (`Decimal` or int once decoded): more
decimals than the currency has is ``invalid_amount_precision``, never a rounding.

Test cards, SANDBOX ONLY (not the platform's): 4242424242424242 and 5555555555554444
succeed; 4000000000000002 ``declined``; 4000000000009995 ``insufficient_funds``;
4000000000000069 ``expired_card``; 4100000000000019 ``fraud_suspected``;
4000000000003220 asks for 3-D Secure. Another Luhn-valid number succeeds. A number is
classified and forgotten: only its outcome goes further.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from attrs import frozen

from paycore.errors import InvalidAmount
from paycore.money import Currency, Money
from paycore.sandbox.cards import card_digits

__all__ = [
    "CHALLENGE",
    "CURRENCIES",
    "PAID",
    "SUCCESS_RATE_FIELD",
    "Refusal",
    "Service",
    "ServiceField",
    "card_outcome",
    "find_service",
    "parse_amount",
    "services_for",
]

SUCCESS_RATE_FIELD = "test_details_success_rate"
PAID = "ok"  # a card's outcome when it pays: the resolution of a paid invoice
CHALLENGE = "challenge"  # the card asks for 3-D Secure first


class Refusal(ValueError):
    """A value the sandbox refuses: its error ``code`` and ``detail`` (the caller points)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@frozen
class ServiceField:
    """A field a service asks for (``service_fields``), as payment-prerequest lists it."""

    key: str
    type: str
    label: dict[str, str]
    example: Any
    regexp: str
    required: bool
    position: int

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.type,
            "label": dict(self.label),
            "example": self.example,
            "hint": None,
            "regexp": self.regexp,
            "required": self.required,
            "position": self.position,
        }


@frozen
class Service:
    """One payment service: its code, method, currency, amount range and fields."""

    code: str
    method: str
    name: str
    currency: str
    min_amount: Money
    max_amount: Money
    fields: tuple[ServiceField, ...] = ()

    @property
    def on_hosted_page(self) -> bool:
        """Whether the customer pays it on the hosted page (a card), not at once."""
        return self.method == "payment_card"

    def covers(self, amount: Money) -> bool:
        return self.min_amount <= amount <= self.max_amount

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "method": self.method,
            "name": self.name,
            "currency": self.currency,
            "min_amount": self.min_amount.to_decimal(),
            "max_amount": self.max_amount.to_decimal(),
            "fields": [field.as_json() for field in self.fields],
        }

    def field_problems(self, values: dict[str, str]) -> list[tuple[str, str]]:
        """What is wrong with ``values`` for this service: (field key, detail) pairs."""
        known = {field.key: field for field in self.fields}
        problems = [(key, f"{self.code} has no field {key}") for key in values if key not in known]
        for field in sorted(self.fields, key=lambda f: f.position):
            value = values.get(field.key)
            if value is None:
                if field.required:
                    problems.append((field.key, f"{field.key} is required by {self.code}"))
            elif not re.fullmatch(field.regexp, value):
                problems.append((field.key, f"{field.key} must match {field.regexp}"))
        return problems


SUCCESS_RATE = ServiceField(
    key=SUCCESS_RATE_FIELD,
    type="integer",
    label={"en": "Success rate (%)", "uk": "Відсоток успіху (%)", "ru": "Процент успеха (%)"},
    example=100,
    regexp="^(100|[1-9]?[0-9])$",
    required=True,
    position=0,
)

CURRENCIES = ("USD", "EUR", "UAH", "GBP", "JPY", "KWD")

# Card service minimum and maximum, test service maximum, in major units; a test
# service takes anything from the currency's smallest unit.
_RANGES = {
    "JPY": ("50", "1000000", "10000000"),
    "KWD": ("0.150", "3000", "30000"),
}
_DEFAULT_RANGE = ("0.50", "10000", "100000")


def _catalogue() -> dict[str, Service]:
    services: dict[str, Service] = {}
    for currency in CURRENCIES:
        card_min, card_max, test_max = _RANGES.get(currency, _DEFAULT_RANGE)
        lower = currency.lower()
        for service in (
            Service(
                code=f"payment_card_{lower}_hpp",
                method="payment_card",
                name="Bank card",
                currency=currency,
                min_amount=Money.parse(card_min, currency),
                max_amount=Money.parse(card_max, currency),
            ),
            Service(
                code=f"test_{lower}",
                method="test",
                name="Test payment",
                currency=currency,
                min_amount=Money(1, currency),
                max_amount=Money.parse(test_max, currency),
                fields=(SUCCESS_RATE,),
            ),
        ):
            services[service.code] = service
    return services


_SERVICES = _catalogue()


def services_for(currency: str, amount: Money | None = None) -> list[Service]:
    """The services of ``currency`` (those whose range holds ``amount``, when given)."""
    return [
        service
        for service in _SERVICES.values()
        if service.currency == currency and (amount is None or service.covers(amount))
    ]


def find_service(code: str) -> Service | None:
    return _SERVICES.get(code)


def parse_amount(value: Any, currency: str) -> Money:
    """A JSON amount of major units as exact `Money`, or a `Refusal` saying why not."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise Refusal("invalid_type", "amount must be a number of major units, such as 10.50")
    number = Decimal(value)
    exponent = Currency.of(currency).exponent
    if not number.is_finite() or number <= 0:
        raise Refusal("invalid_value", "amount must be greater than zero")
    if number.scaleb(exponent) != number.scaleb(exponent).to_integral_value():
        raise Refusal(
            "invalid_amount_precision",
            f"amount has more decimals than {currency} allows ({exponent})",
        )
    try:
        return Money.parse(number, currency)
    except InvalidAmount:
        raise Refusal("invalid_value", "amount is out of range") from None


# -- test cards ----------------------------------------------------------------------------

_TEST_CARDS = {
    "4242424242424242": PAID,
    "5555555555554444": PAID,
    "4000000000000002": "declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4100000000000019": "fraud_suspected",
    "4000000000003220": CHALLENGE,
}


def card_outcome(number: str) -> str:
    """What paying with the card ``number`` does: `PAID`, `CHALLENGE` or a resolution.

    A number that is not one (digits, length, Luhn check) is a `Refusal`.
    """
    digits = card_digits(number)
    if digits is None:
        raise Refusal("invalid_card_number", "The card number is incorrect.")
    return _TEST_CARDS.get(digits, PAID)
