"""Read a provider's JSON answer field by field, naming what is not as documented.

Plugins build one `AnswerReader` per gateway and read every field through it. Each
method raises `GatewayProtocolError` naming the field, never quoting its value;
the driver reports that as `OutcomeUnknown` when the request may have changed
something at the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from paycore.errors import GatewayProtocolError
from paycore.gateways.base import read_json
from paycore.gateways.json_codec import decode_json

__all__ = ["AnswerReader"]

_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z
# In "auto", a number this large is milliseconds: as seconds it would be past the
# year 5000, as milliseconds it is any date after 1973.
_MILLISECONDS_FROM = 100_000_000_000

TimestampUnit = Literal["s", "ms", "auto"]


class AnswerReader:
    """Typed access to JSON answers of the gateway ``gateway``."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway

    def json(self, response: httpx.Response) -> Mapping[str, Any]:
        """The response's body, which must be a JSON object."""
        return self.object(read_json(response, self.gateway), "the answer")

    def document(self, raw: bytes, what: str) -> Mapping[str, Any]:
        """``raw`` bytes (a webhook's body, verified first) as a JSON object."""
        try:
            value = decode_json(raw)
        except (ValueError, UnicodeDecodeError):
            raise self.error(f"{what} is not JSON") from None
        return self.object(value, what)

    def object(self, value: Any, what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"{what} is not a JSON object")
        return value

    def text(self, body: Mapping[str, Any], key: str) -> str:
        value = body.get(key)
        if not isinstance(value, str):
            raise self.error(f"the answer's {key!r} is missing or not a string")
        return value

    def optional_text(self, body: Mapping[str, Any], key: str) -> str | None:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"the answer's {key!r} is not a string")
        return value

    def integer(self, body: Mapping[str, Any], key: str) -> int:
        value = body.get(key)
        # bool is an int subclass, and a float is never an amount.
        if type(value) is not int:
            raise self.error(f"the answer's {key!r} is missing or not an integer")
        return value

    def timestamp(
        self, body: Mapping[str, Any], key: str, *, unit: TimestampUnit = "s"
    ) -> datetime:
        """A time since the epoch as an aware UTC datetime (years 1970 to 9999).

        ``unit`` is ``"s"`` or ``"ms"``; ``"auto"`` tells them apart by size, for
        providers that write both (milliseconds from 1973 on, seconds before 5138).
        """
        value = self.integer(body, key)
        if unit == "ms" or (unit == "auto" and value >= _MILLISECONDS_FROM):
            seconds, milliseconds = divmod(value, 1000)
        else:
            seconds, milliseconds = value, 0
        if not 0 <= seconds <= _LAST_SECOND:
            raise self.error(f"the answer's {key!r} is not a plausible timestamp")
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=milliseconds * 1000)

    def optional_timestamp(
        self, body: Mapping[str, Any], key: str, *, unit: TimestampUnit = "s"
    ) -> datetime | None:
        return None if body.get(key) is None else self.timestamp(body, key, unit=unit)

    def array(self, body: Mapping[str, Any], key: str) -> list[Any]:
        value = body.get(key)
        if not isinstance(value, list):
            raise self.error(f"the answer's {key!r} is missing or not an array")
        return value

    def error(self, message: str, *, http_status: int | None = None) -> GatewayProtocolError:
        return GatewayProtocolError(message, gateway=self.gateway, http_status=http_status)
