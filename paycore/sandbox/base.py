"""The `Sandbox` base class: what every provider sandbox shares.

A sandbox is a Starlette app speaking one provider's protocol. The base class adds
fault injection around it, webhook delivery, and the control routes tests and
the demo use (never faulted, never authenticated: a sandbox listens on loopback):

- ``GET /_sandbox/faults``, ``POST /_sandbox/faults``: read (with the one-shot
  faults still ``pending``) or replace the `FaultPlan` (a JSON object of knobs;
  ``{"next": ["drop"]}`` breaks the next request, ``{}`` clears every fault);
- ``GET /_sandbox/state``: the provider's state as JSON;
- ``GET /_sandbox/webhooks``: events emitted and every delivery attempt;
- ``GET /_sandbox/requests``: every API request received (method and path), in order.

A subclass sets ``name`` (its gateway's name), implements `routes`, `snapshot`,
`gateway_config` and `sign_webhook`, may add `control_routes`, and raises
`SandboxError` for an error answer in the provider's shape (`error_body`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar, TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from paycore.errors import ConfigurationError
from paycore.sandbox.faults import Fault, FaultInjector, FaultPlan
from paycore.sandbox.webhook_sender import DEFAULT_RETRY_SCHEDULE, DeliveryAttempt, WebhookSender

__all__ = ["DEFAULT_WEBHOOK_SECRET", "Sandbox", "SandboxError", "SandboxOptions"]

# Sandboxes run on loopback with published test credentials: this one protects nothing.
DEFAULT_WEBHOOK_SECRET = "whsec_sandbox"  # noqa: S105


class SandboxError(Exception):
    """An error answer: HTTP ``status_code`` and the provider's error ``code``.

    ``kind`` is the provider's error type (``invalid_request_error``, ``card_error``);
    ``details`` adds fields to the error body (``param``, ``payment_id`` …).
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        kind: str = "invalid_request_error",
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.kind = kind
        self.details = details


class SandboxOptions(TypedDict, total=False):
    """The options every sandbox takes; a subclass passes them on (``**options``)."""

    faults: FaultPlan | None
    webhook_url: str | None
    webhook_secret: str | Iterable[str]
    webhook_schedule: tuple[float, ...]
    webhook_time_scale: float
    clock: Callable[[], float]


