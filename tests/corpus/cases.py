"""The corpus's cases, read from its JSON Lines files, and the values they spell.

Each line of a ``*.jsonl`` file under this directory is one case with an ``id``
(unique in the corpus: it names the test). JSON cannot write every value a hostile
caller can pass, so a few objects stand for Python values, built only when the case
runs (building one may be the refusal under test)::

    {"$money": [1000, "USD"]}      Money(1000, "USD")
    {"$money_parse": ["10.5", "USD"]}  Money.parse("10.5", "USD")
    {"$decimal": "10.50"}          Decimal("10.50")
    {"$float": "nan"}              float("nan") (plain JSON numbers with a point are floats)
    {"$bytes": "pay_1"}            b"pay_1"
    {"$repeat": ["x", 100000]}     "x" * 100000
    {"$method": {...}}             PaymentMethod(**...)
    {"$customer": {...}}           Customer(**...)
    {"$cart": {"currency": ..., "items": [{...CartItem fields...}]}}
    "$payment", "$checkout"        the id of the payment or checkout the case set up

JSON's ``\\u0000`` and lone ``\\ud800`` escapes carry NUL and surrogates as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from paycore.checkout import Cart, CartItem
from paycore.money import Money
from paycore.transactions.model import Customer, PaymentMethod

HERE = Path(__file__).parent


def cases(folder: str) -> list[Any]:
    """A ``pytest.param`` per line of every ``*.jsonl`` under ``folder`` (or of the one
    file it names), ids unique."""
    root = HERE / folder
    params = []
    for path in [root] if root.suffix == ".jsonl" else sorted(root.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            case = json.loads(line)
            case.setdefault("file", f"{path.relative_to(HERE)}:{number}")
            params.append(pytest.param(case, id=case["id"]))
    ids = [param.id for param in params]
    duplicated = sorted({name for name in ids if ids.count(name) > 1})
    assert not duplicated, f"case ids used twice: {duplicated}"
    return params


def value(spelled: Any, ids: Mapping[str, str]) -> Any:
    """The Python value ``spelled`` stands for (see the module docstring)."""
    if isinstance(spelled, str) and spelled.startswith("$") and spelled[1:] in ids:
        return ids[spelled[1:]]
    if isinstance(spelled, list):
        return [value(item, ids) for item in spelled]
    if not isinstance(spelled, dict):
        return spelled
    if len(spelled) == 1:
        ((tag, argument),) = spelled.items()
        builder = _BUILDERS.get(tag)
        if builder is not None:
            return builder(value(argument, ids))
    return {key: value(item, ids) for key, item in spelled.items()}


def _cart(spec: Mapping[str, Any]) -> Cart:
    items = [CartItem(**item) for item in spec["items"]]
    return Cart(currency=spec["currency"], items=items, country=spec.get("country"))


_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "$money": lambda args: Money(*args),
    "$money_parse": lambda args: Money.parse(*args),
    "$decimal": Decimal,
    "$float": float,
    "$bytes": lambda text: text.encode("utf-8", "surrogatepass"),
    "$repeat": lambda args: args[0] * args[1],
    "$method": lambda fields: PaymentMethod(**fields),
    "$customer": lambda fields: Customer(**fields),
    "$cart": _cart,
}


def body_of(case: Mapping[str, Any]) -> bytes:
    """A webhook case's body: ``body`` as UTF-8 text (surrogates kept as they are),
    ``body_hex`` as raw bytes, or ``body_repeat`` ([text, count]) repeated."""
    if "body_hex" in case:
        return bytes.fromhex(case["body_hex"])
    if "body_repeat" in case:
        text, count = case["body_repeat"]
        return str(text * count).encode("utf-8")
    return str(case.get("body", "")).encode("utf-8", "surrogatepass")


def lines_of(case: Mapping[str, Any]) -> Iterator[str | bytes]:
    """An instruction case's line: ``line`` as text, or ``line_hex`` as raw bytes."""
    if "line_hex" in case:
        yield bytes.fromhex(case["line_hex"])
    else:
        yield case["line"]
