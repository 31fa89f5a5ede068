"""The WooshPay sandbox's test cards (sandbox only, never WooshPay's own) and what a
card number tells once classified: brand, last four digits, and the test outcome.
The number itself goes no further than `card_from_number`.
"""

from __future__ import annotations

from typing import Any

from attrs import define, frozen

from paycore.sandbox.base import SandboxError
from paycore.sandbox.cards import card_digits

__all__ = [
    "CHALLENGE",
    "DECLINES",
    "READY_MADE",
    "SUCCEEDS",
    "TEST_CARDS",
    "Card",
    "Decline",
    "card_from_number",
]

SUCCEEDS = "succeeds"
CHALLENGE = "challenge"  # 3-D Secure asks the cardholder first


@frozen
class Decline:
    """What a declining card answers: the error ``code``, ``decline_code`` and message."""

    code: str
    decline_code: str | None
    message: str


DECLINES: dict[str, Decline] = {
    "generic_decline": Decline("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": Decline(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "lost_card": Decline("card_declined", "lost_card", "Your card was declined."),
    "stolen_card": Decline("card_declined", "stolen_card", "Your card was declined."),
    "fraudulent": Decline("card_declined", "fraudulent", "Your card was declined."),
    "expired_card": Decline("expired_card", "expired_card", "Your card has expired."),
    "incorrect_cvc": Decline(
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
    "authentication_required": Decline(
        "authentication_required",
        "authentication_required",
        "The card needs 3-D Secure, which cannot happen while the customer is away.",
    ),
}

# Sandbox test cards (never WooshPay's own): number -> outcome (SUCCEEDS, CHALLENGE or a
# key of DECLINES). Any other number that passes the Luhn check succeeds.
TEST_CARDS: dict[str, str] = {
    "4242424242424242": SUCCEEDS,
    "5555555555554444": SUCCEEDS,
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4100000000000019": "fraudulent",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000003220": CHALLENGE,
}

# Ready-made payment method ids, usable wherever a ``pm_…`` is: each use is a new copy.
READY_MADE: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_declined": "4000000000000002",
    "pm_card_insufficient_funds": "4000000000009995",
    "pm_card_3ds": "4000000000003220",
    "pm_card_expired": "4000000000000069",
}

_BRANDS = (  # (prefixes, brand), the first match wins
    (("34", "37"), "amex"),
    (("4",), "visa"),
    (tuple(str(p) for p in [*range(51, 56), *range(2221, 2721)]), "mastercard"),
    (("6011", "644", "645", "646", "647", "648", "649", "65"), "discover"),
    (("35",), "jcb"),
    (("62",), "unionpay"),
)


@define(kw_only=True)
class Card:
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    outcome: str  # SUCCEEDS, CHALLENGE or a key of DECLINES; never shown
    country: str = "US"
    funding: str = "credit"

    def as_json(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "country": self.country,
            "funding": self.funding,
        }


def card_from_number(number: str, exp_month: int, exp_year: int) -> Card:
    """Classify a card number (spaces allowed); 402 ``incorrect_number`` when it is not one."""
    digits = card_digits(number)
    if digits is None:
        raise SandboxError(
            402,
            "incorrect_number",
            "Your card number is incorrect.",
            kind="card_error",
            param="card[number]",
        )
    brand = next((b for prefixes, b in _BRANDS if digits.startswith(prefixes)), "unknown")
    return Card(
        brand=brand,
        last4=digits[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
        outcome=TEST_CARDS.get(digits, SUCCEEDS),
    )
