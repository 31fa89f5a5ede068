"""Deliver a sandbox's webhook events to a URL, as a provider would: signed, retried.

A background thread posts each event, signing every attempt afresh (the signature's
timestamp is the attempt's). An answer other than 2xx, or no answer, is retried on
``schedule``: the seconds at which each attempt is due, counted from the first
(a retry waits the gap between two entries after the failed attempt), multiplied by
``time_scale`` so tests compress hours into milliseconds (`exponential_schedule`
builds a provider's "N attempts over so many hours"). Every attempt is
recorded for tests to inspect. The `FaultPlan`'s ``webhook_*`` knobs duplicate
events, deliver them out of order (an event is held back until the next one went
out) or late.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from attrs import asdict, define, frozen

from paycore.sandbox.faults import FaultPlan, WebhookFault

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "DeliveryAttempt",
    "Signer",
    "WebhookSender",
    "exponential_schedule",
]

DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0, 1, 5, 30)

Signer = Callable[[bytes], Mapping[str, str]]


def exponential_schedule(attempts: int, span: float, *, first_gap: float) -> tuple[float, ...]:
    """A retry schedule of ``attempts`` tries, the last ``span`` seconds after the first.

    The gaps grow by a constant factor from ``first_gap``, as a provider's "18 times
    in 72 hours, with exponential back-off" does; each time is rounded to the second.
    """
    if attempts < 2:
        raise ValueError("an exponential schedule needs at least two attempts")
    if not 0 < first_gap * (attempts - 1) <= span:
        raise ValueError("the first gap must be positive and at most span / (attempts - 1)")
    gaps = attempts - 1

    def total(ratio: float) -> float:  # the span gaps growing by ``ratio`` cover
        return first_gap * sum(ratio**k for k in range(gaps))

    low, high = 1.0, 2.0
    while total(high) < span:
        high *= 2
    for _ in range(100):  # bisection: total() grows with the ratio
        middle = (low + high) / 2
        low, high = (middle, high) if total(middle) < span else (low, middle)
    times = [0.0]
    for k in range(gaps):
        times.append(times[-1] + first_gap * low**k)
    return (*(float(round(t)) for t in times[:-1]), float(span))


@frozen(kw_only=True)
class DeliveryAttempt:
    """One attempt to deliver one event. ``status_code`` is None when nothing came back."""

    event_id: str
    attempt: int  # 1 for the first try of this delivery
    url: str
    status_code: int | None
    error: str | None
    delivered: bool
    duplicate: bool  # a copy sent by the duplicate fault
    at: float  # when it was sent (seconds since the epoch)

    def as_dict(self) -> dict[str, Any]:
        """The attempt as JSON can hold it: ``at`` in RFC 3339 (UTC, milliseconds)."""
        sent = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        return {**asdict(self), "at": sent.replace("+00:00", "Z")}


@define
class _Delivery:
    event_id: str
    body: bytes
    due: float
    seq: int
    attempt: int = 1
    duplicate: bool = False
    held: bool = False

    @property
    def order(self) -> tuple[float, int]:
        return (self.due, self.seq)


class WebhookSender:
    """Delivers events to ``url`` from a background thread, started on the first `send`.

    Each event's bytes are POSTed as the body, or, with ``method="GET"`` (providers
    that call back with a query string), sent as the query: ``GET url?<bytes>``.

    ``sign(body)`` returns the headers proving the body's origin (computed per attempt).
    A delivery counts as made when the answer's status is in ``accepted`` (by default
    any 2xx; a provider that wants exactly 200 says so) and is retried otherwise.
    An event held back by the reorder fault goes anyway after ``reorder_hold`` seconds
    when no later event overtakes it.
    `close` stops it; deliveries still pending then are abandoned.
    """

    def __init__(
        self,
        url: str,
        *,
        sign: Signer,
        schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE,
        time_scale: float = 1.0,
        timeout: float = 5.0,
        faults: FaultPlan | None = None,
        content_type: str = "application/json",
        reorder_hold: float = 1.0,
        accepted: frozenset[int] | None = None,
        method: str = "POST",
    ) -> None:
        if not schedule:
            raise ValueError("the retry schedule needs at least one attempt")
        if method not in ("POST", "GET"):
            raise ValueError(f"webhooks are sent with POST or GET, not {method!r}")
        self.url = url
        self._sign = sign
        self._schedule = tuple(float(delay) * time_scale for delay in schedule)
        self._timeout = timeout
        self._content_type = content_type
        self._reorder_hold = reorder_hold
        self._accepted = accepted
        self._method = method
        self._condition = threading.Condition()
        self._pending: list[_Delivery] = []
        self._attempts: list[DeliveryAttempt] = []
        self._in_flight = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self.set_faults(faults or FaultPlan())

    def set_faults(self, plan: FaultPlan) -> None:
        with self._condition:
            self._plan = plan
            self._next_faults = list(plan.webhook_next)
            self._random = random.Random(plan.seed)

    @property
    def attempts(self) -> tuple[DeliveryAttempt, ...]:
        with self._condition:
            return tuple(self._attempts)

    def send(self, event_id: str, body: bytes) -> None:
        """Schedule ``body`` (the event ``event_id``, serialised) for delivery."""
        with self._condition:
            duplicate, reorder = self._draw_faults()
            now = time.monotonic()
            due = now + self._plan.webhook_delay
            delivery = _Delivery(event_id, body, due, next(self._seq))
            for held in (d for d in self._pending if d.held):
                held.held, held.due, held.seq = False, due, next(self._seq)
            if reorder:
                delivery.held, delivery.due = True, due + self._reorder_hold
            self._pending.append(delivery)
            if duplicate:
                copy = _Delivery(event_id, body, delivery.due, next(self._seq), duplicate=True)
                copy.held = delivery.held
                self._pending.append(copy)
            self._ensure_started()
            self._condition.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is pending or in flight; False if ``timeout`` passed first."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._pending and not self._in_flight, timeout
            )

    def close(self, *, wait: bool = True) -> None:
        """Stop the thread and abandon pending deliveries; a later `send` starts again.

        ``wait=False`` returns at once: an attempt in flight then finishes (and is
        recorded) in the background.
        """
        with self._condition:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
            self._pending.clear()
            if stop is not None:
                stop.set()
            self._condition.notify_all()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(self._timeout + 1)

    def _draw_faults(self) -> tuple[bool, bool]:
        if self._next_faults:
            fault = self._next_faults.pop(0)
            return fault is WebhookFault.DUPLICATE, fault is WebhookFault.REORDER
        plan = self._plan
        duplicate = bool(plan.webhook_duplicate_rate) and (
            self._random.random() < plan.webhook_duplicate_rate
        )
        reorder = bool(plan.webhook_reorder_rate) and (
            self._random.random() < plan.webhook_reorder_rate
        )
        return duplicate, reorder

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="sandbox-webhooks", daemon=True
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        # A sandbox delivers to loopback or a URL its user chose: never through a proxy
        # from the environment (HTTP_PROXY would swallow loopback deliveries).
        with httpx.Client(timeout=self._timeout, trust_env=False) as client:
            while (delivery := self._next_due(stop)) is not None:
                attempt = self._attempt(client, delivery)
                with self._condition:
                    self._attempts.append(attempt)
                    self._in_flight -= 1
                    if not (attempt.delivered or stop.is_set()):
                        self._retry_later(delivery)
                    self._condition.notify_all()

    def _next_due(self, stop: threading.Event) -> _Delivery | None:
        with self._condition:
            while not stop.is_set():
                if not self._pending:
                    self._condition.wait()
                    continue
                delivery = min(self._pending, key=lambda d: d.order)
                wait = delivery.due - time.monotonic()
                if wait <= 0:
                    self._pending.remove(delivery)
                    self._in_flight += 1
                    return delivery
                self._condition.wait(wait)
            return None

    def _attempt(self, client: httpx.Client, delivery: _Delivery) -> DeliveryAttempt:
        signature = self._sign(delivery.body)
        status_code: int | None = None
        error: str | None = None
        sent_at = time.time()
        try:
            if self._method == "GET":
                query = delivery.body.decode("ascii")
                url = f"{self.url}{'&' if '?' in self.url else '?'}{query}"
                response = client.get(url, headers=signature)
            else:
                headers = {"content-type": self._content_type, **signature}
                response = client.post(self.url, content=delivery.body, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return DeliveryAttempt(
            event_id=delivery.event_id,
            attempt=delivery.attempt,
            url=self.url,
            status_code=status_code,
            error=error,
            delivered=self._accepts(status_code),
            duplicate=delivery.duplicate,
            at=sent_at,
        )

    def _accepts(self, status_code: int | None) -> bool:
        if status_code is None:
            return False
        if self._accepted is None:
            return 200 <= status_code < 300
        return status_code in self._accepted

    def _retry_later(self, delivery: _Delivery) -> None:
        if delivery.attempt >= len(self._schedule):
            return  # the provider gives up
        gap = self._schedule[delivery.attempt] - self._schedule[delivery.attempt - 1]
        delivery.due = time.monotonic() + gap
        delivery.attempt += 1
        delivery.seq = next(self._seq)
        self._pending.append(delivery)
