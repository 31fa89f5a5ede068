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
  hook and to the ``paycore.gateways`` logger (failures at WARNING, all at DEBUG),
  returned by ``run_recorded``, and attached to every `GatewayError` it raises. It is
  built only when one of those wants it, so a plain `run` pays nothing for it.

`GatewayDriver` is synchronous (`httpx.Client`), `AsyncGatewayDriver` asynchronous
(`httpx.AsyncClient`); both run the same plugin code.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeAlias, TypeVar

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

__all__ = ["AsyncGatewayDriver", "GatewayDriver", "Recorded", "RetryPolicy"]

T = TypeVar("T")

logger = logging.getLogger("paycore.gateways")
hook_logger = logging.getLogger("paycore.hooks")

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
        self.records: list[_RawRecord] = []
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
        if status in (401, 403):
            # Refused at the door: the provider did nothing with the request.
            return _Failure(
                _Kind.AUTH,
                "the provider rejected the credentials; check the gateway's config",
                http_status=status,
                request_id=request_id,
            )
        self._note_reached(request)
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
        # Kept raw and scrubbed only when a transcript is wanted: most runs need none.
        error = failure.message if failure is not None and response is None else None
        self.records.append(_RawRecord(attempt, request, response, elapsed, error))

    def finish(self, outcome: str, *, keep: bool) -> Transcript | None:
        """Build the transcript if anyone wants it: the caller, a hook or the log."""
        hooks = self.driver.hooks
        hooked = hooks is not None and bool(hooks.paycore_gateway_exchange.get_hookimpls())
        debug = logger.isEnabledFor(logging.DEBUG)
        failed = outcome != "completed"
        if not (keep or hooked or debug or failed):
            return None
        transcript = Transcript(
            gateway=self.gateway.name,
            operation=self.operation,
            records=tuple(raw.scrubbed(self.driver.scrubber) for raw in self.records),
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


@frozen
class _Wait:
    seconds: float


@frozen
class Recorded(Generic[T]):
    """A result with the scrubbed transcript of the exchange that produced it."""

    result: T
    transcript: Transcript


# What the shared step generator asks its executor to do: send a request, or wait.
_Step: TypeAlias = Generator["httpx.Request | _Wait", "httpx.Response | None", T]


class _DriverBase:
    """The decisions of the drivers, as a generator of steps their executors carry out."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        hooks: Any | None,
        retry: RetryPolicy | None,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self.gateway = gateway
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.scrubber = Scrubber(gateway.secret_values())
        self.hooks = _default_hooks() if hooks is ... else hooks

    def _conduct(
        self, exchange: Exchange[T], operation: str, *, keep: bool
    ) -> _Step[tuple[T, Transcript | None]]:
        run = _Run(self, operation)
        try:
            request = next(exchange)
        except StopIteration as stop:
            return stop.value, run.finish("completed", keep=keep)
        while True:
            try:
                response = yield from self._attempts(run, request)
            except GatewayError as failed:
                exchange.close()
                failed.transcript = run.finish(type(failed).__name__, keep=True)
                raise
            try:
                request = exchange.send(response)
            except StopIteration as stop:
                return stop.value, run.finish("completed", keep=keep)
            except Exception as exc:
                error = run.plugin_error(exc, response)
                if isinstance(error, GatewayError):
                    error.transcript = run.finish(type(error).__name__, keep=True)
                else:
                    run.finish(type(error).__name__, keep=False)
                if error is exc:
                    raise
                raise error from exc

    def _attempts(self, run: _Run, request: httpx.Request) -> _Step[httpx.Response]:
        attempt = 0
        while True:
            attempt += 1
            run.prepare(request)
            started = time.perf_counter()
            try:
                response = yield request
            except httpx.HTTPError as exc:
                failure = run.classify_error(request, exc)
                run.record(request, attempt, time.perf_counter() - started, failure=failure)
            else:
                assert response is not None
                run.record(request, attempt, time.perf_counter() - started, response=response)
                rejected = run.classify_response(request, response)
                if rejected is None:
                    return response
                failure = rejected
            delay = run.retry_delay(request, failure, attempt)
            if delay is None:
                raise run.error(failure) from failure.cause
            yield _Wait(delay)


def _default_hooks() -> Any:
    from paycore.plugins import hook_manager

    return hook_manager().hook


class GatewayDriver(_DriverBase):
    """Runs exchanges over a shared `httpx.Client`. Thread-safe; close it when done.

    ``hooks`` is a pluggy hook relay: the installed plugins' by default, ``None`` for
    none. ``clock``, ``sleep`` and ``rng`` are seams for tests.
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
        super().__init__(gateway, hooks=hooks, retry=retry, clock=clock, rng=rng)
        self._owns_client = client is None
        self.client = client if client is not None else httpx.Client(follow_redirects=False)
        self._sleep = sleep

    def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; ``operation`` names it in transcripts.

        A `GatewayError` raised here carries the exchange's scrubbed ``transcript``.
        """
        return self._execute(self._conduct(exchange, operation, keep=False))[0]

    def run_recorded(self, exchange: Exchange[T], *, operation: str) -> Recorded[T]:
        """Like `run`, and return the scrubbed transcript with the result."""
        steps: _Step[tuple[T, Transcript | None]] = self._conduct(exchange, operation, keep=True)
        result, transcript = self._execute(steps)
        assert transcript is not None
        return Recorded(result, transcript)

    def _execute(self, steps: _Step[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Wait):
                    self._sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    response = self.client.send(step)
                except httpx.HTTPError as exc:
                    step = steps.throw(exc)
                else:
                    step = steps.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

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
        super().__init__(gateway, hooks=hooks, retry=retry, clock=clock, rng=rng)
        self._owns_client = client is None
        self.client = client if client is not None else httpx.AsyncClient(follow_redirects=False)

    async def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; see `GatewayDriver.run`."""
        return (await self._execute(self._conduct(exchange, operation, keep=False)))[0]

    async def run_recorded(self, exchange: Exchange[T], *, operation: str) -> Recorded[T]:
        """Like `run`, and return the scrubbed transcript with the result."""
        steps: _Step[tuple[T, Transcript | None]] = self._conduct(exchange, operation, keep=True)
        result, transcript = await self._execute(steps)
        assert transcript is not None
        return Recorded(result, transcript)

    async def _execute(self, steps: _Step[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Wait):
                    await asyncio.sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    response = await self.client.send(step)
                except httpx.HTTPError as exc:
                    step = steps.throw(exc)
                else:
                    step = steps.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

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
