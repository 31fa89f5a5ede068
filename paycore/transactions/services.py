"""PaymentTransactionServices: payments through gateways, written ahead (DESIGN §5).

Every mutation (``authorize``, ``sale``, ``capture``, ``void``, ``refund``) goes:

1. write ahead: lock the payment, check idempotency, state and amounts, insert the
   transaction ``pending`` (`paycore.transactions.ledger.Ledger.begin`);
2. drive the plugin's exchange through the gateway driver, no database lock held;
3. record the outcome with the payment's new totals in one commit, then run hooks.

What a call returns is the `PaymentTransaction` as recorded; read its ``status``:

============================  =========================================================
``succeeded``                 done
``declined``                  the gateway refused (``decline_reason``); a result, not an error
``requires_action``           the customer must act: follow ``next_action``
``processing``                accepted; the final answer comes by webhook or reconciliation
``failed``                    definitely not done (``failure``: ``GatewayUnavailable`` …);
                              calling again with the same idempotency key sends it again
``unknown``                   sent, the outcome is not known: reconciliation finds out;
                              calling again with the same key asks the gateway; a
                              capture, void or refund the provider has no record of is
                              sent again only where it deduplicates by key
============================  =========================================================

Idempotency: every call has a key (give one to make retries safe; one is made up
otherwise). Same key and request: the recorded transaction, with no second gateway
call (a caller arriving while it is ``pending`` waits for it). Same key, another
request: `IdempotencyConflict`. The key sent to the provider is paycore's
transaction id. A new mutation while one is ``pending`` or ``unknown`` on the same
payment: `PaymentBusy`. Bad input raises `InvalidRequest` (or `InvalidAmount`,
`CurrencyMismatch`, `NotFound`), a forbidden state `StateError`, an operation the
gateway lacks `UnsupportedOperation`: then nothing is written and nothing is sent.

The logic lives once in `paycore.transactions.orchestration`, as generators of steps;
`PaymentTransactionServices` carries them out in the calling thread, and
`paycore.transactions.async_services.AsyncPaymentTransactionServices` on an event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from paycore.gateways.base import Gateway
from paycore.gateways.driver import GatewayDriver, Summarized
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

__all__ = ["Check", "EventResult", "PaymentTransactionServices"]

T = TypeVar("T")


class PaymentTransactionServices(Orchestration):
    """Payments through the configured gateways, written ahead; see the module docstring.

    ``gateways`` maps the configured names (``[gateways.NAME]``) to gateways, or to
    `GatewayDriver`\\ s when you want your own client, retries or hooks per gateway.
    ``hooks`` is a pluggy hook relay: the installed plugins' by default, None for
    none. Thread-safe: share one per process; `close` it at the end.
    """

    def __init__(
        self,
        store: Store,
        gateways: Mapping[str, Gateway | GatewayDriver],
        *,
        hooks: Any | None = ...,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.drivers: dict[str, GatewayDriver] = self._setup(
            store, gateways, driver_type=GatewayDriver, hooks=hooks, clock=clock
        )
        self._sleep = sleep

    def create_payment(
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
        """Record a new payment; nothing is sent until `authorize` or `sale`.

        Without ``gateway``, the ``paycore_select_gateway`` hook chooses among the
        gateways that take the currency (the first configured, if no hook answers).
        With ``idempotency_key``, calling again returns the same payment.
        """
        return self._carry_out(
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

    def authorize(
        self,
        payment_id: str,
        *,
        idempotency_key: str | None = None,
        checkout: CheckoutKind | str | None = None,
    ) -> PaymentTransaction:
        """Reserve the payment's amount; capture it later.

        ``checkout`` (``"hosted_page"``, ``"payment_link"``, ``"widget"``, as the gateway
        offers): the customer authorizes on the gateway's page instead. The transaction
        is then ``requires_action`` with the page as its ``next_action``; the gateway's
        webhook, `fetch_status` or reconciliation settle it once the customer paid.
        """
        return self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.AUTHORIZE,
                None,
                idempotency_key=idempotency_key,
                checkout=checkout,
            )
        )

    def sale(
        self,
        payment_id: str,
        *,
        idempotency_key: str | None = None,
        checkout: CheckoutKind | str | None = None,
    ) -> PaymentTransaction:
        """Authorize and capture the payment's amount in one step (``checkout``: on the
        gateway's page, as for `authorize`)."""
        return self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.SALE,
                None,
                idempotency_key=idempotency_key,
                checkout=checkout,
            )
        )

    def capture(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        final: bool = False,
        idempotency_key: str | None = None,
    ) -> PaymentTransaction:
        """Capture ``amount`` (all that is authorized by default) of an authorization.

        ``final`` releases what stays uncaptured. Several partial captures are allowed
        where the gateway declares them.
        """
        return self._carry_out(
            self._mutate(
                payment_id,
                TransactionType.CAPTURE,
                amount,
                idempotency_key=idempotency_key,
                final=final,
            )
        )

    def void(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentTransaction:
        """Release what the authorization still holds."""
        return self._carry_out(
            self._mutate(payment_id, TransactionType.VOID, None, idempotency_key=idempotency_key)
        )

    def refund(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentTransaction:
        """Refund ``amount`` (all that was captured and not refunded by default)."""
        return self._carry_out(
            self._mutate(
                payment_id, TransactionType.REFUND, amount, idempotency_key=idempotency_key
            )
        )

    def fetch_status(self, transaction_id: str) -> PaymentTransaction:
        """Ask the gateway about an unsettled transaction and record its answer.

        A settled transaction is returned as recorded, without a call.
        """
        return self._carry_out(self._fetch_status(transaction_id))

    def check(self, transaction_id: str, *, next_check_at: datetime | None = None) -> Check:
        """Like `fetch_status`, with what the gateway said; reconciliation's step.

        A transaction that stays unsettled is counted as checked and scheduled for
        ``next_check_at``.
        """
        return self._carry_out(self._check(transaction_id, next_check_at))

    def apply_event(self, gateway: str, event: GatewayEvent) -> EventResult:
        """Record a verified webhook event (from the gateway's ``handle_webhook``) once."""
        return self._carry_out(self._apply_event(gateway, event))

    def answer_check(self, gateway: str, check: PaymentCheck) -> WebhookReply:
        """The reply to a provider asking whether to take a payment (`PaymentCheck`).

        Accepted when the transaction it names is this gateway's, still waits for the
        customer, is for the amount asked and belongs to the payment named; the
        ``paycore_answer_payment_check`` hook may decide otherwise. Nothing is written.
        """
        return self._carry_out(self._answer_check(gateway, check))

    def get_payment(self, payment_id: str) -> Payment:
        check_id(payment_id, "payment_id")
        return self.ledger.payment(payment_id)

    def get_transaction(self, transaction_id: str) -> PaymentTransaction:
        check_id(transaction_id, "transaction_id")
        return self.ledger.transaction(transaction_id)

    def list_transactions(self, payment_id: str) -> tuple[PaymentTransaction, ...]:
        """The payment's transactions, oldest first."""
        check_id(payment_id, "payment_id")
        return self.ledger.transactions(payment_id)

    def payments_of(self, owner: str) -> tuple[Payment, ...]:
        """The payments of one owner (a checkout or an order id), oldest first."""
        check_owner(owner)
        return self.ledger.payments_of(owner)

    def close(self) -> None:
        """Close the gateways' HTTP clients and the store."""
        self.ledger.outbox.close()
        for driver in self.drivers.values():
            driver.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, step: RunStep) -> Summarized[Any]:
        driver = self.drivers[step.gateway]
        return driver.run_summarized(step.exchange(driver.gateway), operation=str(step.operation))

    def _gather(self, step: GatherStep) -> tuple[Any, ...]:
        futures: list[Future[Any]] = []
        for run in step.runs:
            future: Future[Any] = Future()
            # Daemon threads: a run still going at the deadline finishes on its own (its
            # driver's timeouts bound it) and never holds up the process's exit.
            threading.Thread(
                target=_settle, args=(future, self._run, run), daemon=True, name="paycore-gather"
            ).start()
            futures.append(future)
        wait(futures, timeout=step.timeout)
        return tuple(
            _gathered(future, run, step.timeout)
            for future, run in zip(futures, step.runs, strict=True)
        )

    def _carry_out(self, steps: Steps[T]) -> T:
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                if isinstance(step, DbStep):
                    value = step.call()
                elif isinstance(step, RunStep):
                    value = self._run(step)
                elif isinstance(step, GatherStep):
                    value = self._gather(step)
                else:
                    self._sleep(step.seconds)
            except Exception as exc:
                error = exc


def _settle(future: Future[Any], call: Callable[[RunStep], Any], run: RunStep) -> None:
    try:
        future.set_result(call(run))
    except BaseException as error:
        future.set_exception(error)


def _gathered(future: Future[Any], run: RunStep, timeout: float) -> Any:
    if not future.done():
        return not_in_time(run, timeout)
    error = future.exception()
    return future.result() if error is None else error
