"""The checkout's queries: checkouts, their payments and stored methods (DESIGN §6, §7).

Each method is one short database transaction on the ledger's `Store`; none is held
across a call to a gateway. A checkout's row is the lock that orders what happens to
it: linking a payment, submitting, and finishing (``completed`` or ``failed``) each
lock it first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's writers are serialised
already), so two processes finishing one checkout at once finish it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.engine import Connection

from paycore.checkout.model import (
    Cart,
    Checkout,
    CheckoutFailure,
    CheckoutStatus,
    StoredMethod,
)
from paycore.errors import IdempotencyConflict, InvalidAmount, NotFound, StateError
from paycore.money import Money
from paycore.transactions.ledger import fingerprint
from paycore.transactions.model import PaymentStatus, SavedMethod
from paycore.transactions.outbox import Outbox
from paycore.transactions.records import Payment
from paycore.transactions.schema import checkout_payments, checkouts, payments, stored_methods
from paycore.transactions.store import Store, _aware, _when

__all__ = [
    "HOLDING",
    "REMOVABLE",
    "CheckoutStore",
    "Finished",
    "checkout_fingerprint",
    "fully_paid",
]

# A payment that holds the customer's money: reserved or taken.
HOLDING = frozenset(
    {PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_CAPTURED, PaymentStatus.CAPTURED}
)
# What a payment may be to leave an open checkout (what it holds is then released):
# not while the customer may still pay it.
REMOVABLE = frozenset(
    HOLDING
    | {
        PaymentStatus.NEW,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.VOIDED,
        PaymentStatus.REFUNDED,
    }
)


def fully_paid(payment: Payment) -> bool:
    """Whether the payment holds all its amount (not a partial approval, nothing given back)."""
    return (
        payment.status in HOLDING
        and payment.authorized == payment.amount
        and payment.refunded.is_zero()
    )


@frozen
class Finished:
    """What `CheckoutStore.finish` did: the checkout as committed, and the outbox entry
    of its "checkout finished" notification when this call is the one that finished it."""

    checkout: Checkout
    outbox: int | None = None


class CheckoutStore:
    """Checkouts and stored methods in the ledger's database."""

    def __init__(self, store: Store, outbox: Outbox | None = None) -> None:
        self.store = store
        self.outbox = outbox
        self._lock = store.dialect == "postgresql"

    # -- checkouts -------------------------------------------------------------------------

    def create(
        self, checkout: Checkout, *, idempotency_key: str | None, fingerprint: str
    ) -> Checkout:
        """Insert ``checkout``, or return the one created before with ``idempotency_key``."""
        if idempotency_key is not None:
            found = self._by_key(idempotency_key, fingerprint)
            if found is not None:
                return found
        try:
            with self.store.writing() as session:
                session.connection.execute(
                    checkouts.insert(),
                    {**_checkout_values(checkout), "idempotency_key": idempotency_key},
                )
        except sa.exc.IntegrityError:
            # Two callers raced with one key: the other one's insert won.
            found = None if idempotency_key is None else self._by_key(idempotency_key, fingerprint)
            if found is None:
                raise
            return found
        return checkout

    def _by_key(self, key: str, fingerprint: str) -> Checkout | None:
        with self.store.reading() as session:
            row = session.connection.execute(
                checkouts.select().where(checkouts.c.idempotency_key == key)
            ).first()
            if row is None:
                return None
            checkout = _checkout_from(row._mapping, _payment_ids(session.connection, row.id))
        if checkout_fingerprint(checkout) != fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was used for another checkout (another owner or cart)"
            )
        return checkout

    def get(self, checkout_id: str) -> Checkout:
        with self.store.reading() as session:
            return _read(session.connection, checkout_id)

    def checkout_of_payment(self, payment_id: str) -> str | None:
        with self.store.reading() as session:
            row = session.connection.execute(
                sa.select(checkout_payments.c.checkout_id).where(
                    checkout_payments.c.payment_id == payment_id
                )
            ).first()
        return None if row is None else str(row.checkout_id)

    def unfinished(self, *, updated_before: datetime, limit: int) -> list[str]:
        """Checkouts to complete again, oldest first, not changed since
        ``updated_before``: submitted ones, failed ones still holding money (a payment
        that went through after its checkout failed), and any with a payment taken out
        of it that still holds money."""
        holding_statuses = [status.value for status in HOLDING]
        holding = (
            sa.select(checkout_payments.c.checkout_id)
            .join(payments, payments.c.id == checkout_payments.c.payment_id)
            .where(payments.c.status.in_(holding_statuses))
        )
        # Payments made for a checkout, taken out of it, and still holding money.
        detached = (
            sa.select(payments.c.owner)
            .where(payments.c.status.in_(holding_statuses))
            .where(payments.c.id.not_in(sa.select(checkout_payments.c.payment_id)))
        )
        with self.store.reading() as session:
            rows = session.connection.execute(
                sa.select(checkouts.c.id)
                .where(checkouts.c.updated_at < updated_before)
                .where(
                    (checkouts.c.status == CheckoutStatus.SUBMITTED.value)
                    | (
                        (checkouts.c.status == CheckoutStatus.FAILED.value)
                        & checkouts.c.id.in_(holding)
                    )
                    | checkouts.c.id.in_(detached)
                )
                .order_by(checkouts.c.updated_at)
                .limit(limit)
            )
            return [str(row.id) for row in rows]

    def stale(self, *, created_before: datetime, limit: int) -> list[str]:
        """Open or submitted checkouts created before ``created_before``, oldest first."""
        with self.store.reading() as session:
            rows = session.connection.execute(
                sa.select(checkouts.c.id)
                .where(
                    checkouts.c.status.in_(
                        [CheckoutStatus.OPEN.value, CheckoutStatus.SUBMITTED.value]
                    )
                )
                .where(checkouts.c.created_at < created_before)
                .order_by(checkouts.c.created_at)
                .limit(limit)
            )
            return [str(row.id) for row in rows]

    def touch(self, checkout_id: str, now: datetime) -> None:
        """Note that the checkout was looked at (the sweep takes the longest unseen first)."""
        with self.store.writing() as session:
            _touch(session.connection, checkout_id, now)

    def link(self, checkout_id: str, payment_id: str, amount: Money, now: datetime) -> Checkout:
        """Add the payment to the open checkout, unless that would pay more than its total."""
        with self.store.writing() as session:
            connection = session.connection
            checkout = self._locked(connection, checkout_id)
            if payment_id in checkout.payment_ids:
                return checkout
            _require_open(checkout, "add a payment to")
            paid = _sum_of(connection, checkout)
            remaining = checkout.total.minor_units - paid
            if amount.minor_units > remaining:
                raise InvalidAmount(
                    f"{amount} is more than what remains to pay of checkout {checkout_id} "
                    f"({Money(remaining, checkout.total.currency)})"
                )
            last = connection.execute(
                sa.select(sa.func.max(checkout_payments.c.position)).where(
                    checkout_payments.c.checkout_id == checkout_id
                )
            ).scalar()
            position = 0 if last is None else int(last) + 1
            connection.execute(
                checkout_payments.insert(),
                {"checkout_id": checkout_id, "payment_id": payment_id, "position": position},
            )
            _touch(connection, checkout_id, now)
            return _read(connection, checkout_id)

    def unlink(
        self,
        checkout_id: str,
        payment_id: str,
        now: datetime,
        *,
        removable: frozenset[PaymentStatus],
    ) -> Payment:
        """Take the payment out of the open checkout, judged as it stands under the lock.

        Its status must be one of ``removable``; it is returned as it stands, for the
        caller to release what it holds. Taking out one taken out before returns it.
        """
        with self.store.writing() as session:
            connection = session.connection
            checkout = self._locked(connection, checkout_id)
            payment = session.payment(payment_id, lock=True)
            if payment is None or payment.owner != checkout_id:
                raise NotFound("payment of the checkout", payment_id)
            if payment_id not in checkout.payment_ids:
                return payment
            _require_open(checkout, "remove a payment from")
            if payment.status not in removable:
                raise StateError(
                    f"payment {payment_id} is {payment.status}: the customer may still pay "
                    "it; wait until it succeeds, fails or expires"
                )
            connection.execute(
                checkout_payments.delete().where(checkout_payments.c.payment_id == payment_id)
            )
            _touch(connection, checkout_id, now)
            return payment

    def submit(self, checkout_id: str, now: datetime) -> Checkout:
        """Move an open checkout whose payments cover its total exactly to ``submitted``."""
        with self.store.writing() as session:
            connection = session.connection
            checkout = self._locked(connection, checkout_id)
            if checkout.status is not CheckoutStatus.OPEN:
                return checkout
            paid = _sum_of(connection, checkout)
            if paid != checkout.total.minor_units:
                covered = Money(paid, checkout.total.currency)
                raise StateError(
                    f"checkout {checkout_id} cannot be submitted: its payments add up to "
                    f"{covered}, its total is {checkout.total}; they must be equal"
                )
            connection.execute(
                checkouts.update()
                .where(checkouts.c.id == checkout_id)
                .values(status=CheckoutStatus.SUBMITTED.value, updated_at=now)
            )
            return _read(connection, checkout_id)

    def finish(
        self,
        checkout_id: str,
        now: datetime,
        *,
        order_id: str | None = None,
        failure: CheckoutFailure | None = None,
        saved: Iterable[StoredMethod] = (),
    ) -> Finished:
        """Complete the checkout as ``order_id`` or fail it with ``failure``, once.

        A checkout already finished is returned as it is (no ``outbox`` entry). On
        completion, its payments move to the order (`Payment.owner`) and the methods
        its customer asked to save are stored, in the same commit. Completion is judged
        again under the lock: the checkout's payments, as they stand now, must hold
        its total; otherwise nothing changes.
        """
        assert (order_id is None) != (failure is None)
        with self.store.writing() as session:
            connection = session.connection
            checkout = self._locked(connection, checkout_id)
            if checkout.status.is_final:
                return Finished(checkout)
            if order_id is not None and not _holds_total(connection, checkout):
                return Finished(checkout)
            if order_id is not None:
                connection.execute(
                    checkouts.update()
                    .where(checkouts.c.id == checkout_id)
                    .values(
                        status=CheckoutStatus.COMPLETED.value,
                        order_id=order_id,
                        completed_at=now,
                        updated_at=now,
                    )
                )
                if checkout.payment_ids:
                    connection.execute(
                        payments.update()
                        .where(payments.c.id.in_(checkout.payment_ids))
                        .values(owner=order_id)
                    )
                for method in saved:
                    _insert_method(connection, method)
            else:
                assert failure is not None
                connection.execute(
                    checkouts.update()
                    .where(checkouts.c.id == checkout_id)
                    .values(
                        status=CheckoutStatus.FAILED.value,
                        failed_payment_id=failure.payment_id,
                        failure_reason=failure.reason[:64],
                        failure_message=failure.message,
                        completed_at=now,
                        updated_at=now,
                    )
                )
            finished = _read(connection, checkout_id)
            entry = None
            if self.outbox is not None:
                entry = self.outbox.queue_checkout(
                    session, checkout=finished, previous_status=checkout.status, at=now
                )
            return Finished(finished, entry)

    def _locked(self, connection: Connection, checkout_id: str) -> Checkout:
        query = checkouts.select().where(checkouts.c.id == checkout_id)
        if self._lock:
            query = query.with_for_update()
        row = connection.execute(query).first()
        if row is None:
            raise NotFound("checkout", checkout_id)
        return _checkout_from(row._mapping, _payment_ids(connection, checkout_id))

    # -- stored methods ----------------------------------------------------------------------

    def store_method(self, method: StoredMethod) -> StoredMethod:
        """Keep ``method``; the one kept before for the same gateway token, if any."""
        with self.store.writing() as session:
            return _insert_method(session.connection, method)

    def methods_of(self, owner: str) -> tuple[StoredMethod, ...]:
        with self.store.reading() as session:
            rows = session.connection.execute(
                stored_methods.select()
                .where(stored_methods.c.owner == owner)
                .order_by(stored_methods.c.created_at, stored_methods.c.id)
            )
            return tuple(_method_from(row._mapping) for row in rows)

    def method(self, owner: str, method_id: str) -> StoredMethod:
        """The owner's stored method; `NotFound` for another owner's, as for none."""
        with self.store.reading() as session:
            row = session.connection.execute(
                stored_methods.select()
                .where(stored_methods.c.id == method_id)
                .where(stored_methods.c.owner == owner)
            ).first()
        if row is None:
            raise NotFound("stored method", method_id)
        return _method_from(row._mapping)

    def forget_method(self, method_id: str) -> None:
        with self.store.writing() as session:
            session.connection.execute(
                stored_methods.delete().where(stored_methods.c.id == method_id)
            )


