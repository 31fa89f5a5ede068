"""Money: exact minor units, ISO 4217 exponents, no floats, no mixed currencies."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from paycore.errors import CurrencyMismatch, InvalidAmount, InvalidRequest
from paycore.money import Currency, Money


@pytest.mark.parametrize(("code", "exponent"), [("JPY", 0), ("USD", 2), ("KWD", 3), ("CLF", 4)])
def test_exponents_come_from_iso_4217(code: str, exponent: int) -> None:
    assert Currency.of(code).exponent == exponent


def test_currency_codes_are_case_insensitive() -> None:
    assert Currency.of("usd") == Currency.of("USD")


@pytest.mark.parametrize("code", ["XXY", "US", "USDD", "ÜSD", "", "XAU"])
def test_unknown_or_unpayable_currencies_are_refused(code: str) -> None:
    with pytest.raises(InvalidRequest):
        Currency.of(code)


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("10.50", "USD", 1050),
        ("10", "USD", 1000),
        ("0.01", "USD", 1),
        ("1000", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("0.0001", "CLF", 1),
        ("10.500", "USD", 1050),
        ("-2.5", "USD", -250),
    ],
)
def test_decimal_strings_parse_exactly(text: str, code: str, minor: int) -> None:
    assert Money.parse(text, code) == Money(minor, code)


@pytest.mark.parametrize(
    ("text", "code"), [("10.005", "USD"), ("1.5", "JPY"), ("1.2345", "KWD"), ("0.00001", "CLF")]
)
def test_more_decimals_than_the_currency_allows_is_an_error_not_a_rounding(
    text: str, code: str
) -> None:
    with pytest.raises(InvalidAmount, match="never rounded"):
        Money.parse(text, code)


@pytest.mark.parametrize(
    "text", ["", "ten", "1e3", "1,000.00", "1.", ".5", "+1", "0x10", "NaN", "Infinity", "١٠"]
)
def test_malformed_amount_strings_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text, "USD")


def test_decimals_parse_exactly_too() -> None:
    assert Money.parse(Decimal("19.99"), "EUR") == Money(1999, "EUR")
    with pytest.raises(InvalidAmount):
        Money.parse(Decimal("NaN"), "EUR")


@pytest.mark.parametrize("value", [10.5, 1.0, float("nan")])
def test_floats_are_refused_everywhere(value: float) -> None:
    with pytest.raises(InvalidAmount, match="float"):
        Money.parse(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money(100, "USD") * value  # type: ignore[operator]


def test_booleans_are_not_amounts() -> None:
    with pytest.raises(InvalidAmount):
        Money(True, "USD")


def test_amounts_beyond_64_bits_are_refused() -> None:
    with pytest.raises(InvalidAmount, match="out of range"):
        Money(2**63, "USD")
    with pytest.raises(InvalidAmount):
        Money.parse("9" * 30, "USD")


def test_formatting_and_decimal_conversion() -> None:
    assert str(Money(1050, "USD")) == "10.50 USD"
    assert str(Money(5, "JPY")) == "5 JPY"
    assert Money(1, "KWD").to_decimal() == Decimal("0.001")
    assert Money(1, "KWD").to_decimal_string() == "0.001"
    assert Money(100, "USD").to_decimal_string() == "1.00"
    assert repr(Money(1050, "USD")) == "Money(1050, 'USD')"


def test_same_currency_arithmetic_and_ordering() -> None:
    a, b = Money(1000, "USD"), Money(250, "USD")
    assert a + b == Money(1250, "USD")
    assert a - b == Money(750, "USD")
    assert -b == Money(-250, "USD")
    assert b * 3 == 3 * b == Money(750, "USD")
    assert b < a <= a and a > b >= b
    assert sorted([a, b]) == [b, a]


def test_mixing_currencies_is_an_error() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    for combine in (lambda: usd + eur, lambda: usd - eur, lambda: usd < eur, lambda: usd >= eur):
        with pytest.raises(CurrencyMismatch):
            combine()
    assert usd != eur


def test_money_is_immutable_and_hashable() -> None:
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.minor_units = 5  # type: ignore[misc]
    assert {money, Money(100, "USD")} == {money}


def test_parsing_never_rounds_whatever_the_callers_decimal_context() -> None:
    with pytest.raises(InvalidAmount, match="never rounded"):
        Money.parse("10.00000000000000000000000000001", "USD")
    with localcontext() as context:
        context.prec = 6
        assert Money.parse("12345.67", "USD") == Money(1234567, "USD")
        assert Money(1234567, "USD").to_decimal_string() == "12345.67"
        assert Money.parse(Decimal("9999999999999.99"), "USD").minor_units == 999999999999999


def test_a_currency_must_have_its_iso_exponent() -> None:
    with pytest.raises(InvalidRequest, match="2 decimal places"):
        Currency("USD", 0)
    assert Currency("JPY", 0) == Currency.of("jpy")


def test_codes_that_only_look_ascii_after_upper_casing_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        Currency.of("ßd")  # "ßd".upper() == "SSD"
