"""The MilkyPay sandbox's Public API (``/public-api/…``, the public key in the body) and
Private API (``/api/…``, HTTP Basic): authenticate, check the request, then one state
transition or one read. The routes and their behaviour are described in
`paycore_milkypay.sandbox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from paycore.sandbox.base import SandboxError
from paycore.sandbox.forms import FormError, parse_form
from paycore.sandbox.responses import ExactJSONResponse
from paycore_milkypay.sandbox_documents import public_invoice
from paycore_milkypay.sandbox_requests import (
    Problems,
    Reader,
    invoice_spec,
    read_json_body,
    request_base_url,
)
from paycore_milkypay.sandbox_services import services_for

if TYPE_CHECKING:
    from paycore_milkypay.sandbox import MilkyPaySandbox

__all__ = ["PROCESS_PATH", "ApiRoutes"]

# [PROPOSAL] capture or void of a delayed charge (providers.md §1.6).
PROCESS_PATH = "/api/payment-invoices/{id}/process"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class ApiRoutes:
    """The handlers, over one sandbox (its keys and state)."""

    def __init__(self, sandbox: MilkyPaySandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/public-api/payment-prerequest", self.prerequest, methods=["POST"]),
            Route("/public-api/payment-invoices", self.create_public, methods=["POST"]),
            Route("/public-api/payment-invoices/{id}", self.get_public, methods=["GET"]),
            Route("/api/payment-invoices", self.create, methods=["POST"]),
            Route("/api/payment-invoices", self.find, methods=["GET"]),
            Route("/api/payment-invoices/{id}", self.get, methods=["GET"]),
            Route(PROCESS_PATH, self.process, methods=["POST"]),
            Route("/api/payment-invoices/{id}/terminate", self.terminate, methods=["POST"]),
            Route("/api/payment-invoices/{id}/refund", self.refund, methods=["POST"]),
        ]

    # -- Public API ----------------------------------------------------------------------

    async def prerequest(self, request: Request) -> Response:
        body = await read_json_body(request)
        self.sandbox.check_public_key(body.get("public_key"))
        reader = Reader(body, Problems(), "")
        currency = reader.currency()
        amount = reader.amount("amount", currency, required=False)
        reader.problems.check()
        assert currency is not None  # checked: a problem otherwise
        services = services_for(currency, amount)
        data = {
            "currency": currency,
            "amount": None if amount is None else amount.to_decimal(),
            "test_mode": True,
            "services": {service.code: service.as_json() for service in services},
        }
        return ExactJSONResponse({"data": data})

    async def create_public(self, request: Request) -> Response:
        body = await read_json_body(request)
        self.sandbox.check_public_key(body.get("public_key"))
        self.sandbox.check_public_creation()
        attributes = {key: value for key, value in body.items() if key != "public_key"}
        return self._create(request, Reader(attributes, Problems(), ""), source="public_api")

    async def get_public(self, request: Request) -> Response:
        return ExactJSONResponse(public_invoice(self.state.invoice(request.path_params["id"])))

    # -- Private API ---------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        body = await read_json_body(request)
        reader = Reader.document(body, ("payment-invoices", "payment-invoice"), Problems())
        return self._create(request, reader, source="api")

    async def find(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        try:
            query = parse_form(request.url.query)
        except FormError as error:
            raise SandboxError(400, "invalid_query", f"the query is malformed: {error}") from None
        problems = Problems()
        filters = _group(query, "filter", problems)
        paging = _group(query, "page", problems)
        reference_id = _text(filters, "reference_id", "filter", problems)
        status = _text(filters, "status", "filter", problems)
        number = _positive(paging, "number", 1, problems)
        size = _positive(paging, "size", DEFAULT_PAGE_SIZE, problems)
        if size > MAX_PAGE_SIZE:
            problems.add("invalid_value", f"page[size] is at most {MAX_PAGE_SIZE}", "page[size]")
        problems.check()
        found = self.state.listing(
            reference_id=reference_id, status=status, number=number, size=size
        )
        return ExactJSONResponse(found)

    async def get(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return ExactJSONResponse(self.state.answer(request.path_params["id"]))

    async def process(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        cpi = request.path_params["id"]
        body = await read_json_body(request)
        reader = Reader.document(body, ("payment-invoices",), Problems())
        reader.only("action", "amount", "reference_id")
        action = reader.string("action", required=True, choices=("capture", "void"))
        reference_id = reader.string("reference_id", required=True)
        amount = reader.amount("amount", self.state.invoice(cpi).currency, required=False)
        if action == "void" and reader.data.get("amount") is not None:
            reader.problems.add("invalid_value", "a void takes no amount", reader.at("amount"))
        self._check(reader)
        assert reference_id is not None  # checked: a problem otherwise
        if action == "capture":
            return ExactJSONResponse(self.state.capture(cpi, amount, reference_id))
        return ExactJSONResponse(self.state.void(cpi, reference_id))

    async def terminate(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return ExactJSONResponse(self.state.terminate(request.path_params["id"]))

    async def refund(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        cpi = request.path_params["id"]
        body = await read_json_body(request)
        reader = Reader.document(body, ("refund", "refunds"), Problems())
        reader.only("invoiceId", "amount", "reference_id", "description")
        if reader.string("invoiceId") not in (None, cpi):
            reader.problems.add(
                "invalid_value", "invoiceId is not this invoice", reader.at("invoiceId")
            )
        reference_id = reader.string("reference_id", required=True)
        amount = reader.amount("amount", self.state.invoice(cpi).currency, required=False)
        description = reader.string("description")
        self._check(reader)
        assert reference_id is not None  # checked: a problem otherwise
        answer = self.state.refund(cpi, amount, reference_id, description)
        return ExactJSONResponse(answer, status_code=201)

    # -- shared ----------------------------------------------------------------------------

    def _create(self, request: Request, reader: Reader, *, source: str) -> Response:
        spec, _ = invoice_spec(reader, now=self.state.now(), public=source != "api")
        self._check(reader)
        assert spec is not None  # checked: a problem otherwise
        answer = self.state.create(
            spec,
            base_url=request_base_url(request),
            source=source,
            pointer=reader.at("reference_id"),
        )
        return ExactJSONResponse(answer, status_code=201)

    def _check(self, reader: Reader) -> None:
        """Refuse the problems found, a duplicate reference_id first among them."""
        if not reader.problems:
            return
        reference_id = reader.data.get("reference_id")
        if isinstance(reference_id, str) and self.state.taken(reference_id):
            reader.problems.add(
                "duplicate_reference_id",
                "reference_id is already used by another request",
                reader.at("reference_id"),
                first=True,
            )
        reader.problems.check()


def _group(query: dict[str, Any], name: str, problems: Problems) -> dict[str, Any]:
    value = query.get(name, {})
    if not isinstance(value, dict):
        problems.add("invalid_value", f"{name} takes bracketed keys: {name}[…]=…", name)
        return {}
    return value


def _text(group: dict[str, Any], key: str, name: str, problems: Problems) -> str | None:
    value = group.get(key)
    if value is not None and not isinstance(value, str):
        problems.add("invalid_value", f"{name}[{key}] must be one value", f"{name}[{key}]")
        return None
    return value


def _positive(group: dict[str, Any], key: str, default: int, problems: Problems) -> int:
    value = group.get(key)
    if value is None:
        return default
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0):
        problems.add("invalid_value", f"page[{key}] must be a positive integer", f"page[{key}]")
        return default
    return int(value)
