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
`gateway_config` and `sign_webhook`, may add `control_routes` and `middleware`, and
raises `SandboxError` for an error answer in the provider's shape (`error_body`).

Webhooks go to named *targets*, each a `WebhookSender` with its own URL and signer.
The constructor's ``webhook_url`` is the target `DEFAULT_WEBHOOK_TARGET`, signed by
`sign_webhook`; a provider whose merchants register endpoints through its API adds one
target per endpoint (`add_webhook_target`, each with its own secret) and picks, per
event, which targets receive it (`webhook_targets`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, ClassVar, TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from paycore.errors import ConfigurationError
from paycore.gateways.json_codec import encode_json
from paycore.sandbox.faults import Fault, FaultInjector, FaultPlan
from paycore.sandbox.idempotency import IdempotencyStore
from paycore.sandbox.responses import ExactJSONResponse
from paycore.sandbox.webhook_sender import (
    DEFAULT_RETRY_SCHEDULE,
    DeliveryAttempt,
    Signer,
    WebhookSender,
)

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "DEFAULT_WEBHOOK_TARGET",
    "Sandbox",
    "SandboxError",
    "SandboxOptions",
]

# Sandboxes run on loopback with published test credentials: this one protects nothing.
DEFAULT_WEBHOOK_SECRET = "whsec_sandbox"  # noqa: S105
# The name of the target the constructor's ``webhook_url`` delivers to.
DEFAULT_WEBHOOK_TARGET = "default"


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
    # The answers that count as a delivered webhook: None for any 2xx.
    webhook_accepted_statuses: ClassVar[frozenset[int] | None] = None
    # POST: the event is the body; GET: the event is the query string (see encode_webhook).
    webhook_method: ClassVar[str] = "POST"

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
        self._webhook_schedule = webhook_schedule
        self._webhook_time_scale = webhook_time_scale
        self._events: list[Mapping[str, Any]] = []
        # Guards the events and the targets; never held while a delivery is made.
        self._webhooks_lock = threading.Lock()
        self._senders: dict[str, WebhookSender] = {}
        self._retired: list[WebhookSender] = []  # removed targets: their attempts stay visible
        if webhook_url:
            self.add_webhook_target(DEFAULT_WEBHOOK_TARGET, webhook_url, sign=self.sign_webhook)
        self._injector: FaultInjector | None = None

    # -- what a subclass provides ------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The provider's routes, in the order of its documentation."""
        raise NotImplementedError

    def control_routes(self) -> list[BaseRoute]:
        """Extra sandbox-only routes (paths under ``/_sandbox/``): never faulted."""
        return []

    def middleware(self) -> list[Middleware]:
        """Middleware around the routes (inside the faults): headers every answer carries."""
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
                middleware=self.middleware(),
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
        with self._webhooks_lock:
            senders = list(self._senders.values())
        for sender in senders:
            sender.set_faults(plan)

    def queue_faults(self, *faults: Fault | str) -> None:
        """Break the next requests, one fault each, in order."""
        self._fault_injector().queue(*faults)

    @property
    def requests_received(self) -> tuple[tuple[str, str], ...]:
        """``(method, path)`` of every API request received, faulted ones included.

        Tests count gateway calls with it ("exactly one POST reached the provider").
        """
        return self._fault_injector().received()

    # -- idempotency -----------------------------------------------------------------------

    def answer_once(
        self,
        store: IdempotencyStore,
        *,
        scope: str,
        key: str | None,
        fingerprint: str,
        lock: AbstractContextManager[Any],
        carry_out: Callable[[], tuple[int, Any]],
        conflict: SandboxError,
    ) -> Response:
        """Carry out a validated mutation once per idempotency ``key``; replay its answer.

        Under ``lock`` (the state's), a key seen before with the same ``fingerprint``
        answers what it answered then, with ``Idempotent-Replayed: true``; with another
        fingerprint, ``conflict`` is raised. Error answers of the mutation itself are
        stored like successes (a retry must not succeed where the first try failed).
        """
        with lock:
            stored = store.lookup(scope, key) if key else None
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise conflict
                return ExactJSONResponse(
                    stored.body, stored.status_code, headers={"Idempotent-Replayed": "true"}
                )
            try:
                status_code, body = carry_out()
            except SandboxError as error:
                status_code, body = error.status_code, self.error_body(error)
            if key:
                store.save(scope, key, fingerprint, status_code, body)
        return ExactJSONResponse(body, status_code)

    # -- webhooks --------------------------------------------------------------------

    def add_webhook_target(self, name: str, url: str, *, sign: Signer) -> None:
        """Deliver events to ``url`` too, each attempt signed by ``sign(body)``.

        A target of the same ``name`` is replaced (its pending deliveries are dropped).
        The retry schedule, time scale and faults are the sandbox's.
        """
        sender = WebhookSender(
            url,
            sign=sign,
            schedule=self._webhook_schedule,
            time_scale=self._webhook_time_scale,
            faults=self._plan,
            accepted=self.webhook_accepted_statuses,
            method=self.webhook_method,
        )
        with self._webhooks_lock:
            replaced = self._senders.pop(name, None)
            self._senders[name] = sender
        if replaced is not None:
            self._retire(replaced)

    def remove_webhook_target(self, name: str) -> None:
        """Stop delivering to the target ``name`` (pending deliveries are dropped)."""
        with self._webhooks_lock:
            removed = self._senders.pop(name, None)
        if removed is not None:
            self._retire(removed)

    def webhook_targets(self, event: Mapping[str, Any]) -> Iterable[str]:
        """The names of the targets that receive ``event``; by default every target."""
        with self._webhooks_lock:
            return tuple(self._senders)

    def emit(self, event: Mapping[str, Any], *, event_id: str | None = None) -> None:
        """Record ``event`` and deliver it, as compact JSON, to its `webhook_targets`.

        Deliveries are known by ``event_id``, by default the event's own ``id`` (a
        provider whose callbacks are the changed object itself names them otherwise).
        """
        delivery_id = str(event["id"]) if event_id is None else event_id
        names = tuple(self.webhook_targets(event))
        with self._webhooks_lock:
            self._events.append(event)
            senders = [self._senders[name] for name in names if name in self._senders]
        if senders:
            body = self.encode_webhook(event)
            for sender in senders:
                sender.send(delivery_id, body)

    def encode_webhook(self, event: Mapping[str, Any]) -> bytes:
        """The bytes a delivery of ``event`` carries: by default compact JSON with exact
        decimals (for providers writing major units); a provider calling back with GET
        returns its query string."""
        return encode_json(event)

    @property
    def events(self) -> tuple[Mapping[str, Any], ...]:
        with self._webhooks_lock:
            return tuple(self._events)

    @property
    def webhook_attempts(self) -> tuple[DeliveryAttempt, ...]:
        """Every delivery attempt to every target (removed ones too), oldest first."""
        with self._webhooks_lock:
            senders = [*self._retired, *self._senders.values()]
        attempts = [attempt for sender in senders for attempt in sender.attempts]
        return tuple(sorted(attempts, key=lambda attempt: attempt.at))

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery succeeded or gave up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._webhooks_lock:
            senders = list(self._senders.values())
        return all(sender.wait_idle(max(0.0, deadline - time.monotonic())) for sender in senders)

    def close(self) -> None:
        """Stop delivering webhooks. The server's shutdown calls it; safe to call twice."""
        with self._webhooks_lock:
            senders = list(self._senders.values())
        for sender in senders:
            sender.close()

    def _retire(self, sender: WebhookSender) -> None:
        # Not waited for: a request handler removes targets, and must not block on a
        # delivery in flight.
        sender.close(wait=False)
        with self._webhooks_lock:
            self._retired.append(sender)

    # -- internals -------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.close()

    async def _error_response(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SandboxError)
        return ExactJSONResponse(self.error_body(exc), status_code=exc.status_code)

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
        return ExactJSONResponse(self.snapshot())

    async def _get_requests(self, request: Request) -> Response:
        received = [{"method": method, "path": path} for method, path in self.requests_received]
        return JSONResponse({"requests": received})

    async def _get_webhooks(self, request: Request) -> Response:
        return ExactJSONResponse(
            {
                "events": list(self.events),
                "attempts": [attempt.as_dict() for attempt in self.webhook_attempts],
            }
        )
