"""The ledger's tables and every query on them: SQLAlchemy Core 2.x (DESIGN §6).

Four tables: ``payments``, ``transactions`` (unique per payment and idempotency
key), ``webhook_events`` (unique per gateway and provider event id) and ``outbox``
(hook notifications committed with the change they report, delivered after commit).

Two databases, one code path:

- **SQLite**, the embedded default: WAL journal, ``synchronous=FULL`` (a commit is
  on disk when it returns), and ``BEGIN IMMEDIATE`` for writes, so a writer holds the
  database's write lock from its first statement and never fails midway on a
  conflict; others wait up to ``busy_timeout``.
- **PostgreSQL** (psycopg 3) for production and several processes: read committed,
  and ``SELECT … FOR UPDATE`` on the payment row serialises mutations of one payment.

`Store.writing()` and `Store.reading()` open short database transactions as a
`StoreSession`; the services never hold one across network I/O. Card data never
reaches these tables: a payment method is a type and a provider token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from attrs import asdict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from paycore.errors import ConfigurationError
from paycore.money import Money
from paycore.transactions.model import (
    Customer,
    DeclineReason,
    NextAction,
    NextActionKind,
    PaymentMethod,
    PaymentStatus,
    SavedMethod,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.schema import metadata, outbox, payments, transactions, webhook_events

__all__ = [
    "Store",
    "StoreSession",
    "metadata",
    "outbox",
    "payments",
    "transactions",
    "webhook_events",
]

_BEGIN = "paycore_begin"  # execution option read by the SQLite "begin" listener
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for SQLite's write lock
IDLE_BEFORE_PING = 2.0  # seconds a pooled PostgreSQL connection may idle unchecked
_CHECKED_IN = "paycore_checked_in"


def _engine_for(url: str, **options: Any) -> Engine:
    """An engine for ``url``, with paycore's settings for its database."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigurationError("database_url", ["not a database URL"]) from None
    backend = parsed.get_backend_name()
    # A database error's message never quotes the values of its statement.
    options.setdefault("hide_parameters", True)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, **options)
        if not options.get("pool_pre_ping"):
            _ping_when_idle(engine)
        return engine
    if backend != "sqlite":
        raise ConfigurationError(
            "database_url", [f"{backend}: paycore stores its ledger in SQLite or PostgreSQL"]
        )
    memory = parsed.database in (None, "", ":memory:")
    connect_args = options.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT)
    connect_args.setdefault("check_same_thread", False)
    if memory:
        options.setdefault("poolclass", StaticPool)
    engine = sa.create_engine(parsed, connect_args=connect_args, **options)
    _tune_sqlite(engine, memory=memory)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle: it may have gone stale.

    A server restart or an idle timeout leaves dead connections in the pool. Pinging on
    every checkout (``pool_pre_ping``) costs a round trip per database transaction; a
    connection in steady use is alive, so only one idle for a while is pinged, and a
    dead one is replaced before the ledger uses it.
    """

    @sa.event.listens_for(engine, "checkin")
    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < IDLE_BEFORE_PING:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as error:
            # The pool discards this connection and checks out another.
            raise sa.exc.DisconnectionError("a pooled connection went stale") from error


def _tune_sqlite(engine: Engine, *, memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, _: Any) -> None:
        # paycore issues BEGIN itself (below): the driver's own transaction handling
        # would start deferred transactions at the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# The statements of the hot path, built once: building a statement per call (values
# bound into it, a cache key computed over them) costs more than running it.
_PAYMENT = payments.select().where(payments.c.id == sa.bindparam("id"))
_PAYMENT_LOCKED = _PAYMENT.with_for_update()
_PAYMENT_BY_KEY = payments.select().where(payments.c.idempotency_key == sa.bindparam("key"))
_PAYMENTS_OF_OWNER = (
    payments.select()
    .where(payments.c.owner == sa.bindparam("owner"))
    .order_by(payments.c.created_at, payments.c.id)
)
_INSERT_PAYMENT = payments.insert()
_UPDATE_PAYMENT = payments.update().where(payments.c.id == sa.bindparam("match_id"))
_TRANSACTION = transactions.select().where(transactions.c.id == sa.bindparam("id"))
_TRANSACTIONS_OF = (
    transactions.select()
    .where(transactions.c.payment_id == sa.bindparam("payment_id"))
    .order_by(transactions.c.created_at, transactions.c.id)
)
_TRANSACTIONS_BY_KEY = (
    transactions.select()
    .where(transactions.c.payment_id.in_(sa.bindparam("payment_ids", expanding=True)))
    .where(transactions.c.idempotency_key == sa.bindparam("key"))
)
_INSERT_TRANSACTION = transactions.insert()
# Bound parameters per query stay far below SQLite's limit (32,766).
_EVENT_IDS_PER_QUERY = 500
_STORED_EVENTS = (
    sa.select(webhook_events.c.event_id, payments.c.id.label("owned_payment_id"))
    .select_from(
        webhook_events.outerjoin(
            payments,
            sa.and_(payments.c.id == webhook_events.c.payment_id, payments.c.owner.is_not(None)),
        )
    )
    .where(webhook_events.c.gateway == sa.bindparam("gateway"))
    .where(webhook_events.c.event_id.in_(sa.bindparam("event_ids", expanding=True)))
)
# Keyed by "is it PostgreSQL": each dialect's insert that does nothing on a stored event.
_RECORD_EVENT = {
    postgres: (postgresql.insert if postgres else sqlite.insert)(webhook_events)
    .on_conflict_do_nothing(index_elements=["gateway", "event_id"])
    .returning(webhook_events.c.id)
    for postgres in (False, True)
}
_UPDATE_TRANSACTION = (
    transactions.update()
    .where(transactions.c.id == sa.bindparam("match_id"))
    .where(transactions.c.status.in_(sa.bindparam("expected", expanding=True)))
)
_UPDATE_TRANSACTION_FROM_ONE = (
    transactions.update()
    .where(transactions.c.id == sa.bindparam("match_id"))
    .where(transactions.c.status == sa.bindparam("expected"))
)
_NOTE_CHECK = (
    transactions.update()
    .where(transactions.c.id == sa.bindparam("match_id"))
    .where(transactions.c.status == sa.bindparam("expected"))
    .values(checks=transactions.c.checks + 1)
)
_INSERT_OUTBOX = outbox.insert()
_DELETE_OUTBOX = outbox.delete().where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))


class Store:
    """The ledger's database: where payments, transactions, events and the outbox live.

    Build one with `Store.connect` (a URL: ``sqlite:///paycore.db``,
    ``postgresql://user@host/db``) and create or migrate its schema with `upgrade`.
    Thread-safe; share one per process and `close` it at the end.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Writers start with SQLite's write lock (BEGIN IMMEDIATE); the option is set
        # once, on an engine sharing the pool, rather than on every connection.
        self._writer = (
            engine.execution_options(**{_BEGIN: "IMMEDIATE"})
            if self.dialect == "sqlite"
            else engine
        )
        self._locking = self.dialect == "postgresql"

    @classmethod
    def connect(cls, url: str, **engine_options: Any) -> Store:
        return cls(_engine_for(url, **engine_options))

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision`` (the newest by default)."""
        from paycore.transactions.migrate import upgrade

        upgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None before the first upgrade)."""
        from paycore.transactions.migrate import current_revision

        return current_revision(self.engine)

    @contextmanager
    def writing(self) -> Iterator[StoreSession]:
        """A database transaction that writes; commits on success, rolls back on error."""
        with self._writer.connect() as connection, connection.begin():
            yield StoreSession(connection, locking=self._locking)

    @contextmanager
    def reading(self) -> Iterator[StoreSession]:
        """A database transaction that only reads."""
        with self.engine.connect() as connection, connection.begin():
            yield StoreSession(connection, locking=False)

    def close(self) -> None:
        self.engine.dispose()


class StoreSession:
    """The queries of one database transaction (from `Store.writing` or `Store.reading`)."""

    def __init__(self, connection: Connection, *, locking: bool) -> None:
        self.connection = connection
        self._locking = locking

    # -- payments ----------------------------------------------------------------------

    def insert_payment(self, payment: Payment, *, fingerprint: str | None = None) -> None:
        self.connection.execute(
            _INSERT_PAYMENT, {**_payment_values(payment), "fingerprint": fingerprint}
        )

    def update_payment(self, payment: Payment) -> None:
        """Store what moves after creation: status, totals, the provider's references.

        The rest (amount, gateway, method, customer, owner …) is fixed when the payment
        is created and is not written again.
        """
        self.connection.execute(
            _UPDATE_PAYMENT,
            {
                "match_id": payment.id,
                "status": payment.status.value,
                "authorized": payment.authorized.minor_units,
                "captured": payment.captured.minor_units,
                "refunded": payment.refunded.minor_units,
                "capturable": payment.capturable.minor_units,
                "gateway_reference": payment.gateway_reference,
                "authorization_expires_at": payment.authorization_expires_at,
                "updated_at": payment.updated_at,
            },
        )

    def payment(self, payment_id: str, *, lock: bool = False) -> Payment | None:
        """The payment, locked against other writers until commit when ``lock``."""
        query = _PAYMENT_LOCKED if lock and self._locking else _PAYMENT
        row = self.connection.execute(query, {"id": payment_id}).first()
        return None if row is None else _payment_from(row._mapping)

    def payment_by_key(self, idempotency_key: str) -> tuple[Payment, str | None] | None:
        """The payment created with ``idempotency_key``, with its request fingerprint."""
        row = self.connection.execute(_PAYMENT_BY_KEY, {"key": idempotency_key}).first()
        return None if row is None else (_payment_from(row._mapping), row.fingerprint)

    def payment_by_reference(self, gateway: str, gateway_reference: str) -> Payment | None:
        row = self.connection.execute(
            payments.select()
            .where(payments.c.gateway == gateway)
            .where(payments.c.gateway_reference == gateway_reference)
            .limit(1)
        ).first()
        return None if row is None else _payment_from(row._mapping)

    def payments_of_owner(self, owner: str) -> list[Payment]:
        rows = self.connection.execute(_PAYMENTS_OF_OWNER, {"owner": owner})
        return [_payment_from(row._mapping) for row in rows]

    def expiring_authorizations(self, before: datetime, *, limit: int) -> list[Payment]:
        rows = self.connection.execute(
            payments.select()
            .where(payments.c.capturable > 0)
            .where(payments.c.authorization_expires_at.is_not(None))
            .where(payments.c.authorization_expires_at < before)
            .order_by(payments.c.authorization_expires_at, payments.c.id)
            .limit(limit)
        )
        return [_payment_from(row._mapping) for row in rows]

    def count_payments(self) -> int:
        return int(
            self.connection.execute(sa.select(sa.func.count()).select_from(payments)).one()[0]
        )

    # -- transactions ------------------------------------------------------------------

    def insert_transaction(self, transaction: PaymentTransaction) -> None:
        self.connection.execute(_INSERT_TRANSACTION, _transaction_values(transaction))

    def update_transaction(
        self, transaction: PaymentTransaction, *, expected: Iterable[TransactionStatus]
    ) -> bool:
        """Store ``transaction`` if its stored status is one of ``expected``.

        Returns whether it was stored: False when someone else resolved it first.
        Reconciliation's bookkeeping (``checks``, ``next_check_at``) is left to
        `note_check`, so a writer holding an older copy cannot undo it.
        """
        values = _transaction_values(transaction)
        for fixed in ("id", "created_at", "checks", "next_check_at"):
            del values[fixed]
        statuses = [status.value for status in expected]
        statement = _UPDATE_TRANSACTION_FROM_ONE if len(statuses) == 1 else _UPDATE_TRANSACTION
        wanted: str | list[str] = statuses[0] if len(statuses) == 1 else statuses
        result = self.connection.execute(
            statement, {**values, "match_id": transaction.id, "expected": wanted}
        )
        return bool(result.rowcount == 1)

    def note_check(
        self, transaction_id: str, *, status: TransactionStatus, next_check_at: datetime | None
    ) -> bool:
        """Count one more check of a transaction still in ``status``; schedule the next."""
        result = self.connection.execute(
            _NOTE_CHECK,
            {"match_id": transaction_id, "expected": status.value, "next_check_at": next_check_at},
        )
        return bool(result.rowcount == 1)

    def transaction(self, transaction_id: str) -> PaymentTransaction | None:
        row = self.connection.execute(_TRANSACTION, {"id": transaction_id}).first()
        return None if row is None else _transaction_from(row._mapping)

    def transaction_by_key(
        self, payment_id: str, idempotency_key: str
    ) -> PaymentTransaction | None:
        row = self.connection.execute(
            transactions.select()
            .where(transactions.c.payment_id == payment_id)
            .where(transactions.c.idempotency_key == idempotency_key)
        ).first()
        return None if row is None else _transaction_from(row._mapping)

    def transactions_by_key(
        self, payment_ids: Sequence[str], idempotency_key: str
    ) -> list[PaymentTransaction]:
        """The transactions of ``payment_ids`` made under ``idempotency_key`` (one query)."""
        if not payment_ids:
            return []
        rows = self.connection.execute(
            _TRANSACTIONS_BY_KEY, {"payment_ids": list(payment_ids), "key": idempotency_key}
        )
        return [_transaction_from(row._mapping) for row in rows]

    def transactions_of(
        self, payment_id: str, *, statuses: Iterable[TransactionStatus] | None = None
    ) -> list[PaymentTransaction]:
        """The payment's transactions, oldest first (only ``statuses`` when given)."""
        rows = self.connection.execute(_TRANSACTIONS_OF, {"payment_id": payment_id})
        found = [_transaction_from(row._mapping) for row in rows]
        if statuses is None:
            return found
        wanted = frozenset(statuses)
        return [transaction for transaction in found if transaction.status in wanted]

    def unresolved(
        self,
        statuses: Iterable[TransactionStatus],
        *,
        updated_before: datetime,
        due_by: datetime | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[PaymentTransaction]:
        """Transactions in ``statuses`` last sent or changed before ``updated_before``.

        Oldest first; with ``due_by``, only those whose next check is due by then; with
        ``after`` (the ``updated_at`` and id of the last row of a previous page), only
        those after it. A failed transaction sent again counts from when it was sent.
        """
        query = (
            transactions.select()
            .where(transactions.c.status.in_([status.value for status in statuses]))
            .where(transactions.c.updated_at < updated_before)
        )
        if due_by is not None:
            query = query.where(
                sa.or_(
                    transactions.c.next_check_at.is_(None), transactions.c.next_check_at <= due_by
                )
            )
        if after is not None:
            query = query.where(
                sa.tuple_(transactions.c.updated_at, transactions.c.id) > sa.tuple_(*after)
            )
        query = query.order_by(transactions.c.updated_at, transactions.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [_transaction_from(row._mapping) for row in self.connection.execute(query)]

    # -- webhook events ----------------------------------------------------------------

    def record_event(self, values: Mapping[str, Any]) -> bool:
        """Store a webhook event once; False when ``(gateway, event_id)`` was stored before."""
        # Whether a row came back, not rowcount: with RETURNING (which SQLAlchemy adds
        # for PostgreSQL inserts) the driver reports no row count.
        insert = _RECORD_EVENT[self.connection.dialect.name == "postgresql"]
        return self.connection.execute(insert, dict(values)).first() is not None

    def stored_events(self, gateway: str, event_ids: Iterable[str]) -> dict[str, str | None]:
        """Which of ``event_ids`` were stored before, each with the payment it named when
        that payment has an owner (a checkout's or an order's), else None."""
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, str | None] = {}
        for start in range(0, len(wanted), _EVENT_IDS_PER_QUERY):
            chunk = wanted[start : start + _EVENT_IDS_PER_QUERY]
            rows = self.connection.execute(_STORED_EVENTS, {"gateway": gateway, "event_ids": chunk})
            found.update((row.event_id, row.owned_payment_id) for row in rows)
        return found

    # -- outbox ------------------------------------------------------------------------

    def add_to_outbox(
        self,
        *,
        payment_id: str | None,
        transaction_id: str | None,
        previous_status: str,
        status: str,
        at: datetime,
        checkout_id: str | None = None,
    ) -> int:
        """Queue one notification: a payment (or a checkout) went from one status to another."""
        result = self.connection.execute(
            _INSERT_OUTBOX,
            {
                "payment_id": payment_id,
                "transaction_id": transaction_id,
                "checkout_id": checkout_id,
                "previous_status": str(previous_status),
                "status": str(status),
                "created_at": at,
            },
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def outbox_entries(self, *, created_before: datetime, limit: int) -> list[Mapping[str, Any]]:
        rows = self.connection.execute(
            outbox.select()
            .where(outbox.c.created_at < created_before)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [dict(row._mapping) for row in rows]

    def remove_from_outbox(self, ids: Sequence[int]) -> int:
        """Delete delivered entries; returns how many were still there."""
        if not ids:
            return 0
        removed = 0
        for start in range(0, len(ids), 500):  # within every database's parameter limit
            chunk = list(ids[start : start + 500])
            removed += int(self.connection.execute(_DELETE_OUTBOX, {"ids": chunk}).rowcount)
        return removed


# -- rows <-> records ----------------------------------------------------------------------


def _fits(text: str | None, length: int) -> str | None:
    """``text`` cut to its column's length: a provider's long code must not fail a commit."""
    return None if text is None else text[:length]


def _aware(value: datetime | None) -> datetime | None:
    # SQLite keeps no offset: paycore writes UTC, so a naive value read back is UTC.
    # PostgreSQL answers in the session's time zone: the same moment, shown in UTC.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _when(value: datetime) -> datetime:
    aware = _aware(value)
    assert aware is not None
    return aware


def _payment_values(payment: Payment) -> dict[str, Any]:
    method = payment.payment_method
    return {
        "id": payment.id,
        "gateway": payment.gateway,
        "status": payment.status.value,
        "currency": payment.amount.currency.code,
        "amount": payment.amount.minor_units,
        "authorized": payment.authorized.minor_units,
        "captured": payment.captured.minor_units,
        "refunded": payment.refunded.minor_units,
        "capturable": payment.capturable.minor_units,
        "owner": payment.owner,
        "gateway_reference": payment.gateway_reference,
        "method_type": None if method is None else method.type,
        "method_token": None if method is None else method.token,
        "method_save": False if method is None else method.save,
        "method_off_session": False if method is None else method.off_session,
        "method_fields": dict(method.fields) if method is not None and method.fields else None,
        "customer": None if payment.customer is None else _customer_values(payment.customer),
        "description": payment.description,
        "return_url": payment.return_url,
        "notification_url": payment.notification_url,
        "idempotency_key": payment.idempotency_key,
        "authorization_expires_at": payment.authorization_expires_at,
        "metadata": dict(payment.metadata),
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def _customer_values(customer: Customer) -> dict[str, Any]:
    return {
        name: value
        for name in (
            "reference",
            "gateway_customer_id",
            "email",
            "name",
            "country",
            "ip_address",
            "locale",
        )
        if (value := getattr(customer, name)) is not None
    }


def _payment_from(row: Mapping[Any, Any]) -> Payment:
    currency = row["currency"]
    method = (
        None
        if row["method_type"] is None
        else PaymentMethod(
            type=row["method_type"],
            token=row["method_token"],
            save=row["method_save"],
            off_session=row["method_off_session"],
            fields=row["method_fields"],
        )
    )
    return Payment(
        id=row["id"],
        gateway=row["gateway"],
        amount=Money(row["amount"], currency),
        status=PaymentStatus(row["status"]),
        authorized=Money(row["authorized"], currency),
        captured=Money(row["captured"], currency),
        refunded=Money(row["refunded"], currency),
        capturable=Money(row["capturable"], currency),
        created_at=_when(row["created_at"]),
        updated_at=_when(row["updated_at"]),
        owner=row["owner"],
        gateway_reference=row["gateway_reference"],
        payment_method=method,
        customer=None if row["customer"] is None else Customer(**row["customer"]),
        description=row["description"],
        return_url=row["return_url"],
        notification_url=row["notification_url"],
        idempotency_key=row["idempotency_key"],
        authorization_expires_at=_aware(row["authorization_expires_at"]),
        metadata=row["metadata"],
    )


def _transaction_values(transaction: PaymentTransaction) -> dict[str, Any]:
    action = transaction.next_action
    return {
        "id": transaction.id,
        "payment_id": transaction.payment_id,
        "type": transaction.type.value,
        "status": transaction.status.value,
        "currency": transaction.amount.currency.code,
        "amount": transaction.amount.minor_units,
        "idempotency_key": transaction.idempotency_key,
        "fingerprint": transaction.fingerprint,
        "parent_id": transaction.parent_id,
        "final": transaction.final,
        "gateway_transaction_id": transaction.gateway_transaction_id,
        "provider_status": _fits(transaction.provider_status, 64),
        "decline_reason": (
            None if transaction.decline_reason is None else transaction.decline_reason.value
        ),
        "decline_code": _fits(transaction.decline_code, 64),
        "failure": transaction.failure,
        "message": transaction.message,
        "next_action": None if action is None else _next_action_values(action),
        "saved_method": (
            None if transaction.saved_method is None else asdict(transaction.saved_method)
        ),
        "exchange": transaction.exchange,
        "checks": transaction.checks,
        "next_check_at": transaction.next_check_at,
        "created_at": transaction.created_at,
        "updated_at": transaction.updated_at,
        "resolved_at": transaction.resolved_at,
    }


def _next_action_values(action: NextAction) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "url": action.url,
        "method": action.method,
        "parameters": json.loads(json.dumps(dict(action.parameters), default=str)),
        "expires_at": None if action.expires_at is None else action.expires_at.isoformat(),
    }


def _next_action_from(values: Mapping[str, Any] | None) -> NextAction | None:
    if values is None:
        return None
    expires = values.get("expires_at")
    return NextAction(
        kind=NextActionKind(values["kind"]),
        url=values["url"],
        method=values.get("method", "GET"),
        parameters=values.get("parameters") or {},
        expires_at=None if expires is None else datetime.fromisoformat(expires),
    )


def _transaction_from(row: Mapping[Any, Any]) -> PaymentTransaction:
    reason = row["decline_reason"]
    return PaymentTransaction(
        id=row["id"],
        payment_id=row["payment_id"],
        type=TransactionType(row["type"]),
        status=TransactionStatus(row["status"]),
        amount=Money(row["amount"], row["currency"]),
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        created_at=_when(row["created_at"]),
        updated_at=_when(row["updated_at"]),
        parent_id=row["parent_id"],
        final=row["final"],
        gateway_transaction_id=row["gateway_transaction_id"],
        provider_status=row["provider_status"],
        decline_reason=None if reason is None else DeclineReason(reason),
        decline_code=row["decline_code"],
        failure=row["failure"],
        message=row["message"],
        next_action=_next_action_from(row["next_action"]),
        saved_method=None if row["saved_method"] is None else SavedMethod(**row["saved_method"]),
        exchange=row["exchange"],
        checks=row["checks"],
        next_check_at=_aware(row["next_check_at"]),
        resolved_at=_aware(row["resolved_at"]),
    )
