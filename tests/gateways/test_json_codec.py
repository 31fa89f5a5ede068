"""Exact numbers on the wire: decimals in, decimals out, floats never."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paycore.errors import InvalidAmount
from paycore.gateways.json_codec import decode_json, encode_json


def test_decimal_numbers_are_read_exactly() -> None:
    body = decode_json(b'{"amount": 1234567890123456.79, "count": 3}')
    assert body == {"amount": Decimal("1234567890123456.79"), "count": 3}
    assert type(body["count"]) is int


def test_decimals_are_written_as_exact_json_numbers() -> None:
    payload = {"amount": Decimal("100.55"), "items": [Decimal("0.001"), 2], "note": "x"}
    assert encode_json(payload) == b'{"amount":100.55,"items":[0.001,2],"note":"x"}'
    assert encode_json({"big": Decimal("1234567890123456.79")}) == b'{"big":1234567890123456.79}'


def test_a_string_that_looks_like_the_marker_is_left_alone() -> None:
    tricky = {"a": "\x00paycore-decimal-0-0\x00", "b": Decimal("1.5")}
    assert decode_json(encode_json(tricky)) == tricky


@pytest.mark.parametrize("payload", [{"amount": 10.5}, [1, 2.0], {"a": {"b": [0.1]}}])
def test_floats_are_refused(payload: object) -> None:
    with pytest.raises(InvalidAmount, match="never as a float"):
        encode_json(payload)


def test_non_finite_decimals_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        encode_json({"amount": Decimal("NaN")})


def test_text_stays_unicode() -> None:
    assert encode_json({"name": "Łódź"}) == '{"name":"Łódź"}'.encode()


@pytest.mark.parametrize("body", [b'{"amount": NaN}', b"[Infinity]", b"-Infinity"])
def test_non_standard_constants_are_not_json(body: bytes) -> None:
    with pytest.raises(ValueError, match="is not JSON"):
        decode_json(body)