class Sandbox:
    """Base class of provider sandboxes; see the module docstring.

    ``webhook_secret`` may list several secrets: the first is current, every one
    signs (a rotation). ``webhook_schedule`` and ``webhook_time_scale`` set the
    delivery retries (see `WebhookSender`); ``clock`` the provider's time.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | Iterable[str] = DEFAULT_WEBHOOK_SECRET,
        webhook_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE,
        webhook_time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = (webhook_secret,) if isinstance(webhook_secret, str) else tuple(webhook_secret)
        if not secrets or not all(secrets):
            raise ConfigurationError(type(self).__name__, ["webhook_secret: is required"])
        self.webhook_url = webhook_url
        self.webhook_secrets: tuple[str, ...] = secrets
        self.clock = clock
        self._plan = faults or FaultPlan()
        self._events: list[Mapping[str, Any]] = []
        self._events_lock = threading.Lock()
        self._sender = (
            WebhookSender(
                webhook_url,
                sign=self.sign_webhook,
                schedule=webhook_schedule,
                time_scale=webhook_time_scale,
                faults=self._plan,
            )
            if webhook_url
            else None
        )
        self._injector: FaultInjector | None = None

    # -- what a subclass provides ------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The provider's routes, in the order of its documentation."""
        raise NotImplementedError

    def control_routes(self) -> list[BaseRoute]:
        """Extra sandbox-only routes (paths under ``/_sandbox/``): never faulted."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """The provider's state as JSON-ready data, for ``GET /_sandbox/state``."""
        raise NotImplementedError

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        """A config mapping for the matching gateway, pointing at ``base_url``."""
        raise NotImplementedError

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        """The headers proving a webhook body comes from this provider."""
        raise NotImplementedError

    def error_body(self, error: SandboxError) -> dict[str, Any]:
        """The JSON body of an error answer, in the provider's shape."""
        return {
            "error": {
                "type": error.kind,
                "code": error.code,
                "message": error.message,
                **error.details,
            }
        }

    # -- the app -------------------------------------------------------------------

    def app(self) -> ASGIApp:
        """The sandbox as an ASGI app, faults applied (built once)."""
        return self._fault_injector()

    def _fault_injector(self) -> FaultInjector:
        if self._injector is None:
            inner = Starlette(
                routes=[*self.routes(), *self._control_routes(), *self.control_routes()],
                exception_handlers={SandboxError: self._error_response},
                lifespan=self._lifespan,
            )
            fault = SandboxError(500, "sandbox_fault", "injected fault", kind="api_error")
            self._injector = FaultInjector(inner, self._plan, error_body=self.error_body(fault))
        return self._injector

    @property
    def faults(self) -> FaultPlan:
        return self._plan

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the fault plan (its ``next`` queues become the pending one-shots)."""
        self._plan = plan
        if self._injector is not None:
            self._injector.set_plan(plan)
        if self._sender is not None:
            self._sender.set_faults(plan)

    def queue_faults(self, *faults: Fault | str) -> None:
        """Break the next requests, one fault each, in order."""
        self._fault_injector().queue(*faults)

    @property
    def requests_received(self) -> tuple[tuple[str, str], ...]:
        """``(method, path)`` of every API request received, faulted ones included.

        Tests count gateway calls with it ("exactly one POST reached the provider").
        """
        return self._fault_injector().received()

    # -- webhooks --------------------------------------------------------------------

    def emit(self, event: Mapping[str, Any]) -> None:
        """Record ``event`` (with an ``id``) and deliver it when a webhook URL is set."""
        with self._events_lock:
            self._events.append(event)
        if self._sender is not None:
            body = json.dumps(event, separators=(",", ":")).encode()
            self._sender.send(str(event["id"]), body)

    @property
    def events(self) -> tuple[Mapping[str, Any], ...]:
        with self._events_lock:
            return tuple(self._events)

    @property
    def webhook_attempts(self) -> tuple[DeliveryAttempt, ...]:
        return self._sender.attempts if self._sender is not None else ()

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery succeeded or gave up; False on timeout."""
        return self._sender.wait_idle(timeout) if self._sender is not None else True

    def close(self) -> None:
        """Stop delivering webhooks. The server's shutdown calls it; safe to call twice."""
        if self._sender is not None:
            self._sender.close()

    # -- internals -------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.close()

    async def _error_response(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SandboxError)
        return JSONResponse(self.error_body(exc), status_code=exc.status_code)

    def _control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/faults", self._get_faults, methods=["GET"]),
            Route("/_sandbox/faults", self._post_faults, methods=["POST"]),
            Route("/_sandbox/state", self._get_state, methods=["GET"]),
            Route("/_sandbox/webhooks", self._get_webhooks, methods=["GET"]),
            Route("/_sandbox/requests", self._get_requests, methods=["GET"]),
        ]

    async def _get_faults(self, request: Request) -> Response:
        pending = [fault.value for fault in self._fault_injector().pending()]
        return JSONResponse({**self._plan.as_dict(), "pending": pending})

    async def _post_faults(self, request: Request) -> Response:
        try:
            plan = FaultPlan.from_mapping(json.loads(await request.body() or b"{}"))
        except ValueError:
            raise SandboxError(400, "parameter_invalid", "the body is not JSON") from None
        except ConfigurationError as exc:
            raise SandboxError(400, "parameter_invalid", str(exc)) from None
        self.set_faults(plan)
        return JSONResponse(plan.as_dict())

    async def _get_state(self, request: Request) -> Response:
        return JSONResponse(self.snapshot())

    async def _get_requests(self, request: Request) -> Response:
        received = [{"method": method, "path": path} for method, path in self.requests_received]
        return JSONResponse({"requests": received})

    async def _get_webhooks(self, request: Request) -> Response:
        return JSONResponse(
            {
                "events": list(self.events),
                "attempts": [attempt.as_dict() for attempt in self.webhook_attempts],
            }
        )
