"""The decisions of one exchange: how each attempt ended, whether to retry, what to raise.

`ExchangeRun` holds what the drivers (`paycore.gateways.driver`) need to decide, for
one operation, without doing any I/O itself:

- before an attempt: the timeouts it gets, and whether there is time to make it;
- after an attempt: was it *not sent*, *not processed* (429), *refused at the door*
  (401/403), or *maybe sent* (a timeout, a broken connection, a 5xx);
- whether to retry: anything not sent or not processed; reads; mutations the
  provider deduplicates (`RequestPolicy.idempotent`); never past the budget;
- what to raise: once a mutation of the exchange may have reached the provider,
  every failure is `OutcomeUnknown`, whatever went wrong after it;
- the transcript: attempts kept raw, scrubbed only when someone wants them.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayRefused,
    GatewayUnavailable,
    OutcomeUnknown,
    PaycoreError,
)
from paycore.gateways.base import Gateway, RequestPolicy
from paycore.gateways.scrub import ExchangeRecord, Scrubber, Transcript, attempt_line

__all__ = ["ClientClosed", "ExchangeRun", "Failure", "RetryPolicy"]

logger = logging.getLogger("paycore.gateways")
hook_logger = logging.getLogger("paycore.hooks")

# Raised before a byte of the request is written. LocalProtocolError: the request
# itself is malformed (an illegal header value, say), so it never left.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
_REQUEST_ID_HEADERS = ("request-id", "x-request-id", "x-correlation-id")
_MAYBE_HAPPENED = "the operation may have happened: reconcile before retrying"


@frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently a driver retries what is safe to retry.

    The n-th retry waits ``backoff * factor**(n-1)`` seconds (at most ``max_backoff``),
    spread by ``jitter``; a ``Retry-After`` answer is honoured up to ``max_backoff``.
    """

    max_attempts: int = 3
    backoff: float = 0.2
    factor: float = 2.0
    max_backoff: float = 5.0
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        base = self.backoff * self.factor ** (attempt - 1) if retry_after is None else retry_after
        spread = 1 + self.jitter * (2 * rng.random() - 1)
        return min(self.max_backoff, max(0.0, base * spread))


class ClientClosed(Exception):
    """The driver's HTTP client was closed before the request could be sent."""


class Kind(enum.Enum):
    NOT_SENT = "not sent"
    NOT_PROCESSED = "not processed"  # the provider refused before processing (429)
    REFUSED = "credentials rejected"  # 401/403: refused at the door
    OUT_OF_TIME = "not sent for lack of time"  # the budget cannot cover another mutation
    MAYBE_SENT = "maybe sent"  # sent, or partly sent; no usable answer


@frozen
class Failure:
    """How one attempt went wrong."""

    kind: Kind
    message: str
    http_status: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    cause: BaseException | None = None


@frozen
class _RawRecord:
    attempt: int
    request: httpx.Request
    response: httpx.Response | None
    elapsed: float
    error: str | None

    def scrubbed(self, scrub: Scrubber) -> ExchangeRecord:
        request, response = self.request, self.response
        return ExchangeRecord(
            attempt=self.attempt,
            method=request.method,
            url=scrub.text(str(request.url)),
            request_headers=scrub.headers(request.headers),
            request_body=scrub.body(request.content),
            status_code=None if response is None else response.status_code,
            response_headers=() if response is None else scrub.headers(response.headers),
            response_body=None if response is None else scrub.body(response.content),
            elapsed_ms=self.elapsed * 1000,
            error=self.error,
        )


