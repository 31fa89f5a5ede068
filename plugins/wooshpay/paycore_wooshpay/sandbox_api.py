"""The WooshPay sandbox's ``/v1`` routes: authenticate, check the parameters, then one
state transition (a mutation through the sandbox's idempotency) or one read.

The route list and the behaviour are described in `paycore_wooshpay.sandbox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from paycore_wooshpay.sandbox_events import EVENT_TYPES
from paycore_wooshpay.sandbox_params import (
    Params,
    created_filter,
    invalid,
    page,
    request_base_url,
    search_clauses,
)
from paycore_wooshpay.sandbox_requests import (
    CANCELLATION_REASONS,
    INTENT_FIELDS,
    PAYMENT_METHOD_TYPES,
    REFUND_REASONS,
    SESSION_FIELDS,
    intent_data,
    intent_spec,
    line_items,
    new_method,
    session_spec,
)

if TYPE_CHECKING:
    from paycore_wooshpay.sandbox import WooshPaySandbox

__all__ = ["ApiRoutes"]

_PAGING = ("limit", "starting_after", "ending_before")


class ApiRoutes:
    """The handlers, over one sandbox (its keys, idempotency and state)."""

    def __init__(self, sandbox: WooshPaySandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state

    def routes(self) -> list[BaseRoute]:
        """Payment methods and customers, payment intents, refunds, checkout, links."""
        return [
            Route("/v1/payment_methods", self.create_method, methods=["POST"]),
            Route("/v1/payment_methods/{id}", self.get_method, methods=["GET"]),
            Route("/v1/payment_methods/{id}/attach", self.attach, methods=["POST"]),
            Route("/v1/payment_methods/{id}/detach", self.detach, methods=["POST"]),
            Route("/v1/customers", self.create_customer, methods=["POST"]),
            Route("/v1/customers/{id}", self.get_customer, methods=["GET"]),
            Route("/v1/customers/{id}/payment_methods", self.customer_methods, methods=["GET"]),
            Route("/v1/payment_intents", self.create_intent, methods=["POST"]),
            Route("/v1/payment_intents", self.list_intents, methods=["GET"]),
            Route("/v1/payment_intents/search", self.search_intents, methods=["GET"]),
            Route("/v1/payment_intents/{id}", self.get_intent, methods=["GET"]),
            Route("/v1/payment_intents/{id}/confirm", self.confirm, methods=["POST"]),
            Route("/v1/payment_intents/{id}/capture", self.capture, methods=["POST"]),
            Route("/v1/payment_intents/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/refunds", self.create_refund, methods=["POST"]),
            Route("/v1/refunds", self.list_refunds, methods=["GET"]),
            Route("/v1/refunds/{id}", self.get_refund, methods=["GET"]),
            Route("/v1/checkout/sessions", self.create_session, methods=["POST"]),
            Route("/v1/checkout/sessions", self.list_sessions, methods=["GET"]),
            Route("/v1/checkout/sessions/{id}", self.get_session, methods=["GET"]),
            Route("/v1/checkout/sessions/{id}/line_items", self.session_items, methods=["GET"]),
            Route("/v1/checkout/sessions/{id}/expire", self.expire_session, methods=["POST"]),
            Route("/v1/products", self.create_product, methods=["POST"]),
            Route("/v1/products/{id}", self.get_product, methods=["GET"]),
            Route("/v1/prices", self.create_price, methods=["POST"]),
            Route("/v1/prices/{id}", self.get_price, methods=["GET"]),
            Route("/v1/payment_links", self.create_link, methods=["POST"]),
            Route("/v1/payment_links/{id}", self.get_link, methods=["GET"]),
            Route("/v1/payment_links/{id}", self.update_link, methods=["POST"]),
        ]

    def endpoint_routes(self) -> list[BaseRoute]:
        """Webhook endpoints and events."""
        endpoint = "/v1/webhook_endpoints/{id}"
        return [
            Route("/v1/webhook_endpoints", self.create_endpoint, methods=["POST"]),
            Route("/v1/webhook_endpoints", self.list_endpoints, methods=["GET"]),
            Route(endpoint, self.get_endpoint, methods=["GET"]),
            Route(endpoint, self.update_endpoint, methods=["POST"]),
            Route(endpoint, self.delete_endpoint, methods=["DELETE"]),
            Route("/v1/events", self.list_events, methods=["GET"]),
            Route("/v1/events/{id}", self.get_event, methods=["GET"]),
        ]

    async def _body(self, request: Request, *fields: str, publishable: bool = False) -> Params:
        self.sandbox.authenticate(request, publishable=publishable)
        return await Params.read(request, *fields)

    def _query(self, request: Request, *fields: str) -> Params:
        self.sandbox.authenticate(request)
        return Params.query(request, *fields)

    # -- payment methods and customers ---------------------------------------------------

    async def create_method(self, request: Request) -> Response:
        params = await self._body(
            request, "type", "card", "billing_details", "metadata", publishable=True
        )
        method = new_method(params, self.sandbox.clock())
        return self.sandbox.idempotent(request, params, lambda: self.state.create_method(method))

    async def get_method(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.method(request.path_params["id"]))

    async def attach(self, request: Request) -> Response:
        params = await self._body(request, "customer")
        customer = str(params.string("customer", required=True, limit=255))
        pm_id = request.path_params["id"]
        return self.sandbox.idempotent(request, params, lambda: self.state.attach(pm_id, customer))

    async def detach(self, request: Request) -> Response:
        params = await self._body(request)
        pm_id = request.path_params["id"]
        return self.sandbox.idempotent(request, params, lambda: self.state.detach(pm_id))

    async def create_customer(self, request: Request) -> Response:
        params = await self._body(request, "email", "name", "description", "metadata")
        fields: dict[str, Any] = {
            "email": params.string("email", limit=512),
            "name": params.string("name", limit=256),
            "description": params.string("description", limit=1000),
            "metadata": params.metadata(),
        }
        return self.sandbox.idempotent(
            request, params, lambda: self.state.create_customer(**fields)
        )

    async def get_customer(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.customer(request.path_params["id"]))

    async def customer_methods(self, request: Request) -> Response:
        params = self._query(request, "type", *_PAGING)
        method_type = params.string("type", choices=PAYMENT_METHOD_TYPES)
        customer = request.path_params["id"]
        found = self.state.customer_methods(customer, method_type)
        return JSONResponse(page(params, found, f"/v1/customers/{customer}/payment_methods"))

    # -- payment intents -------------------------------------------------------------------

    async def create_intent(self, request: Request) -> Response:
        params = await self._body(request, *INTENT_FIELDS)
        spec = intent_spec(params, self.sandbox.clock())
        base_url = request_base_url(request)
        return self.sandbox.idempotent(
            request, params, lambda: self.state.create_intent(spec, base_url)
        )

    async def list_intents(self, request: Request) -> Response:
        params = self._query(request, "created", "customer", *_PAGING)
        found = self.state.intent_list(params.string("customer"), created_filter(params))
        return JSONResponse(page(params, found, "/v1/payment_intents"))

    async def search_intents(self, request: Request) -> Response:
        params = self._query(request, "query", "limit", "page")
        clauses = search_clauses(str(params.string("query", required=True)))
        limit, start = params.integer("limit") or 10, params.integer("page", digits=True) or 0
        if limit > 100:
            raise invalid("parameter_invalid_integer", "limit", "limit must be between 1 and 100")
        found = self.state.intent_search(clauses)
        more = len(found) > start + limit
        return JSONResponse(
            {
                "object": "search_result",
                "data": found[start : start + limit],
                "has_more": more,
                "next_page": str(start + limit) if more else None,
                "url": "/v1/payment_intents/search",
            }
        )

    async def get_intent(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.intent(request.path_params["id"]))

    async def confirm(self, request: Request) -> Response:
        params = await self._body(
            request, "payment_method", "return_url", "off_session", "off-session"
        )
        fields: dict[str, Any] = {
            "payment_method": params.string("payment_method", limit=255),
            "return_url": params.url("return_url"),
            "off_session": bool(params.boolean("off_session") or params.boolean("off-session")),
            "base_url": request_base_url(request),
        }
        pi_id = request.path_params["id"]
        return self.sandbox.idempotent(request, params, lambda: self.state.confirm(pi_id, **fields))

    async def capture(self, request: Request) -> Response:
        params = await self._body(request, "amount_to_capture")
        amount = params.integer("amount_to_capture", amount=True)
        pi_id = request.path_params["id"]
        return self.sandbox.idempotent(request, params, lambda: self.state.capture(pi_id, amount))

    async def cancel(self, request: Request) -> Response:
        params = await self._body(request, "cancellation_reason")
        reason = params.string("cancellation_reason", choices=CANCELLATION_REASONS)
        pi_id = request.path_params["id"]
        return self.sandbox.idempotent(request, params, lambda: self.state.cancel(pi_id, reason))

    # -- refunds ---------------------------------------------------------------------------

    async def create_refund(self, request: Request) -> Response:
        params = await self._body(request, "payment_intent", "amount", "reason", "metadata")
        fields: dict[str, Any] = {
            "payment_intent": params.string("payment_intent", required=True, limit=255),
            "amount": params.integer("amount", digits=True, amount=True),
            "reason": params.string("reason", choices=REFUND_REASONS),
            "metadata": params.metadata(),
        }
        return self.sandbox.idempotent(request, params, lambda: self.state.create_refund(**fields))

    async def list_refunds(self, request: Request) -> Response:
        params = self._query(request, "payment_intent", *_PAGING)
        found = self.state.refund_list(params.string("payment_intent"))
        return JSONResponse(page(params, found, "/v1/refunds"))

    async def get_refund(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.refund(request.path_params["id"]))

    # -- checkout sessions -----------------------------------------------------------------

    async def create_session(self, request: Request) -> Response:
        params = await self._body(request, *SESSION_FIELDS)
        spec = session_spec(params)
        base_url = request_base_url(request)
        return self.sandbox.idempotent(
            request, params, lambda: self.state.create_session(spec, base_url)
        )

    async def list_sessions(self, request: Request) -> Response:
        params = self._query(request, "payment_intent", "status", *_PAGING)
        status = params.string("status", choices=("open", "complete", "expired"))
        found = self.state.session_list(params.string("payment_intent"), status)
        return JSONResponse(page(params, found, "/v1/checkout/sessions"))

    async def get_session(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.session(request.path_params["id"]))

    async def session_items(self, request: Request) -> Response:
        params = self._query(request, *_PAGING)
        session_id = request.path_params["id"]
        items = self.state.session_line_items(session_id)
        return JSONResponse(page(params, items, f"/v1/checkout/sessions/{session_id}/line_items"))

    async def expire_session(self, request: Request) -> Response:
        params = await self._body(request)
        session_id = request.path_params["id"]
        return self.sandbox.idempotent(
            request, params, lambda: self.state.expire_session(session_id)
        )

    # -- products, prices, payment links ----------------------------------------------------

    async def create_product(self, request: Request) -> Response:
        params = await self._body(request, "name", "description", "metadata")
        fields: dict[str, Any] = {
            "name": params.string("name", required=True, limit=250),
            "description": params.string("description", limit=1000),
            "metadata": params.metadata(),
        }
        return self.sandbox.idempotent(request, params, lambda: self.state.create_product(**fields))

    async def get_product(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.product(request.path_params["id"]))

    async def create_price(self, request: Request) -> Response:
        params = await self._body(request, "product", "unit_amount", "currency")
        fields: dict[str, Any] = {
            "product": params.string("product", required=True, limit=255),
            "unit_amount": params.integer("unit_amount", required=True, amount=True),
            "currency": params.currency(),
        }
        return self.sandbox.idempotent(request, params, lambda: self.state.create_price(**fields))

    async def get_price(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.price(request.path_params["id"]))

    async def create_link(self, request: Request) -> Response:
        params = await self._body(
            request,
            "line_items",
            "metadata",
            "payment_intent_data",
            "after_completion",
            "payment_method_types",
        )
        after = params.object("after_completion", "type", "redirect", "hosted_confirmation")
        redirect_url = None
        if after is not None:
            kind = after.string("type", required=True, choices=("redirect", "hosted_confirmation"))
            redirect = after.object("redirect", "url", required=kind == "redirect")
            redirect_url = redirect.url("url", required=True) if redirect is not None else None
        fields: dict[str, Any] = {
            "line_items": line_items(params, inline=False),
            "metadata": params.metadata(),
            "intent_data": intent_data(
                params, "capture_method", "metadata", "setup_future_usage", "description"
            ),
            "redirect_url": redirect_url,
            "payment_method_types": params.strings(
                "payment_method_types",
                choices=PAYMENT_METHOD_TYPES,
                code="payment_method_unactivated",
            )
            or ["card"],
            "base_url": request_base_url(request),
        }
        return self.sandbox.idempotent(request, params, lambda: self.state.create_link(**fields))

    async def get_link(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.link(request.path_params["id"]))

    async def update_link(self, request: Request) -> Response:
        params = await self._body(request, "active", "metadata")
        active, metadata = params.boolean("active"), params.metadata()
        link_id = request.path_params["id"]
        return self.sandbox.idempotent(
            request,
            params,
            lambda: self.state.update_link(link_id, active=active, metadata=metadata),
        )

    # -- webhook endpoints and events --------------------------------------------------------

    async def create_endpoint(self, request: Request) -> Response:
        params = await self._body(
            request, "url", "enabled_events", "description", "api_version", "metadata"
        )
        events = params.strings("enabled_events", choices=("*", *EVENT_TYPES))
        if events is None:
            raise invalid("parameter_missing", "enabled_events", "enabled_events is required")
        fields: dict[str, Any] = {
            "url": params.url("url", required=True),
            "enabled_events": events,
            "description": params.string("description", limit=5000),
            "api_version": params.string("api_version", limit=40),
            "metadata": params.metadata(),
        }
        return self.sandbox.idempotent(
            request, params, lambda: self.state.create_endpoint(**fields)
        )

    async def list_endpoints(self, request: Request) -> Response:
        params = self._query(request, *_PAGING)
        return JSONResponse(page(params, self.state.endpoint_list(), "/v1/webhook_endpoints"))

    async def get_endpoint(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.endpoint(request.path_params["id"]))

    async def update_endpoint(self, request: Request) -> Response:
        params = await self._body(
            request, "url", "enabled_events", "disabled", "description", "metadata"
        )
        fields: dict[str, Any] = {
            "url": params.url("url"),
            "enabled_events": params.strings("enabled_events", choices=("*", *EVENT_TYPES)),
            "disabled": params.boolean("disabled"),
            "description": params.string("description", limit=5000),
            "metadata": params.metadata() if "metadata" in params.data else None,
        }
        endpoint_id = request.path_params["id"]
        return self.sandbox.idempotent(
            request, params, lambda: self.state.update_endpoint(endpoint_id, **fields)
        )

    async def delete_endpoint(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.delete_endpoint(request.path_params["id"]))

    async def list_events(self, request: Request) -> Response:
        params = self._query(request, "type", *_PAGING)
        event_type = params.string("type", limit=100)
        return JSONResponse(page(params, self.state.event_list(event_type), "/v1/events"))

    async def get_event(self, request: Request) -> Response:
        self.sandbox.authenticate(request)
        return JSONResponse(self.state.event(request.path_params["id"]))
