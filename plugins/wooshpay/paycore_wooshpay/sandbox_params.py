"""The WooshPay sandbox's request parameters: read once, checked one by one, with 400s
that name the parameter as the API spells it (``payment_intent_data[capture_method]``).

Bodies are JSON objects or, as the API also accepts, forms in bracket notation. In a
form every value is a string, so integers and booleans are read from their decimal and
``true``/``false`` spellings there; in JSON they must have their own types. Lists are
paged newest first with ``limit``, ``starting_after`` and ``ending_before``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from paycore.errors import InvalidRequest
from paycore.money import Currency
from paycore.sandbox.base import SandboxError
from paycore.sandbox.forms import FormError, parse_form

__all__ = [
    "MAX_AMOUNT",
    "Params",
    "created_filter",
    "invalid",
    "page",
    "request_base_url",
    "search_clauses",
]

MAX_AMOUNT = 99_999_999  # the largest amount one payment may have, in minor units
_MAX_BODY = 256 * 1024
_MAX_METADATA_KEYS = 50


def request_base_url(request: Request) -> str:
    """The sandbox's URL as the client reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def invalid(code: str, param: str | None, message: str) -> SandboxError:
    details = {"param": param} if param else {}
    return SandboxError(400, code, message, **details)


class Params:
    """One request's parameters (or one object among them, under ``prefix``)."""

    def __init__(self, data: Mapping[str, Any], *, form: bool, prefix: str = "") -> None:
        self.data = data
        self.form = form
        self._prefix = prefix

    @classmethod
    async def read(cls, request: Request, *allowed: str) -> Params:
        """A POST's body (JSON or form), refusing parameters other than ``allowed``."""
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise invalid("body_invalid", None, f"the body exceeds {_MAX_BODY} bytes")
        form = "x-www-form-urlencoded" in request.headers.get("content-type", "")
        try:
            data: Any = parse_form(raw) if form else json.loads(raw) if raw.strip() else {}
        except FormError as error:
            raise invalid("body_invalid", None, f"the form is malformed: {error}") from None
        except ValueError:
            raise invalid(
                "body_invalid", None, "the body must be a JSON object or a form"
            ) from None
        if not isinstance(data, dict):
            raise invalid("body_invalid", None, "the body must be a JSON object or a form")
        return cls(data, form=form).only(*allowed)

    @classmethod
    def query(cls, request: Request, *allowed: str) -> Params:
        """A GET's query string (brackets allowed: ``created[gt]=…``)."""
        try:
            data = parse_form(request.url.query)
        except FormError as error:
            raise invalid("parameter_invalid_string", None, str(error)) from None
        return cls(data, form=True).only(*allowed)

    def name(self, key: str) -> str:
        return f"{self._prefix}[{key}]" if self._prefix else key

    def only(self, *allowed: str) -> Params:
        if unknown := sorted(set(self.data) - set(allowed)):
            shown = self.name(str(unknown[0])[:40])
            raise invalid("parameter_unknown", shown, f"Received unknown parameter: {shown}")
        return self

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None or (self.form and value == ""):
            if required:
                raise invalid(
                    "parameter_missing",
                    self.name(key),
                    f"Missing required param: {self.name(key)}.",
                )
            return None
        return value

    def integer(
        self, key: str, *, required: bool = False, digits: bool = False, amount: bool = False
    ) -> int | None:
        """A positive integer; ``digits`` also takes a decimal-digit string, as forms do.

        An ``amount`` above `MAX_AMOUNT` is ``amount_too_large``.
        """
        value = self._get(key, required)
        if value is None:
            return None
        if (self.form or digits) and isinstance(value, str) and value.isascii():
            value = int(value) if value.isdigit() and len(value) < 19 else value
        if type(value) is not int or value <= 0:
            raise invalid(
                "parameter_invalid_integer",
                self.name(key),
                f"Invalid positive integer: {self.name(key)} must be a whole number above zero",
            )
        if amount and value > MAX_AMOUNT:
            raise invalid(
                "amount_too_large", self.name(key), f"Amount must be no more than {MAX_AMOUNT}."
            )
        return value

    def boolean(self, key: str) -> bool | None:
        value = self._get(key, False)
        if self.form and value in ("true", "false"):
            return bool(value == "true")
        if value is not None and not isinstance(value, bool):
            raise invalid(
                "parameter_invalid_boolean", self.name(key), f"{self.name(key)} must be a boolean"
            )
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        limit: int = 5000,
        choices: Iterable[str] | None = None,
    ) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        allowed = tuple(choices) if choices is not None else None
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise invalid(
                "parameter_invalid_string",
                self.name(key),
                f"{self.name(key)} must be a string of 1 to {limit} characters",
            )
        if allowed is not None and value not in allowed:
            raise invalid(
                "parameter_invalid_string",
                self.name(key),
                f"Invalid {self.name(key)}: must be one of {', '.join(allowed)}",
            )
        return value

    def url(self, key: str, *, required: bool = False) -> str | None:
        value = self.string(key, required=required, limit=2048)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise invalid(
                    "url_invalid", self.name(key), f"{self.name(key)} must be an absolute URL"
                )
        return value

    def currency(self, key: str = "currency") -> str:
        code = self.string(key, required=True, limit=3)
        try:
            return Currency.of(str(code).upper()).code
        except InvalidRequest:
            raise invalid(
                "currency_not_supported",
                self.name(key),
                f"Invalid currency: {code!r} is not a currency the sandbox knows",
            ) from None

    def metadata(self, key: str = "metadata") -> dict[str, str]:
        value = self._get(key, False)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise invalid("parameter_invalid_string", self.name(key), "metadata must be an object")
        if len(value) > _MAX_METADATA_KEYS:
            raise invalid(
                "parameter_invalid_string",
                self.name(key),
                f"metadata may have at most {_MAX_METADATA_KEYS} keys",
            )
        for item_key, item in value.items():
            if not (0 < len(item_key) <= 40 and isinstance(item, str) and len(item) <= 500):
                raise invalid(
                    "parameter_invalid_string",
                    f"{self.name(key)}[{item_key[:40]}]",
                    "metadata keys are 1 to 40 characters, values strings of at most 500",
                )
        return dict(value)

    def object(self, key: str, *allowed: str, required: bool = False) -> Params | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid("parameter_invalid_string", self.name(key), f"{key} must be an object")
        return Params(value, form=self.form, prefix=self.name(key)).only(*allowed)

    def objects(self, key: str, *allowed: str, limit: int = 100) -> list[Params]:
        """A required, non-empty list of objects."""
        value = self._get(key, True)
        if not isinstance(value, list) or not 0 < len(value) <= limit:
            raise invalid(
                "parameter_invalid_string",
                self.name(key),
                f"{key} must be a list of 1 to {limit} objects",
            )
        found = []
        for index, item in enumerate(value):
            name = f"{self.name(key)}[{index}]"
            if not isinstance(item, dict):
                raise invalid("parameter_invalid_string", name, f"{name} must be an object")
            found.append(Params(item, form=self.form, prefix=name).only(*allowed))
        return found

    def strings(
        self, key: str, *, choices: Iterable[str], code: str = "parameter_invalid_string"
    ) -> list[str] | None:
        """A non-empty list of strings, each one of ``choices`` (else ``code``)."""
        value = self._get(key, False)
        if value is None:
            return None
        allowed = set(choices)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise invalid(code, self.name(key), f"{key} must be a list of strings")
        if unknown := [v for v in value if v not in allowed]:
            raise invalid(code, self.name(key), f"{str(unknown[0])[:40]!r} is not allowed here")
        return list(dict.fromkeys(value))