class ExchangeRun:
    """The state and decisions of one operation's exchange."""

    def __init__(
        self,
        gateway: Gateway,
        operation: str,
        *,
        retry: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
        scrubber: Scrubber,
        hooks: Any | None,
    ) -> None:
        self.gateway = gateway
        self.operation = operation
        self.retry = retry
        self.clock = clock
        self.rng = rng
        self.scrubber = scrubber
        self.hooks = hooks
        self.deadline = clock() + gateway.timeouts.total
        self.records: list[_RawRecord] = []
        # True once a mutation of this exchange may have reached the provider.
        self.mutation_reached = False

    # -- before an attempt ---------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def prepare(self, request: httpx.Request) -> Failure | None:
        """Set the attempt's timeouts, or say why it must not be made.

        The total budget bounds when attempts may *start*. A mutation is sent only
        with its full read timeout ahead of it: cutting its wait short would turn an
        answer on its way into an unknown outcome. Reads are cut to what remains.
        """
        timeouts = self.gateway.timeouts
        remaining = self.remaining()
        if remaining <= 0:
            return Failure(Kind.OUT_OF_TIME, f"not sent: the {timeouts.total:g} s budget is spent")
        if RequestPolicy.of(request).mutation:
            if remaining < timeouts.read:
                return Failure(
                    Kind.OUT_OF_TIME,
                    f"not sent: {max(remaining, 0):.2f} s left of the exchange's "
                    f"{timeouts.total:g} s budget, less than the {timeouts.read:g} s read timeout",
                )
            connect, read = timeouts.connect, timeouts.read
        else:
            connect, read = min(timeouts.connect, remaining), min(timeouts.read, remaining)
        request.extensions["timeout"] = {
            "connect": connect,
            "read": read,
            "write": read,
            "pool": connect,
        }
        return None

    # -- after an attempt ----------------------------------------------------------

    def classify_error(self, request: httpx.Request, exc: BaseException) -> Failure:
        # Messages quote the exception (hosts, ports, a bad header's value): scrubbed.
        described = self.scrubber.text(_describe(exc))
        if isinstance(exc, _NOT_SENT):
            return Failure(Kind.NOT_SENT, f"could not send the request: {described}", cause=exc)
        if isinstance(exc, ClientClosed):
            return Failure(Kind.NOT_SENT, "the driver's HTTP client is closed", cause=exc)
        if isinstance(exc, httpx.TimeoutException):
            message = f"no answer within the timeout: {described}"
        elif isinstance(exc, httpx.HTTPError):
            message = f"the connection broke before a complete answer: {described}"
        elif isinstance(exc, Exception):
            message = f"sending failed unexpectedly: {described}"
        else:
            message = f"interrupted while the request was in flight ({type(exc).__name__})"
        self._note_reached(request)
        return Failure(Kind.MAYBE_SENT, message, cause=exc)

    def classify_response(self, request: httpx.Request, response: httpx.Response) -> Failure | None:
        status = response.status_code
        if status < 400 or (status < 500 and status not in (401, 403, 429)):
            self._note_reached(request)
            return None  # an answer for the plugin to read (the fast, common path)
        request_id = _request_id(response)
        if status == 429:
            return Failure(
                Kind.NOT_PROCESSED,
                "the provider is rate limiting requests",
                http_status=status,
                request_id=request_id,
                retry_after=_retry_after(response),
            )
        if status in (401, 403):
            return Failure(
                Kind.REFUSED,
                "the provider rejected the credentials; check the gateway's config",
                http_status=status,
                request_id=request_id,
            )
        self._note_reached(request)
        return Failure(
            Kind.MAYBE_SENT,
            "the provider failed while handling the request",
            http_status=status,
            request_id=request_id,
            retry_after=_retry_after(response) if status == 503 else None,
        )

    def _note_reached(self, request: httpx.Request) -> None:
        if RequestPolicy.of(request).mutation:
            self.mutation_reached = True

    def retry_delay(self, request: httpx.Request, failure: Failure, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if failure.kind in (Kind.REFUSED, Kind.OUT_OF_TIME) or attempt >= self.retry.max_attempts:
            return None
        policy = RequestPolicy.of(request)
        if failure.kind is Kind.MAYBE_SENT and not policy.idempotent:
            return None
        delay = self.retry.delay(attempt, failure.retry_after, self.rng)
        # No point waiting for an attempt the budget will not allow.
        needed = delay + (self.gateway.timeouts.read if policy.mutation else 0.0)
        return delay if needed < self.remaining() else None

    # -- what to raise -------------------------------------------------------------

    def error(self, failure: Failure) -> GatewayError:
        """The exception for a failure no retry will mend."""
        details: dict[str, Any] = {
            "gateway": self.gateway.name,
            "http_status": failure.http_status,
            "request_id": failure.request_id,
        }
        message = f"{self.operation}: {failure.message}"
        if self.mutation_reached:
            return OutcomeUnknown(f"{message}; {_MAYBE_HAPPENED}", **details)
        if failure.kind is Kind.REFUSED:
            return GatewayAuthError(message, **details)
        return GatewayUnavailable(f"{message}; nothing was done, safe to retry", **details)

    def plugin_error(self, exc: Exception, response: httpx.Response | None) -> PaycoreError:
        """What to raise when the plugin fails on an answer.

        After a mutation may have reached the provider, nothing the plugin fails with
        can mean "nothing was done": every failure becomes `OutcomeUnknown`, except the
        plugin's own verdicts on an answer it read: `OutcomeUnknown`, or
        `GatewayRefused` (the provider said no).
        """
        if isinstance(exc, OutcomeUnknown | GatewayRefused):
            return exc  # the plugin read the answer: unknown, or refused for certain
        details: dict[str, Any] = {
            "gateway": self.gateway.name,
            "http_status": None if response is None else response.status_code,
            "request_id": None if response is None else _request_id(response),
        }
        if isinstance(exc, GatewayError):
            reason = exc.message
        elif isinstance(exc, PaycoreError):
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = type(exc).__name__
        if self.mutation_reached:
            return OutcomeUnknown(
                f"{self.operation}: the answer could not be used ({reason}); {_MAYBE_HAPPENED}",
                **details,
            )
        if isinstance(exc, PaycoreError):
            return exc
        what = "the plugin failed" if response is None else "the answer could not be read"
        return GatewayProtocolError(f"{self.operation}: {what} ({reason})", **details)

    # -- transcript ----------------------------------------------------------------

    def record(
        self,
        request: httpx.Request,
        attempt: int,
        elapsed: float,
        response: httpx.Response | None = None,
        failure: Failure | None = None,
    ) -> None:
        # Kept raw and scrubbed only when a transcript is wanted: most runs need none.
        error = failure.message if failure is not None and response is None else None
        self.records.append(_RawRecord(attempt, request, response, elapsed, error))

    def summary(self) -> str:
        """`Transcript.summary` of the attempts so far, scrubbing only what it shows."""
        return "; ".join(
            attempt_line(
                raw.request.method,
                self.scrubber.text(str(raw.request.url)),
                None if raw.response is None else raw.response.status_code,
                raw.error,
                raw.elapsed * 1000,
            )
            for raw in self.records
        )

    def finish(self, outcome: str, *, keep: bool) -> Transcript | None:
        """Build the transcript if anyone wants it: the caller, a hook or the log."""
        hooks = self.hooks
        hooked = hooks is not None and bool(hooks.paycore_gateway_exchange.get_hookimpls())
        debug = logger.isEnabledFor(logging.DEBUG)
        failed = outcome != "completed"
        if not (keep or hooked or debug or failed):
            return None
        transcript = Transcript(
            gateway=self.gateway.name,
            operation=self.operation,
            records=tuple(raw.scrubbed(self.scrubber) for raw in self.records),
            outcome=outcome,
        )
        if debug or failed:
            logger.log(
                logging.WARNING if failed else logging.DEBUG,
                "%s %s %s: %s",
                self.gateway.name,
                self.operation,
                outcome,
                transcript.summary(),
            )
        if hooked and hooks is not None:
            try:
                hooks.paycore_gateway_exchange(
                    gateway=self.gateway.name, operation=self.operation, transcript=transcript
                )
            except Exception:
                # An observer's failure must not change what happened at the provider.
                hook_logger.exception(
                    "a paycore_gateway_exchange hook failed (%s %s)",
                    self.gateway.name,
                    self.operation,
                )
        return transcript


def _describe(exc: BaseException) -> str:
    # httpx messages name hosts and ports, never bodies or headers.
    text = str(exc) or "no detail"
    return f"{type(exc).__name__} ({text})"


def _request_id(response: httpx.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value: str | None = response.headers.get(name)
        if value:
            return value[:128]
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    # Seconds only (an HTTP date is ignored); isdigit alone admits "²" and the like.
    return float(value) if value.isascii() and value.isdigit() and len(value) <= 6 else None
