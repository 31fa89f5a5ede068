"""The MilkyPay sandbox's wire: JSON bodies read with exact decimals, answers written
with exact decimals, and the checks of what a request asks for.

A refused request is 422 listing every problem found (``errors[]``, each with a JSON
pointer to its attribute), then nothing changes. A body that is not a JSON object is 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen
from starlette.requests import Request

from paycore.gateways.json_codec import decode_json
from paycore.money import Money
from paycore.sandbox.base import SandboxError
from paycore_milkypay.sandbox_services import (
    CURRENCIES,
    Refusal,
    Service,
    find_service,
    parse_amount,
    services_for,
)

__all__ = [
    "InvoiceSpec",
    "Problems",
    "Reader",
    "invoice_spec",
    "read_json_body",
    "refused",
    "request_base_url",
]

_MAX_BODY = 256 * 1024
_MAX_TEXT = 255
_FLOWS = ("charge", "delayed_charge")
# What an invoice may be created with (providers.md §1.4.3), ``expires`` and ``locale`` too.
_INVOICE_ATTRIBUTES = (
    "reference_id",
    "service",
    "service_fields",
    "currency",
    "amount",
    "flow",
    "test_mode",
    "description",
    "customer",
    "metadata",
    "return_url",
    "return_urls",
    "callback_url",
    "expires",
    "locale",
)
_CUSTOMER_FIELDS = (
    "reference_id",
    "name",
    "email",
    "phone",
    "individual_tax_id",
    "date_of_birth",
    "metadata",
    "address",
)


def request_base_url(request: Request) -> str:
    """The sandbox's URL as the client reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def refused(code: str, detail: str, pointer: str | None = None) -> SandboxError:
    """A 422 with one problem."""
    return Problems().add(code, detail, pointer).error()


class Problems:
    """The problems found in one request, in the order found."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(
        self, code: str, detail: str, pointer: str | None = None, *, first: bool = False
    ) -> Problems:
        """Note a problem (``first``: ahead of those found before); ``pointer`` is a JSON
        pointer into the body (``/data/attributes/amount``) or a query parameter's name."""
        problem = {"code": code, "detail": detail, "pointer": pointer}
        self.items.insert(0 if first else len(self.items), problem)
        return self

    def error(self) -> SandboxError:
        """The 422 answer listing them all (the first one's code and detail on top)."""
        first = self.items[0]
        return SandboxError(422, first["code"], first["detail"], problems=list(self.items))

    def check(self) -> None:
        if self.items:
            raise self.error()


