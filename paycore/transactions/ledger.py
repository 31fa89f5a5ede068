"""The write-ahead bookkeeping of the services: every database step, none of the I/O.

Each mutation takes two short database transactions around the gateway call
(DESIGN §5), and both live here:

1. `Ledger.begin`: lock the payment, settle idempotency (same key and request: the
   recorded transaction; same key, other request: `IdempotencyConflict`), refuse a
   second mutation in flight (`PaymentBusy`), check the state machine and amounts
   (`paycore.transactions.states`), and insert the transaction as ``pending``.
2. `Ledger.record`: record the gateway's answer (or the failure), update the
   payment's totals and status, and queue the hook notifications in the outbox, in
   one commit. A transaction is only moved from a status `states.can_resolve` allows,
   so a webhook, a reconciliation and the original caller can race to record one
   outcome and the first wins.

The hook notifications of step 2 are queued in the outbox in the same commit and
delivered after it (`paycore.transactions.outbox`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from attrs import evolve, frozen

from paycore.errors import (
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    PaymentBusy,
    UnsupportedOperation,
)
from paycore.gateways.base import Gateway, Operation
from paycore.gateways.scrub import REDACTED, Scrubber, security_code_name
from paycore.money import Money
from paycore.transactions import states
from paycore.transactions.group_commit import GroupCommit
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    DeclineReason,
    GatewayEvent,
    GatewayResult,
    NextAction,
    Outcome,
    PaymentMethod,
    PaymentRequest,
    PaymentStatus,
    SavedMethod,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.outbox import Committed, Outbox
from paycore.transactions.records import IN_FLIGHT, UNRESOLVED, Payment, PaymentTransaction
from paycore.transactions.store import Store, StoreSession

__all__ = [
    "Begun",
    "Committed",
    "Ledger",
    "Outcome",
    "Settlement",
    "new_id",
]

log = logging.getLogger("paycore.transactions")


_STATUS_OF_OUTCOME = {
    Outcome.APPROVED: TransactionStatus.SUCCEEDED,
    Outcome.PROCESSING: TransactionStatus.PROCESSING,
    Outcome.ACTION_REQUIRED: TransactionStatus.REQUIRES_ACTION,
    Outcome.DECLINED: TransactionStatus.DECLINED,
}

# What a webhook or a check may settle: anything not final.
SETTLEABLE = frozenset(UNRESOLVED | {TransactionStatus.REQUIRES_ACTION})
# How long an authorization holds when neither the provider nor the gateway says.
DEFAULT_AUTHORIZATION_WINDOW = timedelta(days=7)


_last_tick = 0
_tick_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """A new id such as ``txn_…``: header- and URL-safe, ordered by creation.

    Microseconds since the epoch (strictly increasing within a process), then 64
    random bits: ids sort in the order they were made, which orders a payment's
    transactions even when two share a timestamp.
    """
    global _last_tick
    with _tick_lock:
        _last_tick = max(time.time_ns() // 1000, _last_tick + 1)
        tick = _last_tick
    return f"{prefix}_{tick:014x}{secrets.token_hex(8)}"


def utc_now() -> datetime:
    return datetime.now(UTC)


# Masks card numbers in free text the caller supplies, for a gateway not configured here.
_MASK_CARDS = Scrubber(())


def _scrubbed_entries(entries: Mapping[str, str], scrub: Scrubber) -> dict[str, str]:
    """Free-text values scrubbed; a value under a security code's name never kept."""
    return {
        key: REDACTED if security_code_name(key) else scrub.text(value)
        for key, value in entries.items()
    }


def _pending_again(
    transaction: PaymentTransaction, now: datetime, **changes: Any
) -> PaymentTransaction:
    """``transaction`` written ahead once more, to be sent again under its own id: what
    its last attempt left (a failure, a decline, when it settled) is cleared."""
    return evolve(
        transaction,
        status=TransactionStatus.PENDING,
        failure=None,
        message=None,
        decline_reason=None,
        decline_code=None,
        updated_at=now,
        resolved_at=None,
        **changes,
    )


