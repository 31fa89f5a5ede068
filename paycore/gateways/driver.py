"""Runs gateway exchanges over httpx: all of paycore's gateway I/O (DESIGN §4).

A plugin's operation yields requests; a driver sends each, feeds the response back,
and returns the operation's result. The driver owns:

- timeouts: the gateway's connect and read timeouts per attempt, and a bound on the
  total time of the whole exchange, retries included;
- the split of failures by *was it sent?*:

  ============================================  ====================================
  what happened                                 raised (once retries are spent)
  ============================================  ====================================
  connection refused, connect/pool timeout      `GatewayUnavailable` (not sent)
  429 Too Many Requests                         `GatewayUnavailable` (not processed)
  401 / 403                                     `GatewayAuthError`
  read/write timeout, reset, broken response    `OutcomeUnknown` for a mutation
  5xx                                           `OutcomeUnknown` for a mutation
  a body the plugin cannot read                 `OutcomeUnknown` after a mutation,
                                                else `GatewayProtocolError`
  ============================================  ====================================

  Once a mutation of the exchange may have reached the provider, every later failure
  is `OutcomeUnknown`: the operation may have happened.
- retries only where safe: anything not sent; reads; mutations the provider
  deduplicates (`RequestPolicy.idempotent`). Backoff grows per attempt, honours
  ``Retry-After``, and never runs past the total bound.
- a scrubbed `Transcript` of every exchange, handed to the ``paycore_gateway_exchange``
  hook and to the ``paycore.gateways`` logger.

`GatewayDriver` is synchronous (`httpx.Client`), `AsyncGatewayDriver` asynchronous
(`httpx.AsyncClient`); both run the same plugin code.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayUnavailable,
    OutcomeUnknown,
    PaycoreError,
)
from paycore.gateways.base import Exchange, Gateway, RequestPolicy
from paycore.gateways.scrub import ExchangeRecord, Scrubber, Transcript

__all__ = ["AsyncGatewayDriver", "GatewayDriver", "RetryPolicy"]

T = TypeVar("T")

logger = logging.getLogger("paycore.gateways")

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_REQUEST_ID_HEADERS = ("request-id", "x-request-id", "x-correlation-id")


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
        base = (
            retry_after if retry_after is not None else self.backoff * self.factor ** (attempt - 1)
        )
        spread = 1 + self.jitter * (2 * rng.random() - 1)
        return min(self.max_backoff, max(0.0, base * spread))


class _Kind(enum.Enum):
    NOT_SENT = "not sent"
    NOT_PROCESSED = "not processed"  # the provider refused before processing (429)
    MAYBE_SENT = "maybe sent"  # sent, or partly sent; no usable answer
    AUTH = "credentials rejected"


@frozen
class _Failure:
    kind: _Kind
    message: str
    http_status: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    cause: BaseException | None = None


class _Run:
    """The decisions of one exchange, shared by the sync and async drivers."""

    def __init__(self, driver: _DriverBase, operation: str) -> None:
        self.driver = driver
        self.gateway = driver.gateway
        self.operation = operation
        self.started = driver.clock()
        self.deadline = self.started + self.gateway.timeouts.total
        self.records: list[ExchangeRecord] = []
        # True once a mutation of this exchange may have reached the provider.
        self.mutation_reached = False

    # -- before an attempt ---------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - self.driver.clock()

    def prepare(self, request: httpx.Request) -> None:
        timeouts = self.gateway.timeouts
        remaining = max(self.remaining(), 0.001)
        connect = min(timeouts.connect, remaining)
        read = min(timeouts.read, remaining)
        request.extensions["timeout"] = {
            "connect": connect,
            "read": read,
            "write": read,
            "pool": connect,
        }

    # -- after an attempt ----------------------------------------------------------

    def classify_error(self, request: httpx.Request, exc: httpx.HTTPError) -> _Failure:
        if isinstance(exc, _NOT_SENT):
            return _Failure(
                _Kind.NOT_SENT, f"could not reach the provider: {_describe(exc)}", cause=exc
            )
        if isinstance(exc, httpx.TimeoutException):
            message = f"no answer within the timeout: {_describe(exc)}"
        else:
            message = f"the connection broke before a complete answer: {_describe(exc)}"
        self._note_reached(request)
        return _Failure(_Kind.MAYBE_SENT, message, cause=exc)

    def classify_response(
        self, request: httpx.Request, response: httpx.Response
    ) -> _Failure | None:
        status = response.status_code
        request_id = _request_id(response)
        if status == 429:
            return _Failure(
                _Kind.NOT_PROCESSED,
                "the provider is rate limiting requests",
                http_status=status,
                request_id=request_id,
                retry_after=_retry_after(response),
            )
        self._note_reached(request)
        if status in (401, 403):
            return _Failure(
                _Kind.AUTH,
                "the provider rejected the credentials; check the gateway's config",
                http_status=status,
                request_id=request_id,
            )
        if status >= 500:
            return _Failure(
                _Kind.MAYBE_SENT,
                "the provider failed while handling the request",
                http_status=status,
                request_id=request_id,
                retry_after=_retry_after(response) if status == 503 else None,
            )
        return None

    def _note_reached(self, request: httpx.Request) -> None:
        if RequestPolicy.of(request).mutation:
            self.mutation_reached = True

    def retry_delay(self, request: httpx.Request, failure: _Failure, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if failure.kind is _Kind.AUTH or attempt >= self.driver.retry.max_attempts:
            return None
        policy = RequestPolicy.of(request)
        if failure.kind is _Kind.MAYBE_SENT and not policy.idempotent:
            return None
        delay = self.driver.retry.delay(attempt, failure.retry_after, self.driver.rng)
        return delay if delay < self.remaining() else None

    def error(self, failure: _Failure) -> GatewayError:
        """The exception to raise for a failure no retry will mend."""
        details: dict[str, Any] = {
            "gateway": self.gateway.name,
            "http_status": failure.http_status,
            "request_id": failure.request_id,
        }
        message = f"{self.operation}: {failure.message}"
        if self.mutation_reached:
            return OutcomeUnknown(
                f"{message}; the operation may have happened: reconcile before retrying",
                **details,
            )
        if failure.kind is _Kind.AUTH:
            return GatewayAuthError(message, **details)
        return GatewayUnavailable(f"{message}; nothing was done, safe to retry", **details)

    def plugin_error(self, exc: Exception, response: httpx.Response) -> PaycoreError:
        """What to raise when the plugin fails on a response."""
        if isinstance(exc, GatewayError) and not isinstance(exc, GatewayProtocolError):
            return exc
        if isinstance(exc, PaycoreError) and not isinstance(exc, GatewayError):
            return exc
        reason = str(exc) if isinstance(exc, GatewayProtocolError) else type(exc).__name__
        details: dict[str, Any] = {
            "gateway": self.gateway.name,
            "http_status": response.status_code,
            "request_id": _request_id(response),
        }
        if self.mutation_reached:
            return OutcomeUnknown(
                f"{self.operation}: the answer could not be read ({reason}); "
                "the operation may have happened: reconcile before retrying",
                **details,
            )
        return GatewayProtocolError(
            f"{self.operation}: the answer could not be read ({reason})", **details
        )

    # -- transcript ----------------------------------------------------------------

    def record(
        self,
        request: httpx.Request,
        attempt: int,
        elapsed: float,
        response: httpx.Response | None = None,
        failure: _Failure | None = None,
    ) -> None:
        scrub = self.driver.scrubber
        self.records.append(
            ExchangeRecord(
                attempt=attempt,
                method=request.method,
                url=scrub.text(str(request.url)),
                request_headers=scrub.headers(request.headers),
                request_body=scrub.body(request.content),
                status_code=None if response is None else response.status_code,
                response_headers=() if response is None else scrub.headers(response.headers),
                response_body=None if response is None else scrub.body(response.content),
                elapsed_ms=elapsed * 1000,
                error=None if failure is None or response is not None else failure.message,
            )
        )

    def finish(self, outcome: str) -> Transcript:
        transcript = Transcript(
            gateway=self.gateway.name,
            operation=self.operation,
            records=tuple(self.records),
            outcome=outcome,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s: %s", self.gateway.name, self.operation, outcome, transcript.summary()
            )
        elif outcome != "completed":
            logger.warning(
                "%s %s %s: %s", self.gateway.name, self.operation, outcome, transcript.summary()
            )
        hooks = self.driver.hooks
        if hooks is not None:
            hooks.paycore_gateway_exchange(
                gateway=self.gateway.name, operation=self.operation, transcript=transcript
            )
        return transcript


class _DriverBase:
    def __init__(
        self,
        gateway: Gateway,
        *,
        hooks: Any | None,
        retry: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self.gateway = gateway
        self.retry = retry
        self.clock = clock
        self.rng = rng or random.Random()
        self.scrubber = Scrubber(gateway.secret_values())
        self.hooks = hooks
        self.last_transcript: Transcript | None = None

    def _start(self, operation: str) -> _Run:
        return _Run(self, operation)

    def _conclude(self, run: _Run, outcome: str) -> None:
        self.last_transcript = run.finish(outcome)


def _default_hooks() -> Any:
    from paycore.plugins import hook_manager

    return hook_manager().hook


class GatewayDriver(_DriverBase):
    """Runs exchanges over a shared `httpx.Client`. Thread-safe; close it when done.

    ``hooks`` is a pluggy hook relay (the installed plugins' by default, ``None`` for
    none).
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        client: httpx.Client | None = None,
        hooks: Any | None = ...,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            gateway,
            hooks=_default_hooks() if hooks is ... else hooks,
            retry=retry or RetryPolicy(),
            clock=clock,
            rng=rng,
        )
        self._owns_client = client is None
        self.client = client if client is not None else httpx.Client(follow_redirects=False)
        self._sleep = sleep

    def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; ``operation`` names it in transcripts."""
        run = self._start(operation)
        try:
            request = next(exchange)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        while True:
            try:
                response = self._send(run, request)
            except GatewayError as exc:
                exchange.close()
                self._conclude(run, type(exc).__name__)
                raise
            try:
                request = exchange.send(response)
            except StopIteration as stop:
                self._conclude(run, "completed")
                return stop.value  # type: ignore[no-any-return]
            except Exception as exc:
                error = run.plugin_error(exc, response)
                self._conclude(run, type(error).__name__)
                if error is exc:
                    raise
                raise error from exc

    def _send(self, run: _Run, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            run.prepare(request)
            started = time.perf_counter()
            try:
                response = self.client.send(request)
            except httpx.HTTPError as exc:
                failure = run.classify_error(request, exc)
                run.record(request, attempt, time.perf_counter() - started, failure=failure)
            else:
                run.record(request, attempt, time.perf_counter() - started, response=response)
                rejected = run.classify_response(request, response)
                if rejected is None:
                    return response
                failure = rejected
            delay = run.retry_delay(request, failure, attempt)
            if delay is None:
                raise run.error(failure) from failure.cause
            self._sleep(delay)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncGatewayDriver(_DriverBase):
    """Runs exchanges over a shared `httpx.AsyncClient`; the async twin of `GatewayDriver`."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        client: httpx.AsyncClient | None = None,
        hooks: Any | None = ...,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            gateway,
            hooks=_default_hooks() if hooks is ... else hooks,
            retry=retry or RetryPolicy(),
            clock=clock,
            rng=rng,
        )
        self._owns_client = client is None
        self.client = client if client is not None else httpx.AsyncClient(follow_redirects=False)

    async def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; ``operation`` names it in transcripts."""
        run = self._start(operation)
        try:
            request = next(exchange)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        while True:
            try:
                response = await self._send(run, request)
            except GatewayError as exc:
                exchange.close()
                self._conclude(run, type(exc).__name__)
                raise
            try:
                request = exchange.send(response)
            except StopIteration as stop:
                self._conclude(run, "completed")
                return stop.value  # type: ignore[no-any-return]
            except Exception as exc:
                error = run.plugin_error(exc, response)
                self._conclude(run, type(error).__name__)
                if error is exc:
                    raise
                raise error from exc

    async def _send(self, run: _Run, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            run.prepare(request)
            started = time.perf_counter()
            try:
                response = await self.client.send(request)
            except httpx.HTTPError as exc:
                failure = run.classify_error(request, exc)
                run.record(request, attempt, time.perf_counter() - started, failure=failure)
            else:
                run.record(request, attempt, time.perf_counter() - started, response=response)
                rejected = run.classify_response(request, response)
                if rejected is None:
                    return response
                failure = rejected
            delay = run.retry_delay(request, failure, attempt)
            if delay is None:
                raise run.error(failure) from failure.cause
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _describe(exc: httpx.HTTPError) -> str:
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
    return float(value) if value.isdigit() else None
