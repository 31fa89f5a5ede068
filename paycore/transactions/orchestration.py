"""The services' logic, written once as generators of steps (DESIGN §5).

Each operation of the services is a generator that yields steps: `DbStep` (a call
into the ledger, `paycore.transactions.ledger.Ledger`), `RunStep` (a gateway exchange,
through a driver) and `PauseStep` (wait). It receives each step's result, or has the
step's exception thrown into it, exactly like a plugin's exchange receives responses.
`paycore.transactions.services.PaymentTransactionServices` carries the steps out in the
calling thread; `paycore.transactions.async_services.AsyncPaymentTransactionServices`
on an event loop, with database calls in worker threads. So the sync and async
facades cannot drift apart: there is one orchestration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any, Self, TypeAlias, TypeVar

from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayError,
    GatewayRefused,
    GatewayUnavailable,
    InvalidRequest,
    NotFound,
    PaycoreError,
    PluginError,
)
from paycore.gateways.base import Exchange, Gateway, Operation
from paycore.gateways.driver import Summarized, default_hooks
from paycore.money import Money
from paycore.transactions.inputs import check_id, check_payment_input
from paycore.transactions.ledger import (
    SETTLEABLE,
    Begun,
    Committed,
    Ledger,
    Settlement,
    request_for,
)
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    Customer,
    DeclineReason,
    GatewayEvent,
    GatewayResult,
    Outcome,
    PaymentCheck,
    PaymentMethod,
    PaymentRequest,
    TransactionStatus,
    TransactionType,
    WebhookReply,
    _member,
)
from paycore.transactions.records import UNRESOLVED, Payment, PaymentTransaction
from paycore.transactions.states import CREATING
from paycore.transactions.store import Store

__all__ = [
    "Check",
    "DbStep",
    "EventResult",
    "GatherStep",
    "Orchestration",
    "PauseStep",
    "RunStep",
    "Steps",
]

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
    event id was stored before), ``"unmatched"`` (no transaction of the ledger) or
    ``"mismatch"`` (it reports another currency than its transaction's: not applied)."""

    disposition: str
    payment: Payment | None = None
    transaction: PaymentTransaction | None = None


# -- steps: what the orchestration asks its runner to do ---------------------------------


@frozen
class DbStep:
    call: Callable[[], Any]


@frozen
class RunStep:
    gateway: str
    exchange: Callable[[Gateway], Exchange[Any]]
    operation: str


@frozen
class PauseStep:
    seconds: float


@frozen
class GatherStep:
    """Run several exchanges at once, waiting at most ``timeout`` seconds for them.

    The runner answers with one item per run, in order: its `Summarized` result, or
    the exception it raised (`GatewayUnavailable` for one still running at the
    deadline, which is left to finish on its own).
    """

    runs: tuple[RunStep, ...]
    timeout: float


Steps: TypeAlias = Generator["DbStep | RunStep | PauseStep | GatherStep", Any, T]

# A transaction a provider may still ask the merchant about before taking the money.
WAITING_FOR_THE_CUSTOMER = frozenset(
    {TransactionStatus.REQUIRES_ACTION, TransactionStatus.PROCESSING}
)


