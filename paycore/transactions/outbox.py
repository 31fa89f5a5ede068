"""Hook notifications, committed with the change they report and delivered after it.

When the ledger records an outcome, the same database transaction queues one entry
for it (`Outbox.queue`): the transaction, and the payment's status before and after.
After commit, `Outbox.deliver` calls the hooks ("transaction recorded", then "payment
status changed" when it did) and the entry is dropped. A checkout that finishes
(completed or failed) queues its entry the same way (`Outbox.queue_checkout`,
`Outbox.deliver_checkout`: "checkout finished"). A process that stops between
the commit and the hooks leaves its entries behind; `Outbox.redeliver` (run by
reconciliation) delivers those, so hooks are delivered at least once.

Dropping delivered entries costs the operations nothing: a timer drops what was
delivered in the last couple of seconds in one commit, well before an entry could be
taken for a leftover; `close` drops the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from attrs import frozen

from paycore.transactions.model import PaymentStatus
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.store import Store, StoreSession

if TYPE_CHECKING:
    from paycore.checkout.model import Checkout

__all__ = ["FLUSH_DELAY", "Committed", "Outbox"]

log = logging.getLogger("paycore.hooks")

# Seconds after a delivery by which its entry is dropped, at the latest; well below
# the age at which `Outbox.redeliver` takes entries for leftovers.
FLUSH_DELAY = 2.0
REDELIVER_AFTER = timedelta(minutes=1)


@frozen
class Committed:
    """The records as committed by one outcome, and the outbox entries for its hooks."""

    payment: Payment
    transaction: PaymentTransaction
    changed: bool  # False: the transaction had been settled by someone else first
    previous_status: PaymentStatus
    outbox: tuple[int, ...] = ()


class Outbox:
    """The outbox of one `Store`; ``hooks`` is a pluggy hook relay, or None for none."""

    def __init__(self, store: Store, hooks: Any | None, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.hooks = hooks
        self.clock = clock
        self._delivered: list[int] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def queue(
        self,
        session: StoreSession,
        *,
        payment: Payment,
        transaction: PaymentTransaction,
        previous_status: PaymentStatus,
        at: datetime,
    ) -> tuple[int, ...]:
        """Queue the notifications of an outcome, in the database transaction recording it."""
        entry = session.add_to_outbox(
            payment_id=payment.id,
            transaction_id=transaction.id,
            previous_status=previous_status,
            status=payment.status,
            at=at,
        )
        return (entry,)

    def queue_checkout(
        self, session: StoreSession, *, checkout: Checkout, previous_status: str, at: datetime
    ) -> int:
        """Queue "checkout finished", in the database transaction that finished it."""
        return session.add_to_outbox(
            payment_id=None,
            transaction_id=None,
            checkout_id=checkout.id,
            previous_status=previous_status,
            status=checkout.status,
            at=at,
        )

    def deliver_checkout(self, checkout: Checkout, entry: int) -> None:
        """Call the "checkout finished" hook for a commit; its entry is dropped soon after."""
        if self.hooks is not None:
            self._call("paycore_checkout_finished", checkout=checkout)
        self._delivered_soon((entry,))

    def deliver(self, committed: Committed) -> None:
        """Call the hooks for a commit; its entry is dropped by the timer soon after."""
        if not committed.outbox:
            return
        if self.hooks is not None:
            self._call(
                "paycore_transaction_recorded",
                payment=committed.payment,
                transaction=committed.transaction,
            )
            if committed.payment.status != committed.previous_status:
                self._call(
                    "paycore_payment_status_changed",
                    payment=committed.payment,
                    previous_status=committed.previous_status,
                    transaction=committed.transaction,
                )
        self._delivered_soon(committed.outbox)

    def _delivered_soon(self, entries: tuple[int, ...]) -> None:
        with self._lock:
            self._delivered.extend(entries)
            if self._timer is None:
                self._timer = threading.Timer(FLUSH_DELAY, self._timed_flush)
                self._timer.daemon = True
                self._timer.start()

    def redeliver(self, *, older_than: timedelta = REDELIVER_AFTER, limit: int = 500) -> int:
        """Deliver notifications left behind by a process that stopped; how many.

        Each entry is one or two notifications (recorded, and status changed), or one
        for a finished checkout.
        """
        self.flush()  # what this process delivered is no leftover
        with self.store.reading() as session:
            entries = session.outbox_entries(created_before=self.clock() - older_than, limit=limit)
        delivered = []
        notifications = 0
        for entry in entries:
            if entry["checkout_id"] is not None:
                notifications += 1
                self._redeliver_checkout(entry["checkout_id"])
                delivered.append(entry["id"])
                continue
            with self.store.reading() as session:
                payment = session.payment(entry["payment_id"])
                transaction = (
                    None
                    if entry["transaction_id"] is None
                    else session.transaction(entry["transaction_id"])
                )
            changed = entry["status"] != entry["previous_status"]
            notifications += 2 if changed else 1
            if payment is not None and self.hooks is not None:
                self._call("paycore_transaction_recorded", payment=payment, transaction=transaction)
                if changed:
                    self._call(
                        "paycore_payment_status_changed",
                        payment=payment,
                        previous_status=PaymentStatus(entry["previous_status"]),
                        transaction=transaction,
                    )
            delivered.append(entry["id"])
        with self.store.writing() as session:
            session.remove_from_outbox(delivered)
        return notifications

    def _redeliver_checkout(self, checkout_id: str) -> None:
        from paycore.checkout.store import CheckoutStore

        if self.hooks is not None:
            checkout = CheckoutStore(self.store).get(checkout_id)
            self._call("paycore_checkout_finished", checkout=checkout)

    def flush(self) -> None:
        """Drop the entries delivered so far now, in a commit of their own."""
        with self._lock:
            ids = list(self._delivered)
        if not ids:
            return
        with self.store.writing() as session:
            session.remove_from_outbox(ids)
        # Forgotten only once the delete is committed: a failed one is tried again.
        with self._lock:
            dropped = set(ids)
            self._delivered = [entry for entry in self._delivered if entry not in dropped]

    def close(self) -> None:
        """Drop what was delivered and stop the timer (before closing the store)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception:
            log.exception("could not drop delivered outbox entries; reconciliation may repeat them")

    def _call(self, hook: str, **kwargs: Any) -> None:
        try:
            getattr(self.hooks, hook)(**kwargs)
        except Exception:
            log.exception("hook %s failed; the operation's result stands", hook)
