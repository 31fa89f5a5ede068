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
                              calling again with the same key asks the gateway, never resends
============================  =========================================================

Idempotency: every call has a key (give one to make retries safe; one is made up
otherwise). Same key and request: the recorded transaction, with no second gateway
call (a caller arriving while it is ``pending`` waits for it). Same key, another
request: `IdempotencyConflict`. The key sent to the provider is paycore's
transaction id. A new mutation while one is ``pending`` or ``unknown`` on the same
payment: `PaymentBusy`. Bad input raises `InvalidRequest` (or `InvalidAmount`,
`CurrencyMismatch`, `NotFound`), a forbidden state `StateError`, an operation the
gateway lacks `UnsupportedOperation`: then nothing is written and nothing is sent.

The orchestration is written once, as generators of steps (database call, exchange,
pause); `PaymentTransactionServices` carries them out in the calling thread, and
`paycore.transactions.async_services.AsyncPaymentTransactionServices` on an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace, TracebackType
from typing import Any, Self, TypeAlias, TypeVar

from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayError,
    GatewayUnavailable,
    InvalidAmount,
    InvalidRequest,
    PaycoreError,
    PluginError,
)
from paycore.gateways.base import Exchange, Gateway, Operation
from paycore.gateways.driver import GatewayDriver, Recorded
from paycore.money import Money
from paycore.transactions.ledger import (
    SETTLEABLE,
    Begun,
    Committed,
    Ledger,
    Settlement,
    request_for,
    utc_now,
)
from paycore.transactions.model import (
    Customer,
    DeclineReason,
    GatewayEvent,
    GatewayResult,
    PaymentMethod,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import UNRESOLVED, Payment, PaymentTransaction
from paycore.transactions.store import Store

__all__ = ["Check", "EventResult", "PaymentTransactionServices"]

T = TypeVar("T")

# After a transaction's exchange budget, one more margin before "the provider has no
# record of it" is believed: clocks and queues are not exact.
NOT_FOUND_MARGIN = timedelta(seconds=30)
# How long a caller waits for someone else's pending transaction with its key, beyond
# the gateway's total timeout.
WAIT_MARGIN = 5.0


@frozen
class Check:
    """What asking the gateway about one unsettled transaction gave.

    ``transaction`` is as recorded afterwards. ``asked`` says whether the gateway was
    asked; ``answer`` is what it said, ``error`` why asking failed, ``note`` a line for
    reports when the transaction stays unsettled.
    """

    transaction: PaymentTransaction
    asked: bool
    answer: GatewayResult | None = None
    error: PaycoreError | None = None
    note: str | None = None


@frozen
class EventResult:
    """What `apply_event` did: ``disposition`` is ``"applied"``, ``"ignored"`` (the
    transaction was settled already: a late or duplicate event), ``"duplicate"`` (this
    event id was stored before) or ``"unmatched"`` (no transaction of the ledger)."""

    disposition: str
    payment: Payment | None = None
    transaction: PaymentTransaction | None = None


# -- steps: what the orchestration asks its runner to do ---------------------------------


@frozen
class _Db:
    call: Callable[[], Any]


@frozen
class _Run:
    gateway: str
    exchange: Callable[[Gateway], Exchange[Any]]
    operation: str


@frozen
class _Pause:
    seconds: float


_Step: TypeAlias = Generator["_Db | _Run | _Pause", Any, T]


class _Orchestration:
    """The services' logic as step generators, shared by the sync and async facades."""

    ledger: Ledger
    gateways: Mapping[str, Gateway]

    def _setup(
        self,
        store: Store,
        gateways: Mapping[str, Gateway],
        *,
        hooks: Any | None,
        clock: Callable[[], datetime],
    ) -> None:
        if not gateways:
            raise InvalidRequest("configure at least one gateway")
        self.store = store
        self.gateways = dict(gateways)
        self.hooks = _default_hooks() if hooks is ... else hooks
        self.ledger = Ledger(store, self.gateways, hooks=self.hooks, clock=clock)
        self.clock = clock

    # -- payments ------------------------------------------------------------------------

    def _create_payment(
        self,
        *,
        amount: Money,
        gateway: str | None,
        payment_method: PaymentMethod | None,
        customer: Customer | None,
        owner: str | None,
        description: str | None,
        return_url: str | None,
        notification_url: str | None,
        metadata: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> _Step[Payment]:
        _check_payment_input(amount, payment_method, customer, owner, metadata, idempotency_key)
        name = self._choose_gateway(gateway, amount, payment_method, customer, owner, metadata)
        payment: Payment = yield _Db(
            lambda: self.ledger.create_payment(
                gateway=name,
                amount=amount,
                payment_method=payment_method,
                customer=customer,
                owner=owner,
                description=description,
                return_url=return_url,
                notification_url=notification_url,
                metadata=dict(metadata or {}),
                idempotency_key=idempotency_key,
            )
        )
        return payment

    def _choose_gateway(
        self,
        gateway: str | None,
        amount: Money,
        payment_method: PaymentMethod | None,
        customer: Customer | None,
        owner: str | None,
        metadata: Mapping[str, str] | None,
    ) -> str:
        if gateway is not None:
            chosen = self.gateways.get(gateway) if isinstance(gateway, str) else None
            if chosen is None:
                known = ", ".join(sorted(self.gateways))
                raise InvalidRequest(f"no gateway {str(gateway)[:64]!r} is configured ({known})")
            if not chosen.capabilities.supports_currency(amount.currency.code):
                raise InvalidRequest(f"gateway {gateway!r} does not take {amount.currency}")
            return gateway
        candidates = [
            name
            for name, candidate in self.gateways.items()
            if candidate.capabilities.supports_currency(amount.currency.code)
            and (
                candidate.capabilities.supports(Operation.AUTHORIZE)
                or candidate.capabilities.supports(Operation.SALE)
            )
        ]
        if not candidates:
            raise InvalidRequest(f"no configured gateway takes {amount.currency}")
        choice = None
        if self.hooks is not None:
            choice = self.hooks.paycore_select_gateway(
                request=SimpleNamespace(
                    amount=amount,
                    payment_method=payment_method,
                    customer=customer,
                    order_reference=owner,
                    metadata=dict(metadata or {}),
                ),
                candidates=tuple(candidates),
            )
        if choice is None:
            return candidates[0]
        if choice not in candidates:
            raise PluginError(
                f"paycore_select_gateway chose {str(choice)[:64]!r}, which is not one of "
                f"{', '.join(candidates)}"
            )
        return str(choice)

    # -- mutations -----------------------------------------------------------------------

    def _mutate(
        self,
        payment_id: str,
        kind: TransactionType,
        amount: Money | None,
        *,
        idempotency_key: str | None,
        final: bool = False,
    ) -> _Step[PaymentTransaction]:
        _check_id(payment_id, "payment_id")
        begun: Begun = yield _Db(
            lambda: self.ledger.begin(
                payment_id, kind, amount, idempotency_key=idempotency_key, final=final
            )
        )
        if begun.action == "replay":
            return begun.transaction
        if begun.action == "wait":
            return (yield from self._wait_for(begun.payment, begun.transaction))
        if begun.action == "resolve":
            return (yield from self._resolve(begun.transaction)).transaction
        transaction: PaymentTransaction = begun.transaction
        request = begun.request
        assert request is not None
        try:
            recorded: Recorded[Any] = yield _Run(
                begun.payment.gateway, lambda gateway: getattr(gateway, kind.value)(request), kind
            )
        except (GatewayUnavailable, GatewayAuthError) as error:
            settlement = _failure(TransactionStatus.FAILED, error)
        except GatewayError as error:
            settlement = _failure(TransactionStatus.UNKNOWN, error)
        except PaycoreError as error:
            # The plugin refused before sending (bad input for this gateway).
            refused = _failure(TransactionStatus.FAILED, error)
            committed = yield _Db(lambda: self.ledger.record(transaction.id, refused))
            yield _Db(lambda: self.ledger.outbox.deliver(committed))
            raise
        else:
            settlement = Settlement.from_result(
                recorded.result, exchange=recorded.transcript.summary()
            )
        recorded_outcome: Committed = yield _Db(
            lambda: self.ledger.record(transaction.id, settlement)
        )
        yield _Db(lambda: self.ledger.outbox.deliver(recorded_outcome))
        return recorded_outcome.transaction

    def _wait_for(
        self, payment: Payment, transaction: PaymentTransaction
    ) -> _Step[PaymentTransaction]:
        """Someone is sending the key's transaction: wait for its outcome, never resend."""
        # The sender's budget runs from when it wrote the transaction (a failed one sent
        # again is rewritten): a retry long after a crash asks the gateway at once.
        budget = self._budget(payment.gateway).total_seconds() + WAIT_MARGIN
        elapsed = (self.clock() - transaction.updated_at).total_seconds()
        deadline = time.monotonic() + max(0.0, min(budget, budget - elapsed))
        pause = 0.005
        while transaction.status is TransactionStatus.PENDING and time.monotonic() < deadline:
            yield _Pause(pause)
            pause = min(pause * 2, 0.2)
            transaction = yield _Db(partial(self.ledger.transaction, transaction.id))
        if transaction.status is TransactionStatus.PENDING:
            # Its sender is gone (or very late): ask the gateway what happened.
            return (yield from self._resolve(transaction)).transaction
        return transaction

    def _resolve(
        self, transaction: PaymentTransaction, *, next_check_at: datetime | None = None
    ) -> _Step[Check]:
        """Ask the gateway about an unsettled transaction and record what it says.

        What stays unsettled is counted as checked, next to be checked at
        ``next_check_at`` (reconciliation's schedule; None: whenever it is next run).
        """
        if transaction.status not in SETTLEABLE:
            return Check(transaction, asked=False)
        payment, transaction = yield _Db(
            lambda: self.ledger.payment_and_transaction(transaction.id)
        )
        gateway = self.gateways.get(payment.gateway)
        if gateway is None or not gateway.capabilities.supports(Operation.FETCH_STATUS):
            why = "its gateway is not configured here or cannot fetch a status"
            return (yield from self._unsettled(transaction, next_check_at, asked=False, note=why))
        request = request_for(payment, transaction)
        try:
            recorded: Recorded[Any] = yield _Run(
                payment.gateway,
                lambda gateway: gateway.fetch_status(request),
                TransactionType.FETCH_STATUS,
            )
        except PaycoreError as error:
            return (
                yield from self._unsettled(
                    transaction, next_check_at, asked=True, note=_one_line(error), error=error
                )
            )
        result = recorded.result
        settlement = Settlement.from_result(result, exchange=recorded.transcript.summary())
        if result.decline_reason is DeclineReason.NOT_FOUND:
            settled_after = transaction.created_at + self._budget(payment.gateway)
            if self.clock() < settled_after + NOT_FOUND_MARGIN:
                # An attempt may still be on its way to the provider: not yet.
                why = "the provider has no record of it yet; an attempt may still be on its way"
                return (
                    yield from self._unsettled(
                        transaction, next_check_at, asked=True, note=why, answer=result
                    )
                )
            settlement = _not_found(settlement)
        committed: Committed = yield _Db(
            lambda: self.ledger.record(transaction.id, settlement, expected=SETTLEABLE)
        )
        if committed.changed:
            yield _Db(lambda: self.ledger.outbox.deliver(committed))
        if committed.changed and committed.transaction.status not in UNRESOLVED:
            return Check(committed.transaction, asked=True, answer=result)
        # Nothing settled (or only unknown -> processing): look again on schedule.
        return (
            yield from self._unsettled(
                committed.transaction,
                next_check_at,
                asked=True,
                note=f"the provider says {result.provider_status or result.outcome}",
                answer=result,
            )
        )

    def _unsettled(
        self,
        transaction: PaymentTransaction,
        next_check_at: datetime | None,
        *,
        asked: bool,
        note: str,
        answer: GatewayResult | None = None,
        error: PaycoreError | None = None,
    ) -> _Step[Check]:
        checked: PaymentTransaction = yield _Db(
            lambda: self.ledger.note_check(transaction.id, next_check_at=next_check_at)
        )
        return Check(checked, asked=asked, answer=answer, error=error, note=note)

    def _fetch_status(self, transaction_id: str) -> _Step[PaymentTransaction]:
        _check_id(transaction_id, "transaction_id")
        transaction: PaymentTransaction = yield _Db(lambda: self.ledger.transaction(transaction_id))
        return (yield from self._resolve(transaction)).transaction

    def _check(self, transaction_id: str, next_check_at: datetime | None) -> _Step[Check]:
        _check_id(transaction_id, "transaction_id")
        transaction: PaymentTransaction = yield _Db(lambda: self.ledger.transaction(transaction_id))
        return (yield from self._resolve(transaction, next_check_at=next_check_at))

    def _apply_event(self, gateway: str, event: GatewayEvent) -> _Step[EventResult]:
        if gateway not in self.gateways:
            raise InvalidRequest(f"no gateway {str(gateway)[:64]!r} is configured")
        if not isinstance(event, GatewayEvent):
            raise InvalidRequest("apply_event takes a GatewayEvent from the gateway's webhook")
        disposition, committed = yield _Db(lambda: self.ledger.apply_event(gateway, event))
        if committed is None:
            return EventResult(disposition)
        yield _Db(lambda: self.ledger.outbox.deliver(committed))
        return EventResult(disposition, committed.payment, committed.transaction)

    def _budget(self, gateway: str) -> timedelta:
        configured = self.gateways.get(gateway)
        seconds = 60.0 if configured is None else configured.config.timeouts.total
        return timedelta(seconds=seconds)


class PaymentTransactionServices(_Orchestration):
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
        plain = {name: _gateway_of(value) for name, value in gateways.items()}
        self._setup(store, plain, hooks=hooks, clock=clock)
        self.drivers = {
            name: value
            if isinstance(value, GatewayDriver)
            else GatewayDriver(value, hooks=self.hooks)
            for name, value in gateways.items()
        }
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Any, *, store: Store | None = None, **options: Any) -> Self:
        """Services for a `paycore.config.Settings`: its database and gateways."""
        from paycore.config import build_gateways

        gateways = build_gateways(settings)
        return cls(store or Store.connect(settings.database_url), gateways, **options)

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
        self, payment_id: str, *, idempotency_key: str | None = None
    ) -> PaymentTransaction:
        """Reserve the payment's amount; capture it later."""
        return self._carry_out(
            self._mutate(
                payment_id, TransactionType.AUTHORIZE, None, idempotency_key=idempotency_key
            )
        )

    def sale(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentTransaction:
        """Authorize and capture the payment's amount in one step."""
        return self._carry_out(
            self._mutate(payment_id, TransactionType.SALE, None, idempotency_key=idempotency_key)
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

    def get_payment(self, payment_id: str) -> Payment:
        _check_id(payment_id, "payment_id")
        return self.ledger.payment(payment_id)

    def get_transaction(self, transaction_id: str) -> PaymentTransaction:
        _check_id(transaction_id, "transaction_id")
        return self.ledger.transaction(transaction_id)

    def list_transactions(self, payment_id: str) -> tuple[PaymentTransaction, ...]:
        """The payment's transactions, oldest first."""
        _check_id(payment_id, "payment_id")
        return self.ledger.transactions(payment_id)

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

    def _carry_out(self, steps: _Step[T]) -> T:
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                if isinstance(step, _Db):
                    value = step.call()
                elif isinstance(step, _Run):
                    driver = self.drivers[step.gateway]
                    value = driver.run_recorded(
                        step.exchange(driver.gateway), operation=str(step.operation)
                    )
                else:
                    self._sleep(step.seconds)
            except Exception as exc:
                error = exc


def _gateway_of(value: Gateway | GatewayDriver) -> Gateway:
    if isinstance(value, GatewayDriver):
        return value.gateway
    if isinstance(value, Gateway):
        return value
    raise InvalidRequest(f"a gateway or GatewayDriver was expected, not {type(value).__name__}")


def _default_hooks() -> Any:
    from paycore.plugins import hook_manager

    return hook_manager().hook


def _failure(status: TransactionStatus, error: PaycoreError) -> Settlement:
    transcript = error.transcript if isinstance(error, GatewayError) else None
    return Settlement(
        status=status,
        failure=type(error).__name__,
        message=str(error)[:1000],
        exchange=None if transcript is None else transcript.summary(),
    )


def _not_found(settlement: Settlement) -> Settlement:
    # No record at the provider, and nothing can still be on its way: never happened.
    return Settlement(
        status=TransactionStatus.FAILED,
        failure="NotFound",
        message=settlement.message or "the provider has no record of this transaction",
        exchange=settlement.exchange,
    )


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:300]}"


def _check_id(value: Any, name: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidRequest(f"{name} must be a paycore id (a string such as 'pay_…')")


def _check_payment_input(
    amount: Any,
    payment_method: Any,
    customer: Any,
    owner: Any,
    metadata: Any,
    idempotency_key: Any,
) -> None:
    if not isinstance(amount, Money):
        raise InvalidAmount(
            f"amount must be Money (e.g. Money.parse('10.00', 'USD')), not {type(amount).__name__}"
        )
    if not amount.is_positive():
        raise InvalidAmount(f"amount must be positive, got {amount}")
    if payment_method is not None and not isinstance(payment_method, PaymentMethod):
        raise InvalidRequest("payment_method must be a PaymentMethod")
    if customer is not None and not isinstance(customer, Customer):
        raise InvalidRequest("customer must be a Customer")
    if owner is not None and (not isinstance(owner, str) or not 0 < len(owner) <= 255):
        raise InvalidRequest("owner must be a string of 1 to 255 characters")
    if metadata is not None and not (
        isinstance(metadata, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise InvalidRequest("metadata must map strings to strings")
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255
    ):
        raise InvalidRequest("idempotency_key must be 1 to 255 characters")
