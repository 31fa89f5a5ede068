"""JSON on the wire, with exact numbers both ways.

Providers that write amounts as JSON numbers in major units (``"amount": 100.55``)
must not pass through binary floats: `decode_json` reads every non-integer number as
a `Decimal`, and `encode_json` writes a `Decimal` as the exact JSON number it is and
refuses floats outright.

`decode_json` also refuses an object that names a key twice. Parsers disagree on which
value wins (Python's last, others the first), so a signed body with ``"amount"`` twice
could be verified by one reading and applied by another: it is not JSON paycore acts on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paycore.errors import InvalidAmount

__all__ = ["DuplicateKeyError", "decode_json", "encode_json"]

# Decimals are encoded as marker strings, then the markers are replaced by the exact
# digits. A fresh random nonce per call means no payload string can pose as a marker.
_MARK = "\x00paycore-decimal-{nonce}-{index}\x00"


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (the key, cut short, is in ``msg``)."""

    def __init__(self, key: str) -> None:
        self.msg = f"duplicate key {key[:32]!r}"
        super().__init__(self.msg)


def decode_json(content: bytes | str) -> Any:
    """Parse JSON; non-integer numbers become `Decimal`. Raises ValueError on bad JSON,
    including the non-standard ``NaN`` and ``Infinity`` that Python would accept, and
    `DuplicateKeyError` for an object with a key twice, and a ValueError for nesting
    too deep for the parser (which would otherwise raise RecursionError)."""
    try:
        return json.loads(
            content,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return document


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
