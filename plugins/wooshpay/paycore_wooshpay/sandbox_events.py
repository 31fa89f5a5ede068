"""The base of the WooshPay sandbox's state: its clock and deadlines, the webhook
endpoints merchants register, and the events every change emits.

`locked` wraps each public method of the state: it takes the lock, lets what fell due
lapse first (authorizations, checkout sessions; checked lazily against the sandbox
clock, as the provider's own jobs would have run by then), then runs the method.
Each event is stored (``GET /v1/events/{id}``) and handed to the sandbox, which
delivers a signed copy to every enabled endpoint subscribed to its type.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET, SandboxError
from paycore.sandbox.state import SandboxState, locked
from paycore_wooshpay.sandbox_objects import WebhookEndpoint

__all__ = ["API_VERSION", "EVENT_TYPES", "StateBase", "found", "missing"]

API_VERSION = "2023-10-16"

# What an endpoint may subscribe to: what the sandbox emits, and the other types the
# provider documents (never emitted here).
EVENT_TYPES = (
    "payment_intent.created",
    "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refund.updated",
    "checkout.session.completed",
    "checkout.session.expired",
    "charge.dispute.updated",
    "product.created",
)

Emit = Callable[[Mapping[str, Any]], None]
Connect = Callable[[str, str, tuple[str, ...]], None]  # (target, url, secrets)
Disconnect = Callable[[str], None]

T = TypeVar("T")


def missing(kind: str, object_id: str, param: str | None = None) -> SandboxError:
    """No such object: 404 for the path's object, 400 naming ``param`` for a parameter's."""
    message = f"No such {kind}: {object_id[:64]!r}"
    if param is None:
        return SandboxError(404, "resource_missing", message, param="id")
    return SandboxError(400, "resource_missing", message, param=param)


def found(table: Mapping[str, T], object_id: str, kind: str, param: str | None = None) -> T:
    """``table[object_id]``, or the `missing` error."""
    value = table.get(object_id)
    if value is None:
        raise missing(kind, object_id, param)
    return value


class StateBase(SandboxState):
    """Deadlines, webhook endpoints and events; `PaymentsState` builds on it."""

    def __init__(
        self,
        *,
        emit: Emit,
        connect: Connect,
        disconnect: Disconnect,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self._emit, self._connect, self._disconnect = emit, connect, disconnect
        self.endpoints: dict[str, WebhookEndpoint] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self._deadlines: list[tuple[float, int, str, str]] = []  # (due, seq, kind, id)
        self._seq = itertools.count()

    def ms(self) -> int:
        """Now in milliseconds, as objects' ``created`` is written."""
        return int(self.clock() * 1000)

    # -- deadlines -------------------------------------------------------------------

    def _due(self, at: float, kind: str, object_id: str) -> None:
        heapq.heappush(self._deadlines, (at, next(self._seq), kind, object_id))

    def _sweep(self) -> None:
        now = self.clock()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, kind, object_id = heapq.heappop(self._deadlines)
            self._lapse(kind, object_id)

    def _lapse(self, kind: str, object_id: str) -> None:
        """The deadline of ``kind`` ``object_id`` passed; it may no longer matter."""

    # -- webhook endpoints -------------------------------------------------------------

    @locked
    def add_default_endpoint(self, url: str, secrets: tuple[str, ...]) -> None:
        """The endpoint the sandbox was started with: every event, its own secrets."""
        endpoint = WebhookEndpoint(
            id=self.ids.new("we"),
            url=url,
            enabled_events=["*"],
            created=self.ms(),
            target=DEFAULT_WEBHOOK_TARGET,
            secrets=secrets,
            description="the sandbox's webhook_url",
        )
        self.endpoints[endpoint.id] = endpoint

    @locked
    def create_endpoint(
        self,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None,
        api_version: str | None,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        endpoint_id = self.ids.new("we")
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            url=url,
            enabled_events=enabled_events,
            created=self.ms(),
            target=endpoint_id,
            secrets=(self.ids.new("whsec"),),
            description=description,
            api_version=api_version,
            metadata=metadata,
        )
        self.endpoints[endpoint.id] = endpoint
        self._connect(endpoint.target, endpoint.url, endpoint.secrets)
        return endpoint.as_json(with_secret=True)

    @locked
    def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return self._endpoint(endpoint_id).as_json()

    @locked
    def endpoint_list(self) -> list[dict[str, Any]]:
        return [endpoint.as_json() for endpoint in reversed(self.endpoints.values())]

    @locked
    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None,
        enabled_events: list[str] | None,
        disabled: bool | None,
        description: str | None,
        metadata: dict[str, str] | None,
    ) -> dict[str, Any]:
        endpoint = self._endpoint(endpoint_id)
        was_enabled = endpoint.status == "enabled"
        endpoint.url = url or endpoint.url
        endpoint.enabled_events = enabled_events or endpoint.enabled_events
        endpoint.description = description or endpoint.description
        if metadata is not None:
            endpoint.metadata = {**endpoint.metadata, **metadata}
        if disabled is not None:
            endpoint.status = "disabled" if disabled else "enabled"
        if endpoint.status == "enabled" and (url or not was_enabled):
            self._connect(endpoint.target, endpoint.url, endpoint.secrets)
        elif endpoint.status == "disabled" and was_enabled:
            self._disconnect(endpoint.target)
        return endpoint.as_json()

    @locked
    def delete_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoints.pop(self._endpoint(endpoint_id).id)
        self._disconnect(endpoint.target)
        return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}

    def targets_for(self, event_type: str) -> list[str]:
        """The delivery targets of the endpoints that receive ``event_type``."""
        # Asked while an event is emitted, in the middle of a change: nothing lapses here.
        with self.lock:
            return [e.target for e in self.endpoints.values() if e.receives(event_type)]

    def _endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return found(self.endpoints, endpoint_id, "webhook endpoint")

    # -- events ------------------------------------------------------------------------

    @locked
    def event(self, event_id: str) -> dict[str, Any]:
        return found(self.events, event_id, "event")

    @locked
    def event_list(self, event_type: str | None) -> list[dict[str, Any]]:
        return [
            event for event in reversed(self.events.values()) if event_type in (None, event["type"])
        ]

    def _announce(self, event_type: str, resource: dict[str, Any]) -> None:
        """Store and send the event ``event_type`` about ``resource`` (its JSON now)."""
        event_id = self.ids.new("evt")
        event: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": {"object": resource},
            "livemode": False,
            "pending_webhooks": len(self.targets_for(event_type)),
            "type": event_type,
        }
        self.events[event_id] = event
        self._emit(event)