class Orchestration:
    """The services' logic as step generators, shared by the sync and async facades."""

    ledger: Ledger
    gateways: Mapping[str, Gateway]

    def _setup(
        self,
        store: Store,
        gateways: Mapping[str, Any],
        *,
        driver_type: type[Any],
        hooks: Any | None,
        clock: Callable[[], datetime],
    ) -> dict[str, Any]:
        """Set up the shared state; returns a ``driver_type`` driver per gateway.

        ``gateways`` maps names to gateways, or to drivers of ``driver_type`` already
        built (your own client, retries or hooks).
        """
        if not gateways:
            raise InvalidRequest("configure at least one gateway")
        plain = {name: _gateway_of(value, driver_type) for name, value in gateways.items()}
        self.store = store
        self.gateways = plain
        self.hooks = default_hooks() if hooks is ... else hooks
        self.ledger = Ledger(store, self.gateways, hooks=self.hooks, clock=clock)
        self.clock = clock
        return {
            name: value if isinstance(value, driver_type) else driver_type(value, hooks=self.hooks)
            for name, value in gateways.items()
        }

    @classmethod
    def from_settings(cls, settings: Any, *, store: Store | None = None, **options: Any) -> Self:
        """Services for a `paycore.config.Settings`: its database and gateways."""
        from paycore.config import build_gateways

        gateways = build_gateways(settings)
        return cls(store or Store.connect(settings.database_url), gateways, **options)  # type: ignore[call-arg]

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
    ) -> Steps[Payment]:
        check_payment_input(
            amount,
            payment_method=payment_method,
            customer=customer,
            owner=owner,
            description=description,
            return_url=return_url,
            notification_url=notification_url,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        name = self._choose_gateway(gateway, amount, payment_method, customer, owner, metadata)
        payment: Payment = yield DbStep(
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
        checkout: CheckoutKind | str | None = None,
    ) -> Steps[PaymentTransaction]:
        check_id(payment_id, "payment_id")
        page = None if checkout is None else _member(CheckoutKind, checkout, "checkout")
        begun: Begun = yield DbStep(
            lambda: self.ledger.begin(
                payment_id,
                kind,
                amount,
                idempotency_key=idempotency_key,
                final=final,
                checkout=page,
            )
        )
        if begun.action == "replay":
            return begun.transaction
        if begun.action == "wait":
            return (yield from self._wait_for(begun.payment, begun.transaction))
        if begun.action == "resolve":
            return (yield from self._resolve_or_send_again(begun.payment, begun.transaction))
        return (yield from self._send(begun, kind, page))

    def _send(
        self, begun: Begun, kind: TransactionType, page: CheckoutKind | None
    ) -> Steps[PaymentTransaction]:
        """Send a written-ahead transaction through its gateway and record the outcome."""
        transaction: PaymentTransaction = begun.transaction
        request = begun.request
        assert request is not None
        try:
            recorded: Summarized[Any] = yield RunStep(
                begun.payment.gateway, partial(_exchange, kind, request, page), kind
            )
        except (GatewayUnavailable, GatewayAuthError) as error:
            settlement = _failure(TransactionStatus.FAILED, error)
        except GatewayError as error:
            settlement = _failure(TransactionStatus.UNKNOWN, error)
        except PaycoreError as error:
            # The plugin refused before sending (bad input for this gateway).
            refused = _failure(TransactionStatus.FAILED, error)
            committed = yield DbStep(
                lambda: self.ledger.record(transaction.id, refused, current=transaction)
            )
            yield DbStep(lambda: self.ledger.outbox.deliver(committed))
            raise
        else:
            settlement = Settlement.from_result(recorded.result, exchange=recorded.summary)
        recorded_outcome: Committed = yield DbStep(
            lambda: self.ledger.record(
                transaction.id, settlement, expected=SETTLEABLE, current=transaction
            )
        )
        yield DbStep(lambda: self.ledger.outbox.deliver(recorded_outcome))
        return recorded_outcome.transaction

    def _wait_for(
        self, payment: Payment, transaction: PaymentTransaction
    ) -> Steps[PaymentTransaction]:
        """Someone is sending the key's transaction: wait for its outcome, never resend."""
        # The sender's budget runs from when it wrote the transaction (a failed one sent
        # again is rewritten): a retry long after a crash asks the gateway at once.
        budget = self._budget(payment.gateway).total_seconds() + WAIT_MARGIN
        elapsed = (self.clock() - transaction.updated_at).total_seconds()
        deadline = time.monotonic() + max(0.0, min(budget, budget - elapsed))
        pause = 0.005
        while transaction.status is TransactionStatus.PENDING and time.monotonic() < deadline:
            yield PauseStep(pause)
            pause = min(pause * 2, 0.2)
            transaction = yield DbStep(partial(self.ledger.transaction, transaction.id))
        if transaction.status is TransactionStatus.PENDING:
            # Its sender is gone (or very late): ask the gateway what happened.
            return (yield from self._resolve_or_send_again(payment, transaction, may_wait=False))
        return transaction

    def _resolve_or_send_again(
        self, payment: Payment, transaction: PaymentTransaction, *, may_wait: bool = True
    ) -> Steps[PaymentTransaction]:
        """Ask the gateway about the key's unsettled transaction; when the provider has no
        record of it and deduplicates by key, send it again rather than leave it unknown.

        Without this, a mutation whose answer was a 500 blocks its payment (`PaymentBusy`)
        until "no record" can be believed: the exchange budget plus `NOT_FOUND_MARGIN`
        (90 s with the default timeouts), even for the caller retrying under its key. A
        provider that deduplicates makes the resend safe: if the first attempt is still
        on its way, the provider answers both as one. Only captures, voids and refunds are
        resent (an authorization or sale may have been made on a checkout page, which a
        resend could not tell), and only within the gateway's idempotency window.

        ``may_wait``: whether to wait for another caller found sending it meanwhile
        (False once this caller has waited its turn).
        """
        check: Check = yield from self._resolve(transaction)
        settled = check.transaction
        if settled.status is TransactionStatus.PENDING and may_wait:
            # Another caller is sending it again meanwhile: its outcome is this one's.
            return (yield from self._wait_for(payment, settled))
        if not self._may_send_again(payment.gateway, settled, check.answer):
            return settled
        begun: Begun | None = yield DbStep(partial(self.ledger.send_again, payment.id, settled.id))
        if begun is None:
            # Another caller resent it (or it settled meanwhile): wait for that outcome.
            current = yield DbStep(partial(self.ledger.payment_and_transaction, settled.id))
            return (yield from self._wait_for(*current))
        return (yield from self._send(begun, settled.type, None))

    def _may_send_again(
        self, gateway: str, transaction: PaymentTransaction, answer: GatewayResult | None
    ) -> bool:
        if transaction.status is not TransactionStatus.UNKNOWN or transaction.type in CREATING:
            return False
        if answer is None or answer.decline_reason is not DeclineReason.NOT_FOUND:
            return False
        configured = self.gateways.get(gateway)
        if configured is None or not configured.capabilities.idempotency_keys:
            return False
        window = configured.capabilities.idempotency_window
        return window is None or self.clock() < transaction.created_at + window

    def _resolve(
        self, transaction: PaymentTransaction, *, next_check_at: datetime | None = None
    ) -> Steps[Check]:
        """Ask the gateway about an unsettled transaction and record what it says.

        What stays unsettled is counted as checked, next to be checked at
        ``next_check_at`` (reconciliation's schedule; None: whenever it is next run).
        """
        if transaction.status not in SETTLEABLE:
            return Check(transaction, asked=False)
        payment, transaction = yield DbStep(
            lambda: self.ledger.payment_and_transaction(transaction.id)
        )
        gateway = self.gateways.get(payment.gateway)
        if gateway is None or not gateway.capabilities.supports(Operation.FETCH_STATUS):
            why = "its gateway is not configured here or cannot fetch a status"
            return (yield from self._unsettled(transaction, next_check_at, asked=False, note=why))
        request = request_for(payment, transaction)
        try:
            recorded: Summarized[Any] = yield RunStep(
                payment.gateway,
                lambda gateway: gateway.fetch_status(request),
                TransactionType.FETCH_STATUS,
            )
        except PaycoreError as error:
            return (
                yield from self._unsettled(
                    transaction, next_check_at, asked=True, note=one_line(error), error=error
                )
            )
        result = recorded.result
        settlement = Settlement.from_result(result, exchange=recorded.summary)
        if result.decline_reason is DeclineReason.NOT_FOUND:
            # From when it was last sent: a failed transaction sent again counts anew.
            settled_after = transaction.updated_at + self._budget(payment.gateway)
            if self.clock() < settled_after + NOT_FOUND_MARGIN:
                # An attempt may still be on its way to the provider: not yet.
                why = "the provider has no record of it yet; an attempt may still be on its way"
                return (
                    yield from self._unsettled(
                        transaction, next_check_at, asked=True, note=why, answer=result
                    )
                )
            settlement = _not_found(settlement)
        committed: Committed = yield DbStep(
            lambda: self.ledger.record(
                transaction.id, settlement, expected=SETTLEABLE, current=transaction
            )
        )
        if committed.changed:
            yield DbStep(lambda: self.ledger.outbox.deliver(committed))
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
    ) -> Steps[Check]:
        checked: PaymentTransaction = yield DbStep(
            lambda: self.ledger.note_check(transaction.id, next_check_at=next_check_at)
        )
        return Check(checked, asked=asked, answer=answer, error=error, note=note)

    def _fetch_status(self, transaction_id: str) -> Steps[PaymentTransaction]:
        check_id(transaction_id, "transaction_id")
        transaction: PaymentTransaction = yield DbStep(
            lambda: self.ledger.transaction(transaction_id)
        )
        return (yield from self._resolve(transaction)).transaction

    def _check(self, transaction_id: str, next_check_at: datetime | None) -> Steps[Check]:
        check_id(transaction_id, "transaction_id")
        transaction: PaymentTransaction = yield DbStep(
            lambda: self.ledger.transaction(transaction_id)
        )
        return (yield from self._resolve(transaction, next_check_at=next_check_at))

    def _apply_event(self, gateway: str, event: GatewayEvent) -> Steps[EventResult]:
        if gateway not in self.gateways:
            raise InvalidRequest(f"no gateway {str(gateway)[:64]!r} is configured")
        if not isinstance(event, GatewayEvent):
            raise InvalidRequest("apply_event takes a GatewayEvent from the gateway's webhook")
        disposition, committed = yield DbStep(lambda: self.ledger.apply_event(gateway, event))
        if committed is None:
            return EventResult(disposition)
        yield DbStep(lambda: self.ledger.outbox.deliver(committed))
        return EventResult(disposition, committed.payment, committed.transaction)

    def _answer_check(self, gateway: str, check: PaymentCheck) -> Steps[WebhookReply]:
        if gateway not in self.gateways:
            raise InvalidRequest(f"no gateway {str(gateway)[:64]!r} is configured")
        if not isinstance(check, PaymentCheck):
            raise InvalidRequest("answer_check takes a PaymentCheck from the gateway's webhook")
        found: tuple[Payment, PaymentTransaction] | None = yield DbStep(
            lambda: self._checked(gateway, check.transaction_id)
        )
        payment, transaction = found if found is not None else (None, None)
        accepted = transaction is not None and (
            transaction.status in WAITING_FOR_THE_CUSTOMER
            and transaction.amount == check.amount
            and check.payment_id in (None, transaction.payment_id)
        )
        if self.hooks is not None:
            hooks = self.hooks
            # A step of its own: the async facade runs it in a worker thread, so a slow
            # implementation never holds up the event loop.
            verdict = yield DbStep(
                lambda: hooks.paycore_answer_payment_check(
                    gateway=gateway,
                    check=check,
                    payment=payment,
                    transaction=transaction,
                    expected=accepted,
                )
            )
            if verdict is not None:
                accepted = bool(verdict)
        return check.accept if accepted else check.reject

    def _checked(
        self, gateway: str, transaction_id: str
    ) -> tuple[Payment, PaymentTransaction] | None:
        """The payment and transaction a check names, if this gateway's ledger has them."""
        try:
            transaction = self.ledger.transaction(transaction_id)
        except (NotFound, InvalidRequest):
            return None
        payment = self.ledger.payment(transaction.payment_id)
        return (payment, transaction) if payment.gateway == gateway else None

    def _budget(self, gateway: str) -> timedelta:
        configured = self.gateways.get(gateway)
        seconds = 60.0 if configured is None else configured.config.timeouts.total
        return timedelta(seconds=seconds)


