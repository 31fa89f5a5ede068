"""Card numbers as a sandbox's hosted page reads them.

`card_digits` says whether what the customer typed is a card number at all: 12 to 19
digits (spaces ignored) that pass the Luhn check. Which test card does what is each
provider's own table.
"""

from __future__ import annotations

from paycore.gateways.scrub import luhn_valid

__all__ = ["card_digits"]


def card_digits(number: str) -> str | None:
    """The digits of ``number`` (spaces ignored) when it is a card number, else None."""
    digits = number.replace(" ", "")
    if digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19 and luhn_valid(digits):
        return digits
    return None
