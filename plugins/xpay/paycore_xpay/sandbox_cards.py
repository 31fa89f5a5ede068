"""The XPAY sandbox's test cards: what a card number typed on the hosted page does.

SANDBOX ONLY (XPAY publishes none): 4242424242424242 and 5555555555554444 pay;
4000000000000002 is ``declined``; 4000000000009995 ``insufficient_funds``;
4000000000000069 ``expired_card``; 4100000000000019 ``fraud_suspected``. Any other
Luhn-valid number of 12 to 19 digits pays; anything else is `InvalidCard`. A number is
classified and forgotten: only its outcome goes further.
"""

from __future__ import annotations

from paycore.sandbox.cards import card_digits

__all__ = ["DECLINE_REASONS", "PAID", "TEST_CARDS", "InvalidCard", "card_outcome"]

PAID = "paid"

# The reasons a card declines with (an operation's ``Reason`` once it is "21").
DECLINE_REASONS = ("declined", "insufficient_funds", "expired_card", "fraud_suspected")

TEST_CARDS: dict[str, str] = {
    "4242424242424242": PAID,
    "5555555555554444": PAID,
    "4000000000000002": "declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4100000000000019": "fraud_suspected",
}


class InvalidCard(ValueError):
    """Not a card number (digits, length, Luhn check); the number is never quoted."""


def card_outcome(number: str) -> str:
    """`PAID` or the decline reason of paying with ``number`` (spaces ignored)."""
    digits = card_digits(number)
    if digits is None:
        raise InvalidCard("The card number is incorrect.")
    return TEST_CARDS.get(digits, PAID)