# -- rows ---------------------------------------------------------------------------------


def checkout_fingerprint(checkout: Checkout) -> str:
    """What makes two checkout requests the same: owner, cart and capture mode."""
    cart = checkout.cart
    return fingerprint(
        checkout.owner, cart.currency.code, cart.country, cart.as_json(), checkout.capture.value
    )


def _require_open(checkout: Checkout, doing: str) -> None:
    if checkout.status is not CheckoutStatus.OPEN:
        raise StateError(f"cannot {doing} checkout {checkout.id}: it is {checkout.status}")


def _sum_of(connection: Connection, checkout: Checkout) -> int:
    if not checkout.payment_ids:
        return 0
    rows = connection.execute(
        sa.select(payments.c.amount).where(payments.c.id.in_(checkout.payment_ids))
    )
    return sum(int(row.amount) for row in rows)


def _holds_total(connection: Connection, checkout: Checkout) -> bool:
    """Whether every payment of the checkout holds all its amount and they add up to the
    total (judged on the rows as they stand)."""
    if not checkout.payment_ids:
        return False
    rows = connection.execute(
        sa.select(
            payments.c.amount, payments.c.authorized, payments.c.refunded, payments.c.status
        ).where(payments.c.id.in_(checkout.payment_ids))
    ).all()
    holding = {status.value for status in HOLDING}
    return (
        len(rows) == len(checkout.payment_ids)
        and all(
            row.status in holding and row.authorized == row.amount and row.refunded == 0
            for row in rows
        )
        and sum(int(row.amount) for row in rows) == checkout.total.minor_units
    )


