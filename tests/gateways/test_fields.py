"""Typed reading of JSON answers: timestamps in seconds, milliseconds, or either."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paycore.errors import GatewayProtocolError
from paycore.gateways.fields import AnswerReader

read = AnswerReader("shop")
AUGUST_21 = datetime(2023, 8, 21, 3, 33, 19, tzinfo=UTC)


def test_seconds_and_milliseconds_read_as_the_same_instant() -> None:
    assert read.timestamp({"created": 1692588799}, "created") == AUGUST_21
    assert read.timestamp({"created": 1692588799000}, "created", unit="ms") == AUGUST_21


def test_milliseconds_keep_their_fraction_of_a_second() -> None:
    moment = read.timestamp({"created": 1692588799250}, "created", unit="ms")

    assert moment == AUGUST_21.replace(microsecond=250_000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1692588799, AUGUST_21),  # seconds
        (1692588799000, AUGUST_21),  # milliseconds
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (99_999_999_999, datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),  # the last "seconds"
        (100_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # the first "ms"
    ],
)
def test_auto_tells_seconds_from_milliseconds_by_size(value: int, expected: datetime) -> None:
    assert read.timestamp({"created": value}, "created", unit="auto") == expected


@pytest.mark.parametrize("value", [-1, 10**20, 1692588799.5, "1692588799", True, None])
def test_implausible_or_mistyped_timestamps_are_protocol_errors(value: object) -> None:
    with pytest.raises(GatewayProtocolError, match="'created'"):
        read.timestamp({"created": value}, "created", unit="auto")


def test_a_seconds_field_holding_milliseconds_is_refused_not_misread() -> None:
    with pytest.raises(GatewayProtocolError, match="not a plausible timestamp"):
        read.timestamp({"created": 1692588799000}, "created")


def test_an_absent_optional_timestamp_is_none_whatever_the_unit() -> None:
    assert read.optional_timestamp({}, "expires_at", unit="ms") is None
    assert read.optional_timestamp({"expires_at": 1692588799}, "expires_at") == AUGUST_21
