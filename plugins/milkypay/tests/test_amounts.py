"""Amounts on the wire: major-unit JSON numbers, exact both ways, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from paycore_milkypay.amounts import money_from, to_wire

from paycore.errors import GatewayProtocolError
from paycore.gateways.json_codec import decode_json, encode_json
from paycore.money import MAX_MINOR_UNITS, Money


@pytest.mark.parametrize(
    ("money", "wire"),
    [
        (Money(29, "USD"), b"0.29"),  # 0.29 is no binary float: 0.28999999999999998
        (Money(10055, "USD"), b"100.55"),
        (Money(1000, "USD"), b"10.00"),
        (Money(1, "EUR"), b"0.01"),
        (Money(1000, "JPY"), b"1000"),
        (Money(1005, "KWD"), b"1.005"),
        (Money(1000, "KWD"), b"1.000"),
    ],
)
def test_an_amount_is_written_in_major_units_digit_for_digit(money, wire):
    assert encode_json({"amount": to_wire(money)}) == b'{"amount":' + wire + b"}"


def test_a_currency_without_minor_units_is_written_as_an_integer():
    assert type(to_wire(Money(1000, "JPY"))) is int
    assert to_wire(Money(1000, "JPY")) == 1000


@pytest.mark.parametrize(
    ("wire", "currency", "minor_units"),
    [
        (b"0.29", "USD", 29),
        (b"100.55", "USD", 10055),
        (b"22", "USD", 2200),  # the platform writes whole amounts without decimals
        (b"10.0", "USD", 1000),
        (b"1000", "JPY", 1000),
        (b"1.005", "KWD", 1005),
        (b"1.5", "KWD", 1500),
        (b"0", "USD", 0),
        (b"1E+2", "USD", 10000),
    ],
)
def test_an_answers_amount_is_read_exactly(wire, currency, minor_units):
    value = decode_json(b'{"amount": ' + wire + b"}")["amount"]

    assert money_from(value, currency) == Money(minor_units, currency)


@pytest.mark.parametrize(
    "money",
    [Money(29, "USD"), Money(10055, "USD"), Money(1000, "JPY"), Money(1005, "KWD")],
)
def test_every_amount_comes_back_as_it_went(money):
    wire = decode_json(encode_json({"amount": to_wire(money)}))["amount"]

    assert money_from(wire, money.currency.code) == money


@pytest.mark.parametrize(
    ("value", "currency"),
    [(Decimal("1.005"), "USD"), (Decimal("0.001"), "EUR"), (Decimal("1000.5"), "JPY")],
)
def test_more_decimals_than_the_currency_has_is_an_error_never_a_rounding(value, currency):
    with pytest.raises(GatewayProtocolError, match="more decimals than"):
        money_from(value, currency)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(0.29, "float"), (10.0, "float"), (True, "bool"), (False, "bool"), ("10.00", "str")],
)
def test_floats_bools_and_strings_are_not_amounts(value, kind):
    with pytest.raises(GatewayProtocolError, match=f"not a number \\(got {kind}\\)") as caught:
        money_from(value, "USD", what="'processed_amount'")

    assert "'processed_amount'" in str(caught.value)
    assert caught.value.gateway == "milkypay"


@pytest.mark.parametrize("value", [None, [], {}])
def test_a_missing_amount_is_an_error(value):
    with pytest.raises(GatewayProtocolError, match="not a number"):
        money_from(value, "USD")


@pytest.mark.parametrize("value", [Decimal("-1.00"), -5, Decimal("NaN"), Decimal("Infinity")])
def test_negative_and_non_finite_amounts_are_errors(value):
    with pytest.raises(GatewayProtocolError, match="not a plausible amount"):
        money_from(value, "USD")


@pytest.mark.parametrize("currency", ["ZZZ", "XXX", "usd1"])
def test_an_amount_of_an_unknown_currency_is_an_error(currency):
    with pytest.raises(GatewayProtocolError, match="not an amount of its currency"):
        money_from(Decimal("1.00"), currency)


def test_the_largest_amount_a_ledger_holds_is_exact_both_ways():
    largest = Money(MAX_MINOR_UNITS, "USD")
    wire = encode_json({"amount": to_wire(largest)})

    assert wire == b'{"amount":92233720368547758.07}'
    assert money_from(decode_json(wire)["amount"], "USD") == largest


def test_an_amount_beyond_what_a_ledger_holds_is_an_error():
    with pytest.raises(GatewayProtocolError, match="not an amount of its currency"):
        money_from(Decimal("92233720368547758.08"), "USD")


def test_the_gateway_named_in_errors_is_the_one_reading():
    with pytest.raises(GatewayProtocolError) as caught:
        money_from(1.5, "USD", gateway="paytone")

    assert caught.value.gateway == "paytone"
