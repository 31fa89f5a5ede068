"""What a sandbox's page takes for a card number."""

from __future__ import annotations

import pytest

from paycore.sandbox.cards import card_digits


@pytest.mark.parametrize(
    ("typed", "digits"),
    [
        ("4242424242424242", "4242424242424242"),
        ("4242 4242 4242 4242", "4242424242424242"),  # as printed on the card
        ("4000000000000002", "4000000000000002"),
        ("378282246310005", "378282246310005"),  # 15 digits
        ("4242424242424241", None),  # fails the Luhn check
        ("42424242424", None),  # too short
        ("4" * 20, None),  # too long
        ("4242-4242-4242-4242", None),
        ("４２４２４２４２４２４２４２４２", None),  # full-width digits are not ASCII
        ("", None),
    ],
)
def test_a_card_number_is_12_to_19_digits_passing_the_luhn_check(
    typed: str, digits: str | None
) -> None:
    assert card_digits(typed) == digits
