"""One structured log line per request, on the ``paycore.web`` logger.

The line reads ``POST /paycore/webhooks/dummy 200 12.3ms gateway=dummy reason=applied
events=applied:1`` (the time until the answer starts); the same fields go to
``extra={"paycore": {...}}`` for JSON log handlers. The level follows the answer:
INFO, WARNING for a 4xx (and for an event no payment of the ledger matches), ERROR
for a 5xx, with the traceback of an unexpected exception. A healthy ``/health``
probe logs at DEBUG: probes come every few seconds and say nothing new.

Handlers fill in a `RequestLog` (`request_log(request)`) with fixed words only: the
gateway, a ``reason`` (``applied``, ``duplicate``, ``bad_signature``, ``too_large``
…), event counts, the checkout id. Headers, bodies, query values, signatures and
secrets are never logged; the path is, with control characters replaced.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from attrs import Factory, define
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestLog", "RequestLogMiddleware", "logger", "request_log"]

logger = logging.getLogger("paycore.web")

_SCOPE_KEY = "paycore.request_log"
_MAX_SHOWN = 200  # characters of a path or an id shown in a log line
_FAILURE_BODY = b"internal error\n"


@define
class RequestLog:
    """What the handler of one request tells its log line.

    ``quiet`` lowers a successful answer to DEBUG; ``notable`` raises it to WARNING.
    ``exc_info`` is an unexpected exception, logged with its traceback.
    """

    gateway: str | None = None
    reason: str | None = None
    checkout: str | None = None
    events: dict[str, int] = Factory(dict)
    error: str | None = None  # the kind of a gateway error (its class name)
    late: bool = False  # work the request started goes on after its answer
    exc_info: BaseException | None = None
    quiet: bool = False
    notable: bool = False

    def count(self, disposition: str) -> None:
        self.events[disposition] = self.events.get(disposition, 0) + 1


def request_log(request: Request) -> RequestLog:
    """The request's `RequestLog` (a throwaway one outside `RequestLogMiddleware`)."""
    found = request.scope.get(_SCOPE_KEY)
    return found if isinstance(found, RequestLog) else RequestLog()


class RequestLogMiddleware:
    """Logs each HTTP request once it is answered; answers 500 for an escaped exception."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry = RequestLog()
        scope[_SCOPE_KEY] = entry
        started = time.perf_counter()
        status: int | None = None
        logged = False

        def log_once(final_status: int) -> None:
            nonlocal logged
            if not logged:
                logged = True
                _log(scope, final_status, started, entry)

        async def send_and_log(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                # Logged before the answer goes (the handler has said all by then), so
                # whoever reads the answer finds the line.
                status = int(message["status"])
                log_once(status)
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        except Exception as error:
            entry.exc_info = error
            if status is not None:
                # Part of the answer is out: only closing the connection can say it failed.
                log_once(status)
                raise
            entry.reason = entry.reason or "failed"
            status = 500
            log_once(status)
            await _send_failure(send)
            return
        log_once(status or 500)


async def _send_failure(send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_FAILURE_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": _FAILURE_BODY})


def _log(scope: Scope, status: int, started: float, entry: RequestLog) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    fields: dict[str, Any] = {
        "method": scope.get("method", ""),
        "path": _shown(scope.get("path", "")),
        "status": status,
        "duration_ms": duration_ms,
    }
    if entry.gateway is not None:
        fields["gateway"] = entry.gateway
    if entry.reason is not None:
        fields["reason"] = entry.reason
    if entry.checkout is not None:
        fields["checkout"] = _shown(entry.checkout)
    if entry.events:
        fields["events"] = dict(entry.events)
    if entry.error is not None:
        fields["error"] = entry.error
    if entry.late:
        fields["late"] = True
    logger.log(
        _level(status, entry),
        "%s",
        _line(fields),
        exc_info=entry.exc_info,
        extra={"paycore": fields},
    )


def _level(status: int, entry: RequestLog) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400 or entry.notable:
        return logging.WARNING
    return logging.DEBUG if entry.quiet else logging.INFO


def _line(fields: dict[str, Any]) -> str:
    head = f"{fields['method']} {fields['path']} {fields['status']} {fields['duration_ms']}ms"
    tail = []
    for key in ("gateway", "reason", "checkout", "error", "late"):
        if key in fields:
            tail.append(f"{key}={fields[key]}")
    if "events" in fields:
        counts = ",".join(f"{name}:{count}" for name, count in fields["events"].items())
        tail.append(f"events={counts}")
    return " ".join([head, *tail])


def _shown(text: str) -> str:
    """``text`` safe for one log line: control characters and spaces replaced, truncated."""
    cleaned = "".join(c if c.isprintable() and not c.isspace() else "?" for c in text)
    return cleaned if len(cleaned) <= _MAX_SHOWN else cleaned[:_MAX_SHOWN] + "…"
