"""Runs gateway exchanges over httpx: all of paycore's gateway I/O (DESIGN §4).

A plugin's operation yields requests; a driver sends each, feeds the response back,
and returns the operation's result. The driver owns:

- timeouts: the gateway's connect and read timeouts per attempt, and a total budget
  for the exchange, retries included, that bounds when attempts may start. A
  mutation is sent only with its whole read timeout still inside the budget (cutting
  its wait short would turn an answer on its way into an unknown outcome); otherwise
  it is not sent at all;
- the split of failures by *was it sent?*:

  ============================================  ====================================
  what happened                                 raised (once retries are spent)
  ============================================  ====================================
  connection refused, connect/pool timeout      `GatewayUnavailable` (not sent)
  429 Too Many Requests                         `GatewayUnavailable` (not processed)
  401 / 403                                     `GatewayAuthError`
  read/write timeout, reset, broken response    `OutcomeUnknown` for a mutation
  5xx                                           `OutcomeUnknown` for a mutation
  the plugin fails on an answer                 `OutcomeUnknown` after a mutation,
                                                else `GatewayProtocolError` (or the
                                                plugin's own paycore error)
  no budget left for a mutation's read timeout  `GatewayUnavailable` (not sent)
  ============================================  ====================================

  Once a mutation of the exchange may have reached the provider, every later failure
  is `OutcomeUnknown`: the operation may have happened.
- retries only where safe: anything not sent; reads; mutations the provider
  deduplicates (`RequestPolicy.idempotent`). Backoff grows per attempt, honours
  ``Retry-After``, and never runs past the total bound.
- cancellation (``asyncio`` or ``KeyboardInterrupt``) mid-request: recorded in the
  transcript, then re-raised untouched;
- a scrubbed `Transcript` of every exchange, handed to the ``paycore_gateway_exchange``
  hook and to the ``paycore.gateways`` logger (failures at WARNING, all at DEBUG),
  returned by ``run_recorded``, and attached to every `GatewayError` it raises. It is
  built only when one of those wants it, so a plain `run` pays nothing for it.

`GatewayDriver` is synchronous (`httpx.Client`), `AsyncGatewayDriver` asynchronous
(`httpx.AsyncClient`); both run the same plugin code.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeAlias, TypeVar

import httpx
from attrs import frozen

from paycore.errors import GatewayError, PaycoreError
from paycore.gateways.attempts import ClientClosed, ExchangeRun, RetryPolicy
from paycore.gateways.base import Exchange, Gateway
from paycore.gateways.scrub import Scrubber, Transcript
from paycore.gateways.transport import AsyncShardedTransport, ShardedTransport

__all__ = [
    "AsyncGatewayDriver",
    "GatewayDriver",
    "Recorded",
    "RetryPolicy",
    "Summarized",
    "default_hooks",
]

T = TypeVar("T")


@frozen
class _Wait:
    seconds: float


@frozen
class Recorded(Generic[T]):
    """A result with the scrubbed transcript of the exchange that produced it."""

    result: T
    transcript: Transcript


@frozen
class Summarized(Generic[T]):
    """A result with a one-line summary of its exchange (`Transcript.summary`'s form).

    Cheaper than a transcript: only URLs are scrubbed, since no header or body is kept.
    """

    result: T
    summary: str


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
        self.hooks = default_hooks() if hooks is ... else hooks

    def _conduct(
        self, exchange: Exchange[T], operation: str, *, keep: bool
    ) -> _Step[tuple[T, Transcript | None, ExchangeRun]]:
        run = ExchangeRun(
            self.gateway,
            operation,
            retry=self.retry,
            clock=self.clock,
            rng=self.rng,
            scrubber=self.scrubber,
            hooks=self.hooks,
        )
        response: httpx.Response | None = None
        while True:
            try:
                # The first step starts the exchange; a webhook's whole verification
                # may happen there, before any request.
                request = next(exchange) if response is None else exchange.send(response)
            except StopIteration as stop:
                return stop.value, run.finish("completed", keep=keep), run
            except Exception as exc:
                error = _plugin_failure(run, exc, response)
                if error is exc:
                    raise
                raise error from exc
            try:
                response = yield from self._attempts(run, request)
            except GatewayError as failed:
                exchange.close()
                failed.transcript = run.finish(type(failed).__name__, keep=True)
                raise
            except GeneratorExit:
                exchange.close()
                raise
            except BaseException as interrupted:
                # Cancelled or interrupted mid-exchange: leave a trace, then let it go.
                exchange.close()
                run.finish(f"interrupted ({type(interrupted).__name__})", keep=False)
                raise

    def _attempts(self, run: ExchangeRun, request: httpx.Request) -> _Step[httpx.Response]:
        attempt = 0
        while True:
            attempt += 1
            failure = run.prepare(request)
            if failure is None:
                started = time.perf_counter()
                try:
                    response = yield request
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    failure = run.classify_error(request, exc)
                    run.record(request, attempt, time.perf_counter() - started, failure=failure)
                    if not isinstance(exc, Exception):
                        raise  # cancellation, KeyboardInterrupt: recorded, never handled
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


def _plugin_failure(
    run: ExchangeRun, exc: Exception, response: httpx.Response | None
) -> PaycoreError:
    """The error to raise for a plugin that failed, with the exchange's transcript."""
    error = run.plugin_error(exc, response)
    transcript = run.finish(type(error).__name__, keep=isinstance(error, GatewayError))
    if isinstance(error, GatewayError) and error.transcript is None:
        error.transcript = transcript
    return error


def default_hooks() -> Any:
    """The installed plugins' hook relay (loaded on first use, to keep imports light)."""
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
        self.client = (
            client
            if client is not None
            else httpx.Client(follow_redirects=False, transport=ShardedTransport())
        )
        self._sleep = sleep

    def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; ``operation`` names it in transcripts.

        A `GatewayError` raised here carries the exchange's scrubbed ``transcript``.
        """
        return self._execute(self._conduct(exchange, operation, keep=False))[0]

    def run_recorded(self, exchange: Exchange[T], *, operation: str) -> Recorded[T]:
        """Like `run`, and return the scrubbed transcript with the result."""
        result, transcript, _ = self._execute(self._conduct(exchange, operation, keep=True))
        assert transcript is not None
        return Recorded(result, transcript)

    def run_summarized(self, exchange: Exchange[T], *, operation: str) -> Summarized[T]:
        """Like `run`, and return a one-line summary of the exchange with the result."""
        result, transcript, run = self._execute(self._conduct(exchange, operation, keep=False))
        return Summarized(result, run.summary() if transcript is None else transcript.summary())

    def _execute(self, steps: _Step[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Wait):
                    try:
                        self._sleep(step.seconds)
                    except BaseException as exc:
                        step = steps.throw(exc)  # interrupted while waiting: recorded
                    else:
                        step = steps.send(None)
                    continue
                try:
                    if self.client.is_closed:
                        raise ClientClosed
                    response = self.client.send(step)
                except BaseException as exc:
                    # The steps record it; errors are mapped, cancellation re-raised.
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
        self.client = (
            client
            if client is not None
            else httpx.AsyncClient(follow_redirects=False, transport=AsyncShardedTransport())
        )

    async def run(self, exchange: Exchange[T], *, operation: str) -> T:
        """Drive ``exchange`` to its result; see `GatewayDriver.run`."""
        return (await self._execute(self._conduct(exchange, operation, keep=False)))[0]

    async def run_recorded(self, exchange: Exchange[T], *, operation: str) -> Recorded[T]:
        """Like `run`, and return the scrubbed transcript with the result."""
        steps = self._conduct(exchange, operation, keep=True)
        result, transcript, _ = await self._execute(steps)
        assert transcript is not None
        return Recorded(result, transcript)

    async def run_summarized(self, exchange: Exchange[T], *, operation: str) -> Summarized[T]:
        """Like `run`, and return a one-line summary of the exchange with the result."""
        steps = self._conduct(exchange, operation, keep=False)
        result, transcript, run = await self._execute(steps)
        return Summarized(result, run.summary() if transcript is None else transcript.summary())

    async def _execute(self, steps: _Step[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Wait):
                    try:
                        await asyncio.sleep(step.seconds)
                    except BaseException as exc:
                        step = steps.throw(exc)  # cancelled while waiting: recorded
                    else:
                        step = steps.send(None)
                    continue
                try:
                    if self.client.is_closed:
                        raise ClientClosed
                    response = await self.client.send(step)
                except BaseException as exc:
                    # The steps record it; errors are mapped, cancellation re-raised.
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
