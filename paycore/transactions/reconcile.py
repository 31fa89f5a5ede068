"""Reconciliation: ask the gateways about the transactions the ledger cannot settle alone.

A transaction stays ``pending`` when its sender stopped between writing ahead and
recording the answer, ``unknown`` when the answer was lost, ``processing`` while the
provider works on it (a bank transfer). `Reconciler.run` finds those older than a
grace period whose next check is due, asks each one's gateway (``fetch_status``)
through the services, and records the answer as any other outcome, hooks included.

What the gateway cannot settle yet is left as it is, checked again on a backoff
`Schedule` (Kill Bill's janitor: 1 hour after the first check, then daily) and listed
in the `ReconcileReport`: nothing is marked failed by guesswork. "The provider has no
record of it" fails a transaction only once no attempt of it can still be in flight
(its exchange's time budget and a margin have passed). A gateway that is down fails
its transactions' checks, not the run; after a few failures in a row the run stops
asking it and leaves its other transactions due for the next run.

A run also redelivers the hook notifications a stopped process left in the outbox.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from attrs import field, frozen

from paycore.errors import InvalidRequest
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    GatewayResult,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.orchestration import one_line
from paycore.transactions.records import UNRESOLVED, PaymentTransaction
from paycore.transactions.services import Check, PaymentTransactionServices

__all__ = [
    "DEFAULT_GRACE",
    "ReconcileReport",
    "ReconcileRow",
    "Reconciler",
    "Schedule",
    "parse_duration",
]

log = logging.getLogger("paycore.reconcile")


DEFAULT_GRACE = timedelta(minutes=5)
MAX_DURATION = timedelta(days=36500)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION = re.compile(r"(\d{1,9})([smhd])")
_NOTE_LENGTH = 300


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h`` or ``2d`` as a `timedelta`; anything else is `InvalidRequest`."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidRequest(
            f"{str(text)[:32]!r} is not a duration: write a whole number and a unit, "
            "s, m, h or d (30s, 5m, 1h, 2d)"
        )
    duration = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if duration > MAX_DURATION:
        raise InvalidRequest(f"{text.strip()!r} is too long: at most {MAX_DURATION.days}d")
    return duration


def _delays(value: Iterable[timedelta]) -> tuple[timedelta, ...]:
    delays = tuple(value)
    if not delays or not all(isinstance(d, timedelta) and d > timedelta(0) for d in delays):
        raise InvalidRequest("a schedule needs one or more positive timedelta delays")
    return delays


@frozen
class Schedule:
    """When to look again at a transaction that a check left unresolved.

    ``delays[n - 1]`` is the wait after the n-th unresolved check, and the last one
    repeats: by default 1 hour after the first check, then every day, like Kill Bill's
    janitor. The first check needs no delay: it comes once the transaction is older
    than the reconciler's grace period.
    """

    delays: tuple[timedelta, ...] = field(
        default=(timedelta(hours=1), timedelta(days=1)), converter=_delays
    )

    def delay_after(self, checks_done: int) -> timedelta:
        """The wait after ``checks_done`` unresolved checks (none before the first)."""
        if checks_done <= 0:
            return timedelta(0)
        return self.delays[min(checks_done, len(self.delays)) - 1]

    def next_check(self, checks_done: int, now: datetime) -> datetime:
        """When the next check is due, ``checks_done`` unresolved checks in, at ``now``."""
        return now + self.delay_after(checks_done)


@frozen(kw_only=True)
class ReconcileRow:
    """One transaction a run looked at: its status before and after, and why.

    ``error`` says why asking the gateway failed (the transaction stays as it was);
    ``checks`` counts the checks that have left it unresolved so far, and
    ``next_check_at`` is when the next one is due, for a transaction still unresolved.
    """

    transaction_id: str
    payment_id: str
    type: TransactionType
    amount: Money
    before: TransactionStatus
    after: TransactionStatus
    checks: int
    note: str
    next_check_at: datetime | None = None
    error: str | None = None

    @property
    def resolved(self) -> bool:
        return self.after not in UNRESOLVED


@frozen(kw_only=True)
class ReconcileReport:
    """What a run checked (``rows``, oldest transaction first) and what it left.

    In a dry run the rows list what is due, and nothing was asked or recorded.
    ``redelivered`` counts hook notifications delivered from the outbox.
    """

    rows: tuple[ReconcileRow, ...]
    dry_run: bool
    checked_at: datetime
    idle_before: datetime
    redelivered: int = 0

    @property
    def resolved(self) -> tuple[ReconcileRow, ...]:
        return tuple(row for row in self.rows if row.resolved)

    @property
    def unresolved(self) -> tuple[ReconcileRow, ...]:
        """The transactions still unresolved: the gateway could not settle them, or
        could not be asked (``error``). Nothing is done to them until their next check."""
        return tuple(row for row in self.rows if not row.resolved)

    @property
    def errors(self) -> tuple[ReconcileRow, ...]:
        """The unresolved transactions whose check failed (a gateway down, say)."""
        return tuple(row for row in self.rows if row.error is not None and not row.resolved)

    @property
    def counts(self) -> dict[str, int]:
        """``checked`` = ``resolved`` + ``unresolved``; ``errors`` are among the unresolved."""
        return {
            "checked": 0 if self.dry_run else len(self.rows),
            "due": len(self.rows),
            "resolved": len(self.resolved),
            "unresolved": len(self.unresolved),
            "errors": len(self.errors),
        }

    def summary(self) -> str:
        """One line: what was checked and what stays unresolved."""
        if self.dry_run:
            if not self.rows:
                return "dry run: nothing is due for a check"
            due = _count(len(self.rows), "transaction")
            return f"dry run: {due} due for a check; nothing was asked or recorded"
        if not self.rows:
            text = "nothing was due for a check"
        else:
            failed = len(self.errors)
            text = (
                f"{len(self.rows)} checked: {len(self.resolved)} resolved, "
                f"{len(self.unresolved)} still unresolved"
            )
            if failed:
                text += f" ({_count(failed, 'check')} failed)"
        return f"{text}; {_count(self.redelivered, 'hook notification')} redelivered"


class Reconciler:
    """Checks the ledger's unsettled transactions with their gateways; see the module.

    ``grace`` is how old a transaction must be before it is checked: longer than any
    caller still sending it would take. Time is the services' ``clock``, so what is
    due and when "the provider has no record" is final are judged by one clock.
    ``batch`` is how many transactions are read from the database at a time. Once
    ``max_failures`` checks in a row fail against one gateway, a run asks it nothing
    more: its other transactions are reported unchecked and stay due for the next run.
    """

    def __init__(
        self,
        services: PaymentTransactionServices,
        *,
        grace: timedelta = DEFAULT_GRACE,
        schedule: Schedule | None = None,
        batch: int = 500,
        max_failures: int = 3,
    ) -> None:
        if not isinstance(grace, timedelta) or grace < timedelta(0):
            raise InvalidRequest("grace must be a timedelta of zero or more")
        if not isinstance(batch, int) or batch < 1:
            raise InvalidRequest("batch must be a positive integer")
        if not isinstance(max_failures, int) or max_failures < 1:
            raise InvalidRequest("max_failures must be a positive integer")
        self.services = services
        self.grace = grace
        self.schedule = Schedule() if schedule is None else schedule
        self.clock = services.clock
        self.batch = batch
        self.max_failures = max_failures

    def run(
        self,
        *,
        older_than: timedelta | None = None,
        dry_run: bool = False,
        limit: int | None = None,
    ) -> ReconcileReport:
        """Check every transaction due (at most ``limit``), oldest first.

        ``older_than`` replaces the grace period for this run. With ``dry_run``, list
        what is due and do nothing else: no gateway is asked, nothing is recorded.
        """
        age = self.grace if older_than is None else older_than
        if not isinstance(age, timedelta) or age < timedelta(0):
            raise InvalidRequest("older_than must be a timedelta of zero or more")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidRequest("limit must be a positive integer")
        now = self.clock()
        try:
            idle_before = now - age
        except OverflowError:
            raise InvalidRequest(f"older_than is too long: at most {MAX_DURATION}") from None
        if dry_run:
            due = self._due(idle_before, now, limit)
            rows = tuple(_due_row(transaction) for transaction in due)
            return ReconcileReport(rows=rows, dry_run=True, checked_at=now, idle_before=idle_before)
        checked: list[ReconcileRow] = []
        failures: dict[str, int] = {}  # gateway -> checks failed in a row
        after: tuple[datetime, str] | None = None  # the last row read: pages never overlap
        while limit is None or len(checked) < limit:
            size = self.batch if limit is None else min(self.batch, limit - len(checked))
            due = self._due(idle_before, now, size, after)
            checked.extend(self._check(transaction, failures) for transaction in due)
            if len(due) < size:
                break
            after = (due[-1].updated_at, due[-1].id)
        return ReconcileReport(
            rows=tuple(checked),
            dry_run=False,
            checked_at=now,
            idle_before=idle_before,
            redelivered=self._redeliver(),
        )

    def _due(
        self,
        idle_before: datetime,
        now: datetime,
        limit: int | None,
        after: tuple[datetime, str] | None = None,
    ) -> list[PaymentTransaction]:
        with self.services.store.reading() as session:
            return session.unresolved(
                UNRESOLVED, updated_before=idle_before, due_by=now, limit=limit, after=after
            )

    def _check(self, transaction: PaymentTransaction, failures: dict[str, int]) -> ReconcileRow:
        """Ask the gateway about one transaction; whatever fails, report it and go on."""
        services = self.services
        next_check_at = self.schedule.next_check(transaction.checks + 1, self.clock())
        check: Check | None = None
        error: str | None = None
        try:
            gateway = services.ledger.payment(transaction.payment_id).gateway
            if failures.get(gateway, 0) >= self.max_failures:
                return _unasked_row(transaction, gateway, failures[gateway])
            check = services.check(transaction.id, next_check_at=next_check_at)
        except Exception as exc:  # one transaction's failure must not stop the run
            log.exception("reconciling transaction %s failed", transaction.id)
            error = _clip(one_line(exc))
        else:
            if check.error is not None:
                error = _clip(one_line(check.error))
            if check.asked:
                failures[gateway] = failures.get(gateway, 0) + 1 if check.error else 0
        after = transaction if check is None else check.transaction
        if error is not None:
            log.warning("checking transaction %s (%s) failed: %s", after.id, after.type, error)
        log.info(
            "transaction %s (%s): %s -> %s, next check %s",
            after.id,
            after.type,
            transaction.status,
            after.status,
            _when(after.next_check_at) if after.status in UNRESOLVED else "-",
        )
        return ReconcileRow(
            transaction_id=transaction.id,
            payment_id=transaction.payment_id,
            type=transaction.type,
            amount=after.amount,
            before=transaction.status,
            after=after.status,
            checks=after.checks,
            note=_note(
                after,
                None if check is None else check.answer,
                error,
                asked=check is not None and check.asked,
            ),
            next_check_at=after.next_check_at if after.status in UNRESOLVED else None,
            error=error,
        )

    def _redeliver(self) -> int:
        total = 0
        try:
            while True:
                count = self.services.ledger.outbox.redeliver(limit=self.batch)
                total += count
                if count < self.batch:
                    return total
        except Exception:
            log.exception("redelivering hook notifications failed; the next run tries again")
            return total


def _unasked_row(transaction: PaymentTransaction, gateway: str, failed: int) -> ReconcileRow:
    reason = f"not asked: gateway {gateway!r} failed {failed} checks in a row in this run"
    return _unchanged_row(transaction, f"{reason}; still due, for the next run", error=reason)


def _due_row(transaction: PaymentTransaction) -> ReconcileRow:
    return _unchanged_row(transaction, f"due: would be checked (check {transaction.checks + 1})")


def _unchanged_row(
    transaction: PaymentTransaction, note: str, *, error: str | None = None
) -> ReconcileRow:
    return ReconcileRow(
        transaction_id=transaction.id,
        payment_id=transaction.payment_id,
        type=transaction.type,
        amount=transaction.amount,
        before=transaction.status,
        after=transaction.status,
        checks=transaction.checks,
        note=note,
        next_check_at=transaction.next_check_at,
        error=error,
    )


def _note(
    transaction: PaymentTransaction,
    answer: GatewayResult | None,
    error: str | None,
    *,
    asked: bool,
) -> str:
    status = transaction.status
    if status is TransactionStatus.DECLINED:
        reason = transaction.decline_reason
        return f"declined: {reason.value if reason else transaction.decline_code or 'no reason'}"
    if status is TransactionStatus.FAILED:
        return _clip(f"{transaction.failure or 'failed'}: {transaction.message or ''}")
    if status is TransactionStatus.REQUIRES_ACTION:
        return "the customer must act (next_action)"
    if status is TransactionStatus.SUCCEEDED:
        reference = transaction.gateway_transaction_id
        return f"the gateway confirms it ({reference})" if reference else "the gateway confirms it"
    later = f"; next check {_when(transaction.next_check_at)}"
    if error is not None:
        return _clip(f"check failed: {error}") + later
    if not asked:
        return (
            "its gateway is not configured here or cannot be asked: waiting for a webhook" + later
        )
    if answer is not None and answer.decline_reason is DeclineReason.NOT_FOUND:
        return "the provider has no record of it yet; an attempt may still be in flight" + later
    return f"still {status} at the gateway" + later


def _clip(text: str) -> str:
    return text if len(text) <= _NOTE_LENGTH else text[: _NOTE_LENGTH - 1] + "…"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
