"""AsyncPaymentTransactionServices: the services for an event loop (FastAPI, Starlette …).

The same methods as `paycore.transactions.services.PaymentTransactionServices`, as
coroutines, with the same rules, results and errors: the orchestration is the one
written there, carried out here on the loop. Gateways are driven by
`AsyncGatewayDriver`\\ s; every database call (and the ``paycore_transaction_recorded``
and ``paycore_payment_status_changed`` hooks called after commit) runs in a worker
thread, so the ledger never blocks the loop.

Cancellation is never mistaken for a failure. A call cancelled while its request is
with the provider leaves the transaction ``pending``, exactly as a crash would:
`fetch_status`, the same call with the same idempotency key, or reconciliation
(`paycore.transactions.reconcile`) later records what the provider did. A database
call already running when the cancellation arrives is let finish (a thread cannot be
stopped) before the cancellation goes on, so nothing of a cancelled call still runs
once it has raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from paycore.gateways.base import Gateway
from paycore.gateways.driver import AsyncGatewayDriver, Summarized
from paycore.money import Money
from paycore.transactions.inputs import check_id, check_owner
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    GatewayEvent,
    PaymentCheck,
    PaymentMethod,
    TransactionType,
    WebhookReply,
)
from paycore.transactions.orchestration import (
    Check,
    DbStep,
    EventResult,
    GatherStep,
    Orchestration,
    RunStep,
    Steps,
    not_in_time,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.store import Store

__all__ = ["AsyncPaymentTransactionServices"]

T = TypeVar("T")


class AsyncPaymentTransactionServices(Orchestration):
    """`PaymentTransactionServices` for asyncio; see both modules' docstrings.

    ``gateways`` maps the configured names to gateways, or to `AsyncGatewayDriver`\\ s
    when you want your own client, retries or hooks per gateway. ``hooks`` is a pluggy
    hook relay: the installed plugins' by default, None for none. Share one per event
    loop (its HTTP clients belong to the loop that first used them); ``await``
    `aclose` at the end, or use ``async with``.
    """

    def __init__(
        self,
        store: Store,
        gateways: Mapping[str, Gateway | AsyncGatewayDriver],
        *,
        hooks: Any | None = ...,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.drivers: dict[str, AsyncGatewayDriver] = self._setup(
            store, gateways, driver_type=AsyncGatewayDriver, hooks=hooks, clock=clock
        )
        self._sleep = sleep

    async def create_payment(
        self,
        amount: Money,
        *,
        gateway: str | None = None,
        payment_method: PaymentMethod | None = None,
        customer: Customer | None = None,
        owner: str | None = None,
        description: str | None = None,
        return_url: str | None = None,
        notification_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Record a new payment; see `PaymentTransactionServices.create_payment`."""
        return await self._carry_out(
            self._create_payment(
                amount=amount,
                gateway=gateway,
                payment_method=payment_method,
                customer=customer,
                owner=owner,
                description=description,
                return_url=return_url,
                notification_url=notification_url,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    async def authorize(
        self,
        payment_id: str,
        *,
        idempotency_key: str | None = None,
        checkout: CheckoutKind | str | None = None,
    ) -> PaymentTransaction:
        """Reserve the payment's amount; see `PaymentTransactionServices.authorize`."""
        return await self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.AUTHORIZE,
                None,
                idempotency_key=idempotency_key,
                checkout=checkout,
            )
        )

    async def sale(
        self,
        payment_id: str,
        *,
        idempotency_key: str | None = None,
        checkout: CheckoutKind | str | None = None,
    ) -> PaymentTransaction:
        """Authorize and capture in one step; see `PaymentTransactionServices.sale`."""
        return await self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.SALE,
                None,
                idempotency_key=idempotency_key,
                checkout=checkout,
            )
        )

    async def capture(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        final: bool = False,
        idempotency_key: str | None = None,
    ) -> PaymentTransaction:
        """Capture (part of) an authorization; see `PaymentTransactionServices.capture`."""
        return await self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.CAPTURE,
                amount,
                idempotency_key=idempotency_key,
                final=final,
            )
        )

    async def void(
        self, payment_id: str, *, idempotency_key: str | None = None
    ) -> PaymentTransaction:
        """Release what the authorization holds; see `PaymentTransactionServices.void`."""
        return await self._carry_out(
            self._mutate(payment_id, TransactionType.VOID, None, idempotency_key=idempotency_key)
        )

    async def refund(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentTransaction:
        """Refund (part of) what was captured; see `PaymentTransactionServices.refund`."""
        return await self._carry_out(
            self._mutate(
                payment_id, TransactionType.REFUND, amount, idempotency_key=idempotency_key
            )
        )

    async def fetch_status(self, transaction_id: str) -> PaymentTransaction:
        """Ask the gateway about an unsettled transaction and record its answer; see
        `PaymentTransactionServices.fetch_status`."""
        return await self._carry_out(self._fetch_status(transaction_id))

    async def check(self, transaction_id: str, *, next_check_at: datetime | None = None) -> Check:
        """Ask about an unsettled transaction, with the answer; see
        `PaymentTransactionServices.check`."""
        return await self._carry_out(self._check(transaction_id, next_check_at))

    async def apply_event(self, gateway: str, event: GatewayEvent) -> EventResult:
        """Record a verified webhook event once; see `PaymentTransactionServices.apply_event`."""
        return await self._carry_out(self._apply_event(gateway, event))

    async def answer_check(self, gateway: str, check: PaymentCheck) -> WebhookReply:
        """The reply to a provider's `PaymentCheck`; see
        `PaymentTransactionServices.answer_check`."""
        return await self._carry_out(self._answer_check(gateway, check))

    async def get_payment(self, payment_id: str) -> Payment:
        """The payment as recorded; see `PaymentTransactionServices.get_payment`."""
        check_id(payment_id, "payment_id")
        return await _in_thread(lambda: self.ledger.payment(payment_id))

    async def get_transaction(self, transaction_id: str) -> PaymentTransaction:
        """The transaction as recorded; see `PaymentTransactionServices.get_transaction`."""
        check_id(transaction_id, "transaction_id")
        return await _in_thread(lambda: self.ledger.transaction(transaction_id))

    async def list_transactions(self, payment_id: str) -> tuple[PaymentTransaction, ...]:
        """The payment's transactions, oldest first; see
        `PaymentTransactionServices.list_transactions`."""
        check_id(payment_id, "payment_id")
        return await _in_thread(lambda: self.ledger.transactions(payment_id))

    async def payments_of(self, owner: str) -> tuple[Payment, ...]:
        """The payments of one owner, oldest first; see `PaymentTransactionServices.payments_of`."""
        check_owner(owner)
        return await _in_thread(lambda: self.ledger.payments_of(owner))

    async def aclose(self) -> None:
        """Close the gateways' HTTP clients and the store."""
        await _in_thread(self.ledger.outbox.close)
        for driver in self.drivers.values():
            await driver.aclose()
        await _in_thread(self.store.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, step: RunStep) -> Summarized[Any]:
        driver = self.drivers[step.gateway]
        return await driver.run_summarized(
            step.exchange(driver.gateway), operation=str(step.operation)
        )

    async def _gather(self, step: GatherStep) -> tuple[Any, ...]:
        if not step.runs:
            return ()
        tasks = [asyncio.ensure_future(self._run(run)) for run in step.runs]
        _, pending = await asyncio.wait(tasks, timeout=step.timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return tuple(
            not_in_time(run, step.timeout)
            if task in pending
            else (task.exception() or task.result())
            for task, run in zip(tasks, step.runs, strict=True)
        )

    async def _carry_out(self, steps: Steps[T]) -> T:
        """`PaymentTransactionServices._carry_out` on the loop.

        An error of a step goes back into the orchestration, which decides what it
        means; a cancellation (any `BaseException`) does not: the orchestration is
        closed where it stands and the cancellation goes on to the caller.
        """
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    step = steps.send(value) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                value, error = None, None
                try:
                    if isinstance(step, DbStep):
                        value = await _in_thread(step.call)
                    elif isinstance(step, RunStep):
                        value = await self._run(step)
                    elif isinstance(step, GatherStep):
                        value = await self._gather(step)
                    else:
                        await self._sleep(step.seconds)
                except Exception as exc:
                    error = exc
        finally:
            steps.close()


async def _in_thread(call: Callable[[], T]) -> T:
    """``call()`` in a worker thread; if cancelled, only once ``call`` has returned."""
    running = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        # The thread cannot be stopped: let the (short) database call commit or roll
        # back, so the caller's cancellation never overtakes its own write.
        await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # seen: an error here is the cancelled caller's no more
        raise