def _touch(connection: Connection, checkout_id: str, now: datetime) -> None:
    connection.execute(
        checkouts.update().where(checkouts.c.id == checkout_id).values(updated_at=now)
    )


def _read(connection: Connection, checkout_id: str) -> Checkout:
    row = connection.execute(checkouts.select().where(checkouts.c.id == checkout_id)).first()
    if row is None:
        raise NotFound("checkout", checkout_id)
    return _checkout_from(row._mapping, _payment_ids(connection, checkout_id))


def _payment_ids(connection: Connection, checkout_id: str) -> tuple[str, ...]:
    rows = connection.execute(
        sa.select(checkout_payments.c.payment_id)
        .where(checkout_payments.c.checkout_id == checkout_id)
        .order_by(checkout_payments.c.position)
    )
    return tuple(str(row.payment_id) for row in rows)


def _checkout_values(checkout: Checkout) -> dict[str, Any]:
    cart = checkout.cart
    return {
        "id": checkout.id,
        "owner": checkout.owner,
        "status": checkout.status.value,
        "currency": cart.currency.code,
        "total": cart.total.minor_units,
        "items": cart.as_json(),
        "country": cart.country,
        "capture": checkout.capture.value,
        "order_id": checkout.order_id,
        "created_at": checkout.created_at,
        "updated_at": checkout.updated_at,
        "completed_at": checkout.completed_at,
    }


