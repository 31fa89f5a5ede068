"""JSON on the wire, with exact numbers both ways.

Providers that write amounts as JSON numbers in major units (``"amount": 100.55``)
must not pass through binary floats: `decode_json` reads every non-integer number as
a `Decimal`, and `encode_json` writes a `Decimal` as the exact JSON number it is and
refuses floats outright.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paycore.errors import InvalidAmount

__all__ = ["decode_json", "encode_json"]

# Decimals are encoded as marker strings, then the markers are replaced by the exact
# digits. A fresh random nonce per call means no payload string can pose as a marker.
_MARK = "\x00paycore-decimal-{nonce}-{index}\x00"


def decode_json(content: bytes | str) -> Any:
    """Parse JSON; non-integer numbers become `Decimal`. Raises ValueError on bad JSON,
    including the non-standard ``NaN`` and ``Infinity`` that Python would accept."""
    return json.loads(content, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON; `Decimal` values written exactly as numbers, floats refused."""
    if not _has_numbers_to_mind(payload):
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    decimals: list[str] = []
    nonce = secrets.token_hex(8)
    prepared = _prepare(payload, decimals, nonce)
    text = json.dumps(prepared, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for index, digits in enumerate(decimals):
        text = text.replace(json.dumps(_MARK.format(nonce=nonce, index=index)), digits, 1)
    return text.encode("utf-8")


_PLAIN = (str, int, bool, type(None))


def _has_numbers_to_mind(value: Any) -> bool:
    """Whether ``value`` holds a float or a Decimal anywhere (a cheap scan)."""
    if isinstance(value, _PLAIN):
        return False
    if isinstance(value, Mapping):
        return any(_has_numbers_to_mind(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_numbers_to_mind(item) for item in value)
    return True  # a float, a Decimal, or something json refuses anyway


def _prepare(value: Any, decimals: list[str], nonce: str) -> Any:
    if isinstance(value, float):
        raise InvalidAmount(
            f"a float ({value!r}) in a request body: send money as int minor units "
            "or as Decimal, never as a float"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount(f"{value} cannot be sent as a JSON number")
        decimals.append(f"{value:f}")
        return _MARK.format(nonce=nonce, index=len(decimals) - 1)
    if isinstance(value, Mapping):
        return {key: _prepare(item, decimals, nonce) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(item, decimals, nonce) for item in value]
    return value
