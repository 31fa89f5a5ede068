"""Fault injection for sandboxes: what can go wrong between a client and a provider.

A `FaultPlan` sets the knobs; a `FaultInjector` wraps a sandbox's ASGI app and applies
them to each request (paths under ``/_sandbox/`` are never faulted):

- ``latency``: seconds added before answering;
- ``error_rate``: answer 500 *before* processing: nothing happened;
- ``timeout_rate``: process, then stall ``stall_seconds`` before answering, so the
  client's read timeout fires after the state changed;
- ``drop_rate``: process, then break the connection after the response headers
  (the client sees the connection closed mid-response);
- ``garble`` (one-shot only): process, then answer 200 with a body that is not the
  provider's format (a proxy's HTML page where JSON was due);
- ``late`` (one-shot only): hold the request until its client gives up (at most
  ``stall_seconds``), then process it: an answer slower than any read timeout, from
  a provider that still does what it was asked;
- ``next``: one-shot faults applied in order to the next requests, before any rate
  (``("drop", "error")``): what tests use instead of rates.

The ``webhook_*`` knobs are read by the `WebhookSender`: duplicated deliveries,
out-of-order deliveries (held back until the next event went out), and a delay.
Rates draw from a `random.Random` seeded with ``seed``. `FaultInjector.wait_idle`
waits for the requests still inside the sandbox (one held back by ``latency`` or
``late`` is processed after its client gave up).
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from attrs import asdict, field, frozen
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.errors import ConfigurationError

__all__ = ["Fault", "FaultInjector", "FaultPlan", "WebhookFault"]

CONTROL_PREFIX = "/_sandbox/"
# What a garbled answer says: a page from something between the client and the provider.
GARBLED_BODY = b"<html><body><h1>Service temporarily rerouted</h1></body></html>"

E = TypeVar("E", bound=enum.StrEnum)


class Fault(enum.StrEnum):
    """A one-shot fault for the next request."""

    ERROR = "error"  # 500 before processing
    TIMEOUT = "timeout"  # process, then stall
    DROP = "drop"  # process, then break the connection
    GARBLE = "garble"  # process, then answer 200 with a body not in the provider's format
    LATE = "late"  # hold until the client gives up, then process


class WebhookFault(enum.StrEnum):
    """A one-shot fault for the next webhook event."""

    DUPLICATE = "duplicate"  # delivered twice
    REORDER = "reorder"  # held back until the next event was sent


_FLOATS = (
    "latency",
    "error_rate",
    "timeout_rate",
    "drop_rate",
    "stall_seconds",
    "webhook_duplicate_rate",
    "webhook_reorder_rate",
    "webhook_delay",
)
_RATES = (
    "error_rate",
    "timeout_rate",
    "drop_rate",
    "webhook_duplicate_rate",
    "webhook_reorder_rate",
)


def _faults(values: Iterable[Fault | str]) -> tuple[Fault, ...]:
    return tuple(_enum_values(Fault, values, "next"))


def _webhook_faults(values: Iterable[WebhookFault | str]) -> tuple[WebhookFault, ...]:
    return tuple(_enum_values(WebhookFault, values, "webhook_next"))


def _enum_values(kind: type[E], values: Iterable[E | str], knob: str) -> list[E]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable):
        raise ConfigurationError("fault plan", [f"{knob}: must be a list of fault names"])
    allowed = ", ".join(member.value for member in kind)
    result = []
    for value in values:
        try:
            result.append(kind(value))
        except ValueError:
            raise ConfigurationError(
                "fault plan", [f"{knob}: {str(value)[:32]!r} is not one of {allowed}"]
            ) from None
    return result


@frozen(kw_only=True)
class FaultPlan:
    """The faults a sandbox injects. The default plan injects none."""

    latency: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    stall_seconds: float = 60.0  # longer than a client's usual read timeout
    next: tuple[Fault, ...] = field(default=(), converter=_faults)
    webhook_duplicate_rate: float = 0.0
    webhook_reorder_rate: float = 0.0
    webhook_delay: float = 0.0
    webhook_next: tuple[WebhookFault, ...] = field(default=(), converter=_webhook_faults)
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        problems = []
        for name in _FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{name}: must be a number of seconds or a rate")
            elif name in _RATES and not 0 <= value <= 1:
                problems.append(f"{name}: must be between 0 and 1")
            elif value < 0:
                problems.append(f"{name}: must not be negative")
        if not problems and self.error_rate + self.timeout_rate + self.drop_rate > 1:
            problems.append("error_rate + timeout_rate + drop_rate: must not exceed 1")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            problems.append("seed: must be an integer")
        if problems:
            raise ConfigurationError("fault plan", problems)

    @classmethod
    def parse(cls, settings: Iterable[str]) -> FaultPlan:
        """Build from ``key=value`` strings, as given to ``--fault``.

        ``next`` and ``webhook_next`` take comma-separated lists (``next=drop,error``).
        """
        values: dict[str, Any] = {}
        problems = []
        for setting in settings:
            key, sep, text = setting.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                problems.append(f"{setting[:40]!r}: expected key=value, such as latency=0.2")
            elif key in ("next", "webhook_next"):
                values[key] = [item.strip() for item in text.split(",") if item.strip()]
            elif key == "seed":
                try:
                    values[key] = int(text)
                except ValueError:
                    problems.append(f"seed: {text[:32]!r} is not an integer")
            elif key in _FLOATS:
                try:
                    values[key] = float(text)
                except ValueError:
                    problems.append(f"{key}: {text[:32]!r} is not a number")
            else:
                problems.append(f"{key[:40]!r}: unknown fault; known: {', '.join(_knobs())}")
        if problems:
            raise ConfigurationError("fault plan", problems)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> FaultPlan:
        """Build from a JSON-like mapping; `ConfigurationError` names unknown knobs."""
        if not isinstance(mapping, Mapping):
            raise ConfigurationError("fault plan", ["must be an object of knob: value"])
        if unknown := sorted(set(mapping) - set(_knobs())):
            raise ConfigurationError(
                "fault plan",
                [
                    f"{str(key)[:40]!r}: unknown fault; known: {', '.join(_knobs())}"
                    for key in unknown
                ],
            )
        return cls(**mapping)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self, value_serializer=lambda _, __, value: _plain(value))


def _knobs() -> list[str]:
    return [a.name for a in FaultPlan.__attrs_attrs__]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [str(item) for item in value]
    return value


class FaultInjector:
    """ASGI middleware applying a `FaultPlan` to every request outside ``/_sandbox/``.

    ``error_body`` is what an injected 500 answers (JSON, in the provider's error shape).
    Thread-safe: tests change the plan from another thread while the server runs.
    """

    def __init__(
        self,
        app: ASGIApp,
        plan: FaultPlan | None = None,
        *,
        error_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self._error_body = json.dumps(
            error_body or {"error": {"message": "injected fault: internal error"}}
        ).encode()
        self._lock = threading.Lock()
        self._received: list[tuple[str, str]] = []
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self.set_plan(plan or FaultPlan())

    def received(self) -> tuple[tuple[str, str], ...]:
        """``(method, path)`` of every request that reached the sandbox, in order.

        Control requests (``/_sandbox/…``) are not counted; faulted ones are.
        """
        with self._lock:
            return tuple(self._received)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is inside the sandbox; False if some still are after
        ``timeout`` seconds. A request whose client gave up during ``latency`` (or a
        ``late`` one) is processed afterwards: this is how a test knows the provider is
        done with it."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the plan; its ``next`` faults become the queue, its seed the random."""
        with self._lock:
            self._plan = plan
            self._queue: deque[Fault] = deque(plan.next)
            self._random = random.Random(plan.seed)

    def queue(self, *faults: Fault | str) -> None:
        """Add one-shot faults for the next requests, after those already queued."""
        with self._lock:
            self._queue.extend(_faults(faults))

    def pending(self) -> tuple[Fault, ...]:
        with self._lock:
            return tuple(self._queue)

    def choose(self) -> Fault | None:
        """The fault for one request: the next queued one, else one drawn by the rates."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            plan = self._plan
            if not (plan.error_rate or plan.timeout_rate or plan.drop_rate):
                return None
            draw = self._random.random()
            for fault, rate in (
                (Fault.ERROR, plan.error_rate),
                (Fault.TIMEOUT, plan.timeout_rate),
                (Fault.DROP, plan.drop_rate),
            ):
                if draw < rate:
                    return fault
                draw -= rate
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        with self._lock:
            self._received.append((scope["method"], scope["path"]))
            self._in_flight += 1
        try:
            await self._apply(scope, receive, send)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    async def _apply(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self.plan
        fault = self.choose()
        if plan.latency or fault is Fault.LATE:
            # The provider has the whole request, then takes its time: it processes
            # the request even if the client has given up meanwhile.
            body = await _request_body(receive)
            if plan.latency:
                await asyncio.sleep(plan.latency)
            if fault is Fault.LATE:
                await self._stall(receive, plan.stall_seconds)
            receive = _replaying(body, receive)
        if fault is None or fault is Fault.LATE:
            await self.app(scope, receive, send)
        elif fault is Fault.ERROR:
            await self._send_error(send)
        else:
            messages = await self._run_buffered(scope, receive)
            if fault is Fault.TIMEOUT:
                await self._stall(receive, plan.stall_seconds)
                for message in messages:
                    await send(message)
            elif fault is Fault.GARBLE:
                await self._send(send, 200, b"text/html; charset=utf-8", GARBLED_BODY)
            else:
                await self._drop(messages, send)

    async def _run_buffered(self, scope: Scope, receive: Receive) -> list[Message]:
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        return messages

    async def _stall(self, receive: Receive, seconds: float) -> None:
        # Waiting on receive() ends the stall early when the client gives up, so the
        # server does not keep a task alive for a client that has gone.
        try:
            async with asyncio.timeout(seconds):
                while (await receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            pass

    async def _drop(self, messages: list[Message], send: Send) -> None:
        # The headers promise a body that never comes; returning now makes the server
        # close the connection mid-response.
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:
            return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        body_length = sum(len(m.get("body", b"")) for m in messages[1:])
        headers.append((b"content-length", str(max(body_length, 1)).encode()))
        await send({**start, "headers": headers})

    async def _send_error(self, send: Send) -> None:
        await self._send(send, 500, b"application/json", self._error_body)

    async def _send(self, send: Send, status: int, content_type: bytes, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _request_body(receive: Receive) -> list[Message]:
    """The request's body messages, read now (the provider has received them)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` giving ``messages`` first, then listening on ``receive``."""
    buffered = deque(messages)

    async def replay() -> Message:
        return buffered.popleft() if buffered else await receive()

    return replay