def fingerprint(*parts: Any) -> str:
    """A digest of a request's meaningful fields, to tell a replay from a conflict."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@frozen
class Begun:
    """What `Ledger.begin` decided.

    ``action`` is ``"send"`` (call the gateway with ``request``), ``"replay"`` (the
    key's transaction is recorded: return it), ``"wait"`` (the key's transaction is
    ``pending``: someone is sending it) or ``"resolve"`` (the key's transaction is
    ``unknown``: ask the gateway; resent only as `Ledger.send_again` allows).
    """

    action: str
    payment: Payment
    transaction: PaymentTransaction
    request: PaymentRequest | None = None


@frozen
class Settlement:
    """An outcome to record for a transaction, from an answer, a failure or an event."""

    status: TransactionStatus
    processed: Money | None = None
    gateway_reference: str | None = None
    gateway_transaction_id: str | None = None
    provider_status: str | None = None
    decline_reason: DeclineReason | None = None
    decline_code: str | None = None
    failure: str | None = None
    message: str | None = None
    next_action: NextAction | None = None
    exchange: str | None = None
    authorization_expires_at: datetime | None = None
    saved_method: SavedMethod | None = None

    @classmethod
    def from_result(cls, result: GatewayResult, *, exchange: str | None = None) -> Settlement:
        return cls(
            status=_STATUS_OF_OUTCOME[result.outcome],
            processed=result.amount,
            gateway_reference=result.gateway_reference,
            gateway_transaction_id=result.transaction_reference,
            provider_status=result.provider_status,
            decline_reason=result.decline_reason,
            decline_code=result.decline_code,
            message=result.message,
            next_action=result.next_action,
            exchange=exchange,
            authorization_expires_at=result.authorization_expires_at,
            saved_method=result.saved_method,
        )

    @classmethod
    def from_event(cls, event: GatewayEvent) -> Settlement:
        return cls(
            status=_STATUS_OF_OUTCOME[event.outcome],
            processed=event.amount,
            gateway_reference=event.gateway_reference,
            gateway_transaction_id=event.transaction_reference,
            provider_status=event.provider_status,
            decline_reason=event.decline_reason,
            decline_code=event.decline_code,
        )


class Ledger:
    """The database steps of the services, over one `Store`.

    ``gateways`` maps configured gateway names to gateways (their capabilities are
    checked before anything is written); ``hooks`` is a pluggy hook relay or None;
    ``clock`` gives aware UTC datetimes.
    """

    def __init__(
        self,
        store: Store,
        gateways: Mapping[str, Gateway],
        *,
        hooks: Any | None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.gateways = gateways
        self.hooks = hooks
        self.clock = clock
        self.outbox = Outbox(store, hooks, clock=clock)
        # Providers' messages are stored, so they go through the same scrubbing as
        # transcripts: a provider echoing a card number or a key must not reach the table.
        self._scrubbers = {name: Scrubber(g.secret_values()) for name, g in gateways.items()}
        # SQLite commits one writer at a time, each waiting for the disk: events arriving
        # together are committed together (PostgreSQL's own commits overlap).
        self._event_writes = GroupCommit(store) if store.dialect == "sqlite" else None

    # -- payments ------------------------------------------------------------------------

    def create_payment(
        self,
        *,
        gateway: str,
        amount: Money,
        payment_method: PaymentMethod | None,
        customer: Customer | None,
        owner: str | None,
        description: str | None,
        return_url: str | None,
        notification_url: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str | None,
    ) -> Payment:
        """A new payment (nothing is sent), or the one created before with the same key.

        Card numbers and security codes (and the gateway's secrets) in the description,
        the metadata, the method's fields or the customer's name are masked before
        anything is stored or sent: a merchant's free text must not carry one into the
        database. A metadata entry or method field named as a security code (``cvv``)
        keeps its name only.
        """
        scrub = self._scrubbers.get(gateway) or _MASK_CARDS
        description = None if description is None else scrub.text(description)
        metadata = _scrubbed_entries(metadata, scrub)
        if payment_method is not None and payment_method.fields:
            payment_method = evolve(
                payment_method, fields=_scrubbed_entries(payment_method.fields, scrub)
            )
        if customer is not None and customer.name is not None:
            customer = evolve(customer, name=scrub.text(customer.name))
        now = self.clock()
        zero = Money.zero(amount.currency)
        payment = Payment(
            id=new_id("pay"),
            gateway=gateway,
            amount=amount,
            status=PaymentStatus.NEW,
            authorized=zero,
            captured=zero,
            refunded=zero,
            capturable=zero,
            created_at=now,
            updated_at=now,
            owner=owner,
            payment_method=payment_method,
            customer=customer,
            description=description,
            return_url=return_url,
            notification_url=notification_url,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
        digest = fingerprint(
            gateway,
            amount.minor_units,
            amount.currency.code,
            None
            if payment_method is None
            else (
                payment_method.type,
                payment_method.token,
                payment_method.save,
                *(("off_session",) if payment_method.off_session else ()),
                *sorted(payment_method.fields.items()),
            ),
            None if customer is None else repr(customer),
            owner,
            description,
            return_url,
            notification_url,
            dict(metadata),
        )
        if idempotency_key is not None:
            with self.store.reading() as session:
                found = session.payment_by_key(idempotency_key)
            if found is not None:
                return _same_payment(found, digest, idempotency_key)
        try:
            with self.store.writing() as session:
                session.insert_payment(payment, fingerprint=digest)
        except sa.exc.IntegrityError:
            # Two callers raced with one key: the other one's insert won.
            if idempotency_key is None:
                raise
            with self.store.reading() as session:
                found = session.payment_by_key(idempotency_key)
            if found is None:
                raise
            return _same_payment(found, digest, idempotency_key)
        return payment

    def payment(self, payment_id: str) -> Payment:
        with self.store.reading() as session:
            payment = session.payment(payment_id)
        if payment is None:
            raise NotFound("payment", payment_id)
        return payment

    def transaction(self, transaction_id: str) -> PaymentTransaction:
        with self.store.reading() as session:
            transaction = session.transaction(transaction_id)
        if transaction is None:
            raise NotFound("transaction", transaction_id)
        return transaction

    def transactions(self, payment_id: str) -> tuple[PaymentTransaction, ...]:
        with self.store.reading() as session:
            if session.payment(payment_id) is None:
                raise NotFound("payment", payment_id)
            return tuple(session.transactions_of(payment_id))

    def payments_of(self, owner: str) -> tuple[Payment, ...]:
        with self.store.reading() as session:
            return tuple(session.payments_of_owner(owner))

    def payment_by_key(self, idempotency_key: str) -> Payment | None:
        """The payment created with ``idempotency_key``, if any."""
        with self.store.reading() as session:
            found = session.payment_by_key(idempotency_key)
        return None if found is None else found[0]

    def expiring_authorizations(self, before: datetime, *, limit: int) -> tuple[Payment, ...]:
        """Payments whose authorization still holds money and expires before ``before``,
        soonest first."""
        with self.store.reading() as session:
            return tuple(session.expiring_authorizations(before, limit=limit))

    def payment_and_transaction(self, transaction_id: str) -> tuple[Payment, PaymentTransaction]:
        with self.store.reading() as session:
            transaction = session.transaction(transaction_id)
            if transaction is None:
                raise NotFound("transaction", transaction_id)
            payment = session.payment(transaction.payment_id)
        assert payment is not None  # a foreign key guarantees it
        return payment, transaction

    # -- step 1: write ahead -------------------------------------------------------------

    def begin(
        self,
        payment_id: str,
        kind: TransactionType,
        amount: Money | None,
        *,
        idempotency_key: str | None,
        final: bool = False,
        checkout: CheckoutKind | None = None,
    ) -> Begun:
        """Step 1 of a mutation; see the module docstring. Nothing is written on error.

        ``checkout``: the authorization or sale happens on a page the customer is sent
        to (the gateway's `create_checkout`), not by a direct call.
        """
        if amount is not None and not isinstance(amount, Money):
            raise InvalidAmount(f"amount must be Money, not {type(amount).__name__}")
        if not isinstance(final, bool):
            raise InvalidRequest("final must be True or False")
        if checkout is not None and kind not in states.CREATING:
            raise InvalidRequest(f"a {kind} cannot happen on a checkout page")
        key = uuid.uuid4().hex if idempotency_key is None else _checked_key(idempotency_key)
        parts: tuple[Any, ...] = (
            kind.value,
            None if amount is None else (amount.minor_units, amount.currency.code),
            final,
        )
        digest = fingerprint(*parts) if checkout is None else fingerprint(*parts, checkout.value)
        with self.store.writing() as session:
            payment = session.payment(payment_id, lock=True)
            if payment is None:
                raise NotFound("payment", payment_id)
            gateway = self._gateway(payment)
            others = session.transactions_of(payment.id)
            existing = next((t for t in others if t.idempotency_key == key), None)
            if existing is not None:
                if existing.fingerprint != digest:
                    raise IdempotencyConflict(
                        f"idempotency key {key[:64]!r} was used for another request on "
                        f"payment {payment.id} ({existing.type} of {existing.amount}): use a "
                        "new key for a new request"
                    )
                if existing.status is not TransactionStatus.FAILED:
                    return Begun(_ACTION_FOR_EXISTING[existing.status], payment, existing)
            operation = Operation(kind.value)
            if not gateway.capabilities.supports(operation):
                raise UnsupportedOperation(payment.gateway, operation.value)
            if checkout is not None and not gateway.capabilities.supports_checkout(checkout):
                raise UnsupportedOperation(payment.gateway, f"create_checkout ({checkout})")
            busy = [t for t in others if t.status in IN_FLIGHT]
            if busy:
                raise PaymentBusy(
                    f"payment {payment.id} has a {busy[0].type} {busy[0].status} "
                    f"({busy[0].id}); retry once it is resolved"
                )
            processing = [t for t in others if t.status is TransactionStatus.PROCESSING]
            to_carry = states.check_mutation(
                payment, kind, amount, capabilities=gateway.capabilities, processing=processing
            )
            now = self.clock()
            if existing is not None:
                # Failed means not sent: the same transaction goes again, under its id.
                transaction = _pending_again(existing, now, amount=to_carry)
                if not session.update_transaction(transaction, expected={TransactionStatus.FAILED}):
                    raise PaymentBusy(f"transaction {existing.id} changed meanwhile; retry")
            else:
                transaction = PaymentTransaction(
                    id=new_id("txn"),
                    payment_id=payment.id,
                    type=kind,
                    status=TransactionStatus.PENDING,
                    amount=to_carry,
                    idempotency_key=key,
                    fingerprint=digest,
                    created_at=now,
                    updated_at=now,
                    parent_id=_parent(kind, others),
                    # A gateway that captures an authorization once releases the rest.
                    final=final
                    or (
                        kind is TransactionType.CAPTURE
                        and not gateway.capabilities.multiple_capture
                    ),
                )
                session.insert_transaction(transaction)
        return Begun("send", payment, transaction, request_for(payment, transaction))

    def send_again(self, payment_id: str, transaction_id: str) -> Begun | None:
        """Make an ``unknown`` transaction ``pending`` again, to be resent under its own id.

        Only for a provider that deduplicates by key, once it said it has no record of
        the transaction (see `Orchestration`): whichever caller moves it first sends it;
        None for the others (it is no longer unknown), who wait for that sender.
        """
        with self.store.writing() as session:
            # The payment first, as every writer locks it: then the transaction as it is.
            payment = session.payment(payment_id, lock=True)
            transaction = session.transaction(transaction_id)
            if payment is None or transaction is None or transaction.payment_id != payment_id:
                raise NotFound("transaction", transaction_id)
            if transaction.status is not TransactionStatus.UNKNOWN:
                return None
            again = _pending_again(transaction, self.clock())
            if not session.update_transaction(again, expected={TransactionStatus.UNKNOWN}):
                return None
        return Begun("send", payment, again, request_for(payment, again))

    # -- step 2 happens elsewhere: the driver ---------------------------------------------

    # -- step 3: record ------------------------------------------------------------------

    def record(
        self,
        transaction_id: str,
        settlement: Settlement,
        *,
        expected: frozenset[TransactionStatus] = frozenset({TransactionStatus.PENDING}),
        payment_id: str | None = None,
        current: PaymentTransaction | None = None,
    ) -> Committed:
        """Record ``settlement`` for the transaction, if its status is still ``expected``.

        The transaction, the payment's totals and status, and the outbox entry are
        committed together. When the transaction was settled by someone else first,
        nothing changes and ``changed`` is False. ``current``, the caller's copy of the
        transaction, spares reading it: it is recorded only if it is still as the
        caller saw it.
        """
        now = self.clock()
        if current is not None:
            payment_id = current.payment_id
        with self.store.writing() as session:
            return self._record_in(
                session, transaction_id, settlement, expected, now, payment_id, current
            )

    def _record_in(
        self,
        session: StoreSession,
        transaction_id: str,
        settlement: Settlement,
        expected: frozenset[TransactionStatus],
        now: datetime,
        payment_id: str | None = None,
        current: PaymentTransaction | None = None,
    ) -> Committed:
        if payment_id is None:
            found = session.transaction(transaction_id)
            if found is None:
                raise NotFound("transaction", transaction_id)
            payment_id = found.payment_id
        # The payment's lock first, then the transaction as it stands under it (or as
        # the caller saw it: the update below checks that it still stands so).
        payment = session.payment(payment_id, lock=True)
        transaction = current if current is not None else session.transaction(transaction_id)
        if payment is None or transaction is None or transaction.payment_id != payment.id:
            raise NotFound("transaction", transaction_id)
        previous = payment.status
        if transaction.status not in expected or not states.can_resolve(
            transaction.status, settlement.status
        ):
            # Settled by someone else first, or nothing new (still processing).
            return Committed(payment, transaction, False, previous)
        settled = _settled(transaction, self._scrubbed(payment.gateway, settlement), now)
        updated = states.apply_outcome(
            payment,
            settled,
            settled.status,
            processed=settled.amount if settled.succeeded else None,
            decline_reason=settled.decline_reason,
        )
        if updated.totals() == payment.totals() and states.moves_backwards(
            previous, updated.status
        ):
            # Money that moved always counts; only a status alone never goes back.
            log.warning(
                "payment %s: %s %s would move it from %s back to %s; kept %s",
                payment.id,
                settled.type,
                settled.status,
                previous,
                updated.status,
                previous,
            )
            updated = payment
        updated = _with_references(updated, settled, settlement, now)
        if (
            settled.type is TransactionType.AUTHORIZE
            and settled.succeeded
            and updated.authorization_expires_at is None
        ):
            # The provider did not say: the gateway's declared window, from now.
            window = self._window(payment.gateway)
            updated = evolve(updated, authorization_expires_at=now + window)
        if not session.update_transaction(settled, expected={transaction.status}):
            # Changed since the caller read it (a webhook or a check got there first):
            # judge the answer against the transaction as it stands now.
            return self._record_in(session, transaction_id, settlement, expected, now, payment.id)
        session.update_payment(updated)
        entries = self.outbox.queue(
            session, payment=updated, transaction=settled, previous_status=previous, at=now
        )
        return Committed(updated, settled, True, previous, entries)

    def note_check(
        self, transaction_id: str, *, next_check_at: datetime | None
    ) -> PaymentTransaction:
        """Count a look at the gateway that settled nothing, and when to look next.

        Returns the transaction as recorded afterwards (settled meanwhile: unchanged).
        """
        with self.store.writing() as session:
            transaction = session.transaction(transaction_id)
            if transaction is None:
                raise NotFound("transaction", transaction_id)
            if not transaction.is_final:
                session.note_check(
                    transaction_id, status=transaction.status, next_check_at=next_check_at
                )
                transaction = session.transaction(transaction_id) or transaction
            return transaction

    # -- webhooks ------------------------------------------------------------------------

    def apply_event(self, gateway: str, event: GatewayEvent) -> tuple[str, Committed | None]:
        """Store a verified event once and settle the transaction it reports.

        Returns the disposition (``"duplicate"``, ``"applied"``, ``"ignored"`` when the
        transaction was settled already, ``"unmatched"`` when no transaction of the
        ledger matches, ``"mismatch"`` when the event reports another currency than its
        transaction's: stored, never applied) and what was committed.
        """
        now = self.clock()

        def record(session: StoreSession) -> tuple[str, Committed | None]:
            return self._event_in(session, gateway, event, now)

        try:
            if self._event_writes is not None:
                return self._event_writes.run(record)
            with self.store.writing() as session:
                return record(session)
        except _Duplicate:
            return "duplicate", None

    def _event_in(
        self, session: StoreSession, gateway: str, event: GatewayEvent, now: datetime
    ) -> tuple[str, Committed | None]:
        """`apply_event`'s writes in ``session``; raises `_Duplicate` for an event stored
        before (its writes must be rolled back)."""
        transaction = _event_transaction(session, gateway, event)
        committed = None
        mismatch = (
            transaction is not None
            and event.amount is not None
            and event.amount.currency != transaction.amount.currency
        )
        if mismatch:
            # Signed, but not about this transaction's money: never settle on it.
            assert transaction is not None and event.amount is not None
            log.warning(
                "event %s of %s reports %s for transaction %s of %s; not applied",
                event.event_id,
                gateway,
                event.amount.currency,
                transaction.id,
                transaction.amount.currency,
            )
        elif transaction is not None:
            committed = self._record_in(
                session,
                transaction.id,
                Settlement.from_event(event),
                SETTLEABLE,
                now,
                transaction.payment_id,
                current=transaction,  # as read in this transaction: not read again
            )
        disposition = (
            "mismatch"
            if mismatch
            else "unmatched"
            if committed is None
            else "applied"
            if committed.changed
            else "ignored"
        )
        stored = session.record_event(
            {
                "gateway": gateway,
                "event_id": event.event_id,
                "event_type": event.event_type[:128],
                "transaction_type": event.transaction_type.value,
                "outcome": event.outcome.value,
                "occurred_at": event.occurred_at,
                "received_at": now,
                "payment_id": None if transaction is None else transaction.payment_id,
                "transaction_id": None if transaction is None else transaction.id,
                "disposition": disposition,
            }
        )
        if not stored:
            raise _Duplicate
        return disposition, committed

    def _scrubbed(self, gateway: str, settlement: Settlement) -> Settlement:
        scrubber = self._scrubbers.get(gateway) or Scrubber(())
        return evolve(
            settlement,
            message=None if settlement.message is None else scrubber.text(settlement.message),
            decline_code=(
                None if settlement.decline_code is None else scrubber.text(settlement.decline_code)
            ),
            provider_status=(
                None
                if settlement.provider_status is None
                else scrubber.text(settlement.provider_status)
            ),
        )

    def _window(self, gateway: str) -> timedelta:
        configured = self.gateways.get(gateway)
        return (
            DEFAULT_AUTHORIZATION_WINDOW
            if configured is None
            else configured.capabilities.authorization_window
        )

    def _gateway(self, payment: Payment) -> Gateway:
        gateway = self.gateways.get(payment.gateway)
        if gateway is None:
            raise InvalidRequest(
                f"payment {payment.id} belongs to gateway {payment.gateway!r}, which is not "
                "configured here"
            )
        return gateway


class _Duplicate(Exception):
    """Rolls back an event's effects: it had been stored before."""


_ACTION_FOR_EXISTING = {
    TransactionStatus.PENDING: "wait",
    TransactionStatus.UNKNOWN: "resolve",
    TransactionStatus.PROCESSING: "replay",
    TransactionStatus.REQUIRES_ACTION: "replay",
    TransactionStatus.SUCCEEDED: "replay",
    TransactionStatus.DECLINED: "replay",
}


def request_for(payment: Payment, transaction: PaymentTransaction) -> PaymentRequest:
    """The `PaymentRequest` a plugin gets for ``transaction`` of ``payment``."""
    return PaymentRequest(
        transaction_id=transaction.id,
        transaction_type=transaction.type,
        payment_id=payment.id,
        amount=transaction.amount,
        gateway_reference=payment.gateway_reference,
        transaction_reference=transaction.gateway_transaction_id,
        order_reference=payment.owner,
        payment_method=payment.payment_method,
        customer=payment.customer,
        description=payment.description,
        return_url=payment.return_url,
        notification_url=payment.notification_url,
        final=transaction.final,
        metadata=payment.metadata,
    )


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 255 or not key.isprintable():
        raise InvalidRequest("idempotency_key must be 1 to 255 printable characters")
    return key


def _same_payment(found: tuple[Payment, str | None], digest: str, key: str) -> Payment:
    payment, recorded = found
    if recorded != digest:
        raise IdempotencyConflict(
            f"idempotency key {key[:64]!r} created payment {payment.id} with other details: "
            "use a new key for a new payment"
        )
    return payment


def _parent(kind: TransactionType, others: list[PaymentTransaction]) -> str | None:
    if kind in states.CREATING:
        return None
    for transaction in others:
        if transaction.type in states.CREATING and transaction.succeeded:
            return transaction.id
    return None


def _settled(
    transaction: PaymentTransaction, settlement: Settlement, now: datetime
) -> PaymentTransaction:
    processed = settlement.processed
    amount = transaction.amount
    if (
        settlement.status is TransactionStatus.SUCCEEDED
        and processed is not None
        and transaction.type is not TransactionType.VOID
        and processed.currency == amount.currency
        and 0 < processed.minor_units <= amount.minor_units
    ):
        amount = processed  # a partial approval: what the gateway processed counts
    return evolve(
        transaction,
        status=settlement.status,
        amount=amount,
        gateway_transaction_id=settlement.gateway_transaction_id
        or transaction.gateway_transaction_id,
        provider_status=settlement.provider_status or transaction.provider_status,
        decline_reason=settlement.decline_reason,
        decline_code=settlement.decline_code,
        failure=settlement.failure,
        message=settlement.message,
        next_action=settlement.next_action,
        saved_method=settlement.saved_method or transaction.saved_method,
        exchange=settlement.exchange or transaction.exchange,
        updated_at=now,
        resolved_at=now if settlement.status.is_final else None,
    )


def _with_references(
    payment: Payment, transaction: PaymentTransaction, settlement: Settlement, now: datetime
) -> Payment:
    changes: dict[str, Any] = {"updated_at": now}
    if payment.gateway_reference is None and settlement.gateway_reference:
        changes["gateway_reference"] = settlement.gateway_reference
    if transaction.type in states.CREATING and settlement.authorization_expires_at is not None:
        changes["authorization_expires_at"] = settlement.authorization_expires_at
    return evolve(payment, **changes)


def _event_transaction(
    session: StoreSession, gateway: str, event: GatewayEvent
) -> PaymentTransaction | None:
    """The ledger's transaction an event reports, by paycore's id or the provider's."""
    if event.transaction_id:
        found = session.transaction(event.transaction_id)
        if found is not None and found.type is event.transaction_type:
            payment = session.payment(found.payment_id)
            if payment is not None and payment.gateway == gateway:
                return found
    if not event.gateway_reference:
        return None
    payment = session.payment_by_reference(gateway, event.gateway_reference)
    if payment is None:
        return None
    candidates = [
        t for t in session.transactions_of(payment.id) if t.type is event.transaction_type
    ]
    if event.transaction_reference:
        for transaction in candidates:
            if transaction.gateway_transaction_id == event.transaction_reference:
                return transaction
    if event.transaction_type in states.CREATING and len(candidates) == 1:
        return candidates[0]
    return _in_flight(candidates, event)


# Clocks differ: an event may say it happened a little before paycore wrote ahead.
_EVENT_CLOCK_SKEW = timedelta(seconds=30)


def _in_flight(
    candidates: list[PaymentTransaction], event: GatewayEvent
) -> PaymentTransaction | None:
    """The one transaction of the event's type still on its way, if the event is its.

    A webhook may overtake the answer to the request it reports: the refund is done at
    the provider, the event names the provider's new refund id, and the ledger has
    not recorded that id yet. One mutation at a time is in flight per payment, so the
    only transaction of that type without a provider id, unresolved, for the event's
    amount and written before the event happened, is the one it reports.
    """
    # Any other transaction of the type without a provider id (one refused before the
    # provider named it, say) could be the one the event reports: then it is no one's.
    unnamed = [t for t in candidates if t.gateway_transaction_id is None]
    if len(unnamed) != 1 or unnamed[0].status not in UNRESOLVED:
        return None
    (transaction,) = unnamed
    if event.amount is not None and event.amount != transaction.amount:
        return None
    if event.occurred_at < transaction.created_at - _EVENT_CLOCK_SKEW:
        return None
    return transaction
