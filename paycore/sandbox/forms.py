"""Form-encoded bodies in the bracket notation of Stripe-shaped APIs.

``metadata[order]=42&line_items[0][quantity]=1&payment_method_types[]=card`` reads as
``{"metadata": {"order": "42"}, "line_items": [{"quantity": "1"}],
"payment_method_types": ["card"]}``. Every value stays a string: which parameter is an
integer or a boolean is the route's business. An object whose keys are exactly
``0 … n-1`` becomes a list. A name used both as a value and as an object, ``[]`` before
the last bracket, nesting deeper than `MAX_DEPTH` or more than `MAX_FIELDS` fields raise
`FormError`, whose message names the field but never quotes a value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

__all__ = ["MAX_DEPTH", "MAX_FIELDS", "FormError", "parse_form"]

MAX_DEPTH = 5  # brackets after the name
MAX_FIELDS = 1000


class FormError(ValueError):
    """The body is not a form in bracket notation; the message says which field."""


def parse_form(body: bytes | str) -> dict[str, Any]:
    """The fields of an ``application/x-www-form-urlencoded`` body, nested by brackets."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise FormError("the body is not UTF-8") from None
    except ValueError:
        raise FormError(f"the body has more than {MAX_FIELDS} fields") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        _put(root, _path(key), value, key)
    return {name: _lists(value, name) for name, value in root.items()}


def _path(key: str) -> list[str]:
    """``a[b][]`` → ``["a", "b", ""]``."""
    name, bracket, rest = key.partition("[")
    if not name:
        raise FormError(f"{_shown(key)}: a field needs a name before its brackets")
    path = [name]
    while bracket:
        segment, closed, rest = rest.partition("]")
        if not closed or "[" in segment:
            raise FormError(f"{_shown(key)}: unbalanced brackets")
        path.append(segment)
        if rest and not rest.startswith("["):
            raise FormError(f"{_shown(key)}: text after a closing bracket")
        bracket, rest = rest[:1], rest[1:]
    if len(path) - 1 > MAX_DEPTH:
        raise FormError(f"{_shown(key)}: nested deeper than {MAX_DEPTH} brackets")
    if "" in path[1:-1]:
        raise FormError(f"{_shown(key)}: [] may only be the last bracket")
    return path


def _put(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    container = root
    for segment in path[:-1]:
        child = container.setdefault(segment, {})
        if not isinstance(child, dict):
            raise FormError(f"{_shown(key)}: {segment!r} is both a value and an object")
        container = child
    last = path[-1]
    if last == "":  # ``name[]=v`` appends
        last = str(len(container))
    if isinstance(container.get(last), dict):
        raise FormError(f"{_shown(key)}: {last!r} is both a value and an object")
    container[last] = value


def _lists(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        return value
    items = {key: _lists(item, f"{name}[{key}]") for key, item in value.items()}
    if items and all(key.isascii() and key.isdigit() and str(int(key)) == key for key in items):
        indices = sorted(int(key) for key in items)
        if indices != list(range(len(indices))):
            raise FormError(f"{_shown(name)}: list indices must count from 0 without gaps")
        return [items[str(index)] for index in indices]
    return items


def _shown(key: str) -> str:
    return repr(key[:60])