def _exchange(
    kind: TransactionType, request: PaymentRequest, page: CheckoutKind | None, gateway: Gateway
) -> Exchange[GatewayResult]:
    """The gateway's exchange for a mutation: its operation, or a checkout page for it."""
    if page is None:
        exchange: Exchange[GatewayResult] = getattr(gateway, kind.value)(request)
        return exchange
    return _checkout(gateway, request, page)


def _checkout(
    gateway: Gateway, request: PaymentRequest, page: CheckoutKind
) -> Exchange[GatewayResult]:
    try:
        session = yield from gateway.create_checkout(request, kind=page)
    except GatewayRefused as refused:
        # The provider will not make the page: the payment cannot happen this way.
        return GatewayResult(
            outcome=Outcome.DECLINED,
            decline_reason=DeclineReason.INVALID_REQUEST,
            decline_code=refused.code,
            message=refused.message,
            provider_status=None if refused.http_status is None else f"http_{refused.http_status}",
        )
    return _awaiting_customer(session)


def _awaiting_customer(session: CheckoutSession) -> GatewayResult:
    """A checkout page created: the transaction waits for the customer to pay there."""
    return GatewayResult(
        outcome=Outcome.ACTION_REQUIRED,
        gateway_reference=session.gateway_reference,
        transaction_reference=session.reference,
        next_action=session.next_action,
        provider_status=f"{session.kind}_open",
    )


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


def not_in_time(run: RunStep, timeout: float) -> GatewayUnavailable:
    """What a gathered run still going at the deadline counts as."""
    return GatewayUnavailable(
        f"{run.operation} gave no answer within {timeout:g} s", gateway=run.gateway
    )


def one_line(error: BaseException) -> str:
    """An error as one line for notes and reports: its kind, then its message."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:300]}"


def _gateway_of(value: Any, driver_type: type[Any]) -> Gateway:
    if isinstance(value, driver_type):
        return value.gateway  # type: ignore[no-any-return]
    if isinstance(value, Gateway):
        return value
    raise InvalidRequest(
        f"a gateway or {driver_type.__name__} was expected, not {type(value).__name__}"
    )