def page(params: Params, items: Sequence[dict[str, Any]], url: str) -> dict[str, Any]:
    """One page of ``items`` (newest first) as a list object, by the cursor parameters."""
    limit = params.integer("limit") or 10
    if limit > 100:
        raise invalid("parameter_invalid_integer", "limit", "limit must be between 1 and 100")
    after, before = params.string("starting_after"), params.string("ending_before")
    if after and before:
        raise invalid("parameter_invalid_string", "ending_before", "use one cursor at a time")
    ids = [item["id"] for item in items]
    cursor = after or before
    if cursor is not None and cursor not in ids:
        param = "starting_after" if after else "ending_before"
        raise invalid("resource_missing", param, f"No such object: {cursor[:64]!r}")
    if before is not None:
        newer = items[: ids.index(before)]
        return _list(newer[-limit:], len(newer) > limit, url)
    start = ids.index(after) + 1 if after is not None else 0
    rest = items[start:]
    return _list(rest[:limit], len(rest) > limit, url)


def _list(data: Sequence[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": list(data), "has_more": has_more, "url": url}


def created_filter(params: Params) -> Callable[[int], bool]:
    """``created`` (ms) as an exact value or ``created[gt|gte|lt|lte]``."""
    value = params.data.get("created")
    if value is None:
        return lambda created: True
    if not isinstance(value, dict):
        exact = params.integer("created")
        return lambda created: created == exact
    bounds = Params(value, form=True, prefix="created").only("gt", "gte", "lt", "lte")
    gt, gte, lt, lte = (bounds.integer(k) for k in ("gt", "gte", "lt", "lte"))
    return lambda created: (
        (gt is None or created > gt)
        and (gte is None or created >= gte)
        and (lt is None or created < lt)
        and (lte is None or created <= lte)
    )


_FIELDS = ("status", "merchant_order_id", "customer")


def search_clauses(query: str) -> list[tuple[str, str]]:
    """``metadata['k']:'v' AND status:'s'`` → ``[("metadata.k", "v"), ("status", "s")]``.

    Values are quoted with ``'`` or ``"``; a backslash escapes the next character.
    """
    clauses, position = [], 0
    while True:
        if query.startswith("metadata[", position):
            key, position = _quoted(query, position + len("metadata["))
            field = f"metadata.{key}"
            position = _expect(query, position, "]")
        else:
            field = next((f for f in _FIELDS if query.startswith(f, position)), "")
            if not field:
                raise _bad_query()
            position += len(field)
        value, position = _quoted(query, _expect(query, position, ":"))
        clauses.append((field, value))
        if position == len(query):
            return clauses
        position = _expect(query, position, " AND ")


def _quoted(query: str, position: int) -> tuple[str, int]:
    """The quoted string at ``position`` (unescaped), and the position after it."""
    quote = query[position : position + 1]
    if quote not in ("'", '"'):
        raise _bad_query()
    chars, position = [], position + 1
    while position < len(query) and query[position] != quote:
        if query[position] == "\\":
            position += 1
        chars.append(query[position : position + 1])
        position += 1
    if position >= len(query) or len(chars) > 500:
        raise _bad_query()
    return "".join(chars), position + 1


def _expect(query: str, position: int, text: str) -> int:
    if not query.startswith(text, position):
        raise _bad_query()
    return position + len(text)


def _bad_query() -> SandboxError:
    return invalid(
        "parameter_invalid_string",
        "query",
        "query must be clauses such as metadata['key']:'value', status:'succeeded', "
        "merchant_order_id:'…' or customer:'cus_…', joined by AND",
    )