def _checkout_from(row: Mapping[Any, Any], payment_ids: tuple[str, ...]) -> Checkout:
    failure = None
    if row["failure_reason"] is not None:
        failure = CheckoutFailure(
            payment_id=row["failed_payment_id"],
            reason=row["failure_reason"] or "failed",
            message=row["failure_message"],
        )
    return Checkout(
        id=row["id"],
        owner=row["owner"],
        status=row["status"],
        cart=Cart.from_json(row["currency"], row["items"], row["country"]),
        capture=row["capture"],
        payment_ids=payment_ids,
        order_id=row["order_id"],
        failure=failure,
        created_at=_when(row["created_at"]),
        updated_at=_when(row["updated_at"]),
        completed_at=_aware(row["completed_at"]),
    )


def _insert_method(connection: Connection, method: StoredMethod) -> StoredMethod:
    saved = method.method
    existing = connection.execute(
        stored_methods.select()
        .where(stored_methods.c.gateway == saved.gateway)
        .where(stored_methods.c.token == saved.token)
    ).first()
    if existing is not None:
        kept = _method_from(existing._mapping)
        if kept.owner != method.owner:
            raise StateError(f"gateway {saved.gateway!r} keeps that method for another customer")
        return kept
    connection.execute(
        stored_methods.insert(),
        {
            "id": method.id,
            "owner": method.owner,
            "gateway": saved.gateway,
            "token": saved.token,
            "customer_reference": saved.customer_reference,
            "type": saved.type,
            "brand": saved.brand,
            "last4": saved.last4,
            "exp_month": saved.exp_month,
            "exp_year": saved.exp_year,
            "created_at": method.created_at,
        },
    )
    return method


def _method_from(row: Mapping[Any, Any]) -> StoredMethod:
    created_at = _when(row["created_at"])
    return StoredMethod(
        id=row["id"],
        owner=row["owner"],
        method=SavedMethod(
            gateway=row["gateway"],
            token=row["token"],
            customer_reference=row["customer_reference"],
            type=row["type"],
            brand=row["brand"],
            last4=row["last4"],
            exp_month=row["exp_month"],
            exp_year=row["exp_year"],
        ),
        created_at=created_at,
    )