async def read_json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (decimals exact), or 400."""
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise SandboxError(400, "invalid_json", f"the body exceeds {_MAX_BODY} bytes")
    try:
        data = decode_json(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise SandboxError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise SandboxError(400, "invalid_json", "the body must be a JSON object")
    return data


class Reader:
    """Typed reads of one JSON object's members, each problem noted with its pointer."""

    def __init__(self, data: Mapping[str, Any], problems: Problems, pointer: str) -> None:
        self.data, self.problems, self.pointer = data, problems, pointer

    @classmethod
    def document(cls, body: Mapping[str, Any], types: Sequence[str], problems: Problems) -> Reader:
        """The ``data.attributes`` of a JSON:API document whose ``data.type`` is in ``types``."""
        data = body.get("data")
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(attributes, dict):
            problems.add("required", "data.attributes must be an object", "/data/attributes")
            return cls({}, problems, "/data/attributes")
        if "type" in data and data["type"] not in types:
            problems.add("invalid_value", f"data.type must be {types[0]}", "/data/type")
        return cls(attributes, problems, "/data/attributes")

    def at(self, key: str) -> str:
        return f"{self.pointer}/{key}"

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                self.problems.add("invalid_value", f"{key} is not an attribute here", self.at(key))

    def string(
        self, key: str, *, required: bool = False, choices: Sequence[str] = ()
    ) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add("required", f"{key} is required", self.at(key))
            return None
        if not isinstance(value, str):
            self.problems.add("invalid_type", f"{key} must be a string", self.at(key))
        elif not value.strip() or len(value) > _MAX_TEXT:
            self.problems.add(
                "invalid_value", f"{key} must be 1 to {_MAX_TEXT} characters", self.at(key)
            )
        elif choices and value not in choices:
            self.problems.add(
                "invalid_value", f"{key} must be one of {', '.join(choices)}", self.at(key)
            )
        else:
            return value
        return None

    def url(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not _is_url(value):
            self.problems.add("invalid_value", f"{key} must be an http(s) URL", self.at(key))
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            self.problems.add("invalid_type", f"{key} must be true or false", self.at(key))
            return None
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.problems.add("invalid_type", f"{key} must be an integer", self.at(key))
            return None
        return value

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, dict):
            self.problems.add("invalid_type", f"{key} must be an object", self.at(key))
            return None
        return value

    def amount(self, key: str, currency: str | None, *, required: bool = True) -> Money | None:
        """An amount of ``currency`` (unchecked when the currency is itself wrong)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add("required", f"{key} is required", self.at(key))
            return None
        try:
            amount = parse_amount(value, currency or "USD")
        except Refusal as refusal:
            if currency is not None or refusal.code != "invalid_amount_precision":
                self.problems.add(
                    refusal.code, refusal.detail.replace("amount", key, 1), self.at(key)
                )
            return None
        return amount if currency is not None else None

    def currency(self, key: str = "currency") -> str | None:
        code = self.string(key, required=True)
        if code is not None and code not in CURRENCIES:
            self.problems.add(
                "currency_not_supported",
                f"{code[:8]} is not a currency of this account",
                self.at(key),
            )
            return None
        return code


@frozen(kw_only=True)
class InvoiceSpec:
    """What creating an invoice asks for, checked."""

    reference_id: str | None
    service: Service | None
    service_fields: dict[str, str]
    amount: Money
    flow: str
    description: str | None
    customer: dict[str, Any] | None
    metadata: dict[str, Any]
    return_url: str | None
    return_urls: dict[str, str] | None
    callback_url: str | None
    expires: int | None


def invoice_spec(reader: Reader, *, now: int, public: bool) -> tuple[InvoiceSpec | None, Problems]:
    """The invoice ``reader``'s attributes ask for; None when a problem was found.

    The Public API (and the payment link) may not name a ``callback_url`` (the
    platform's "security violation") and need no ``reference_id``.
    """
    problems = reader.problems
    reader.only(*_INVOICE_ATTRIBUTES)
    reference_id = reader.string("reference_id", required=not public)
    currency = reader.currency()
    amount = reader.amount("amount", currency)
    flow = reader.string("flow", choices=_FLOWS) or "charge"
    if reader.boolean("test_mode") is False:
        problems.add(
            "test_mode_mismatch",
            "this is a test environment: test_mode must be true with a pk_test_ key",
            reader.at("test_mode"),
        )
    service = _service(reader, currency, amount)
    service_fields = _service_fields(reader, service)
    description = reader.string("description")
    reader.string("locale", choices=("en", "uk", "ru"))
    customer = _customer(reader)
    metadata = reader.mapping("metadata") or {}
    return_url = reader.url("return_url")
    return_urls = _return_urls(reader)
    callback_url = reader.url("callback_url")
    if public and callback_url is not None:
        problems.add(
            "invalid_value",
            "callback_url may be set through the private API only",
            reader.at("callback_url"),
        )
    expires = reader.integer("expires")
    if expires is not None and expires <= now:
        problems.add("invalid_value", "expires must be in the future", reader.at("expires"))
    if problems or amount is None:
        return None, problems
    spec = InvoiceSpec(
        reference_id=reference_id,
        service=service,
        service_fields=service_fields,
        amount=amount,
        flow=flow,
        description=description,
        customer=customer,
        metadata=metadata,
        return_url=return_url,
        return_urls=return_urls,
        callback_url=callback_url,
        expires=expires,
    )
    return spec, problems


def _service(reader: Reader, currency: str | None, amount: Money | None) -> Service | None:
    code = reader.string("service")
    service = find_service(code) if code is not None else None
    if code is not None and (service is None or service.currency != currency):
        if currency is not None:
            reader.problems.add(
                "service_not_found",
                f"there is no service {code[:64]} in {currency}",
                reader.at("service"),
            )
        return None
    if amount is None:
        return service
    ranges = [service] if service is not None else services_for(amount.currency.code)
    low = min(s.min_amount for s in ranges)
    high = max(s.max_amount for s in ranges)
    if amount < low:
        reader.problems.add(
            "amount_too_small", f"amount must be at least {low}", reader.at("amount")
        )
    elif amount > high:
        reader.problems.add(
            "amount_too_large", f"amount must be at most {high}", reader.at("amount")
        )
    return service


def _service_fields(reader: Reader, service: Service | None) -> dict[str, str]:
    given = reader.mapping("service_fields") or {}
    fields: dict[str, str] = {}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            reader.problems.add(
                "service_fields_invalid",
                f"{key} must be a string",
                reader.at(f"service_fields/{key}"),
            )
        else:
            fields[key] = str(value)
    if service is not None:
        for key, detail in service.field_problems(fields):
            reader.problems.add(
                "service_fields_invalid", detail, reader.at(f"service_fields/{key}")
            )
    elif fields:
        reader.problems.add(
            "service_fields_invalid", "service_fields need a service", reader.at("service_fields")
        )
    return fields


def _customer(reader: Reader) -> dict[str, Any] | None:
    customer = reader.mapping("customer")
    if customer is None:
        return None
    inner = Reader(customer, reader.problems, reader.at("customer"))
    inner.only(*_CUSTOMER_FIELDS)
    inner.string("reference_id", required=True)
    for key in ("name", "email", "phone", "individual_tax_id", "date_of_birth"):
        inner.string(key)
    inner.mapping("metadata")
    inner.mapping("address")
    return dict(customer)


def _return_urls(reader: Reader) -> dict[str, str] | None:
    urls = reader.mapping("return_urls")
    if urls is None:
        return None
    inner = Reader(urls, reader.problems, reader.at("return_urls"))
    inner.only("success", "fail", "pending")
    checked = {key: inner.url(key) for key in ("success", "fail", "pending")}
    return {key: url for key, url in checked.items() if url is not None}


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
