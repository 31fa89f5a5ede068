"""The store on SQLite and PostgreSQL: records round-trip, and writers lock as promised."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

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
from paycore.transactions.store import Store, webhook_events

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def a_payment(**changes: Any) -> Payment:
    """A payment with every field set (``changes`` replace some)."""
    at = now()
    fields: dict[str, Any] = {
        "id": "pay_1",
        "gateway": "dummy",
        "amount": Money(1050, "EUR"),
        "status": PaymentStatus.PARTIALLY_CAPTURED,
        "authorized": Money(1050, "EUR"),
        "captured": Money(500, "EUR"),
        "refunded": Money(100, "EUR"),
        "capturable": Money(550, "EUR"),
        "created_at": at,
        "updated_at": at + timedelta(seconds=5),
        "owner": "order_42",
        "gateway_reference": "dpay_123",
        "payment_method": PaymentMethod(
            type="card",
            token="tok_visa",
            save=True,
            off_session=True,
            fields={"phone": "+380501234567"},
        ),
        "customer": Customer(
            reference="cust_7",
            gateway_customer_id="dcus_9",
            email="ada@example.com",
            name="Ada Lovelace",
            country="GB",
            ip_address="192.0.2.1",
            locale="en-GB",
        ),
        "description": "Order 42",
        "return_url": "https://shop.example/return",
        "notification_url": "https://shop.example/paycore/webhooks/dummy",
        "idempotency_key": "create-order-42",
        "authorization_expires_at": at + timedelta(days=7),
        "metadata": {"order": "42", "channel": "web"},
    }
    fields.update(changes)
    return Payment(**fields)


def a_bare_payment(payment_id: str = "pay_2") -> Payment:
    """A payment with only its required fields."""
    at = now()
    zero = Money(0, "JPY")
    return Payment(
        id=payment_id,
        gateway="dummy",
        amount=Money(500, "JPY"),
        status=PaymentStatus.NEW,
        authorized=zero,
        captured=zero,
        refunded=zero,
        capturable=zero,
        created_at=at,
        updated_at=at,
    )


def a_transaction(payment: Payment, **changes: Any) -> PaymentTransaction:
    """A transaction of ``payment`` with every field set (``changes`` replace some)."""
    at = now()
    fields: dict[str, Any] = {
        "id": "txn_1",
        "payment_id": payment.id,
        "type": TransactionType.CAPTURE,
        "status": TransactionStatus.DECLINED,
        "amount": Money(500, payment.amount.currency),
        "idempotency_key": "capture-1",
        "fingerprint": "f" * 64,
        "created_at": at,
        "updated_at": at + timedelta(seconds=1),
        "parent_id": "txn_0",
        "final": True,
        "gateway_transaction_id": "dcap_1",
        "provider_status": "declined",
        "decline_reason": DeclineReason.INSUFFICIENT_FUNDS,
        "decline_code": "51",
        "failure": None,
        "message": "Insufficient funds",
        "next_action": NextAction(
            kind=NextActionKind.REDIRECT,
            url="https://acs.example/challenge",
            method="POST",
            parameters={"PaReq": "abc", "attempt": 2},
            expires_at=at + timedelta(minutes=15),
        ),
        "saved_method": SavedMethod(
            gateway="dummy",
            token="pm_9",
            customer_reference="dcus_9",
            type="card",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2031,
        ),
        "exchange": "POST /v1/captures -> 402",
        "checks": 3,
        "next_check_at": at + timedelta(minutes=5),
        "resolved_at": at + timedelta(seconds=1),
    }
    fields.update(changes)
    return PaymentTransaction(**fields)


def an_event(**changes: Any) -> dict[str, Any]:
    at = now()
    return {
        "gateway": "dummy",
        "event_id": "evt_1",
        "event_type": "payment.captured",
        "transaction_type": "capture",
        "outcome": "approved",
        "occurred_at": at,
        "received_at": at,
        "payment_id": "pay_1",
        "transaction_id": "txn_1",
        "disposition": "applied",
        **changes,
    }


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


# -- records round-trip ----------------------------------------------------------------


def test_a_payment_round_trips_with_every_field(store: Store) -> None:
    payment = a_payment()

    with store.writing() as session:
        session.insert_payment(payment, fingerprint="a" * 64)
    with store.reading() as session:
        read = session.payment(payment.id)
        by_key = session.payment_by_key("create-order-42")
        by_reference = session.payment_by_reference("dummy", "dpay_123")
        of_owner = session.payments_of_owner("order_42")

    assert read == payment
    assert read.created_at.utcoffset() == timedelta(0)
    assert read.authorization_expires_at is not None
    assert read.authorization_expires_at.tzinfo is not None
    assert by_key == (payment, "a" * 64)
    assert by_reference == payment
    assert of_owner == [payment]


def test_a_payment_with_only_its_required_fields_round_trips(store: Store) -> None:
    payment = a_bare_payment()

    with store.writing() as session:
        session.insert_payment(payment)
    with store.reading() as session:
        read = session.payment(payment.id)
        by_key = session.payment_by_key("nothing")

    assert read == payment
    assert by_key is None


def test_an_updated_payment_reads_back_as_written(store: Store) -> None:
    payment = a_bare_payment()
    with store.writing() as session:
        session.insert_payment(payment)
    authorized = Money(500, "JPY")
    changed = attrs.evolve(
        payment,
        status=PaymentStatus.AUTHORIZED,
        authorized=authorized,
        capturable=authorized,
        gateway_reference="dpay_9",
        updated_at=payment.updated_at + timedelta(seconds=3),
    )

    with store.writing() as session:
        session.update_payment(changed)
    with store.reading() as session:
        read = session.payment(payment.id)

    assert read == changed
    assert read.created_at == payment.created_at


def test_a_transaction_round_trips_with_every_field(store: Store) -> None:
    payment = a_payment()
    transaction = a_transaction(payment)

    with store.writing() as session:
        session.insert_payment(payment)
        session.insert_transaction(transaction)
    with store.reading() as session:
        read = session.transaction(transaction.id)
        by_key = session.transaction_by_key(payment.id, "capture-1")
        of_payment = session.transactions_of(payment.id)

    assert read == transaction
    assert read.next_action is not None
    assert read.next_action.expires_at == transaction.next_action.expires_at
    assert read.created_at.utcoffset() == timedelta(0)
    assert by_key == transaction
    assert of_payment == [transaction]


def test_a_transaction_needs_its_payment(store: Store) -> None:
    orphan = a_transaction(a_bare_payment("pay_missing"))

    with pytest.raises(IntegrityError), store.writing() as session:
        session.insert_transaction(orphan)

    with store.reading() as session:
        assert session.transaction(orphan.id) is None


def test_an_idempotency_key_is_used_once_per_payment(store: Store) -> None:
    payment = a_payment()
    with store.writing() as session:
        session.insert_payment(payment)
        session.insert_transaction(a_transaction(payment))

    with pytest.raises(IntegrityError), store.writing() as session:
        session.insert_transaction(a_transaction(payment, id="txn_2"))


# -- guarded updates and events --------------------------------------------------------


def test_update_transaction_stores_only_over_an_expected_status(store: Store) -> None:
    payment = a_bare_payment()
    pending = a_transaction(
        payment,
        type=TransactionType.AUTHORIZE,
        status=TransactionStatus.PENDING,
        amount=payment.amount,
        final=False,
        decline_reason=None,
        decline_code=None,
        next_action=None,
        resolved_at=None,
    )
    with store.writing() as session:
        session.insert_payment(payment)
        session.insert_transaction(pending)
    succeeded = a_transaction(
        payment,
        type=TransactionType.AUTHORIZE,
        status=TransactionStatus.SUCCEEDED,
        amount=payment.amount,
        decline_reason=None,
        decline_code=None,
        next_action=None,
        created_at=pending.created_at,
        checks=pending.checks + 5,  # a stale count: reconciliation's, not the writer's
    )

    with store.writing() as session:
        refused = session.update_transaction(
            succeeded, expected={TransactionStatus.UNKNOWN, TransactionStatus.PROCESSING}
        )
    with store.reading() as session:
        after_refusal = session.transaction(pending.id)
    with store.writing() as session:
        stored = session.update_transaction(succeeded, expected={TransactionStatus.PENDING})
    with store.reading() as session:
        after_update = session.transaction(pending.id)

    assert refused is False
    assert after_refusal == pending
    assert stored is True
    # Everything but reconciliation's bookkeeping, which only note_check writes.
    assert after_update == attrs.evolve(
        succeeded, checks=pending.checks, next_check_at=pending.next_check_at
    )


def test_note_check_counts_a_check_only_while_the_status_is_as_seen(store: Store) -> None:
    payment = a_bare_payment()
    unknown = a_transaction(payment, status=TransactionStatus.UNKNOWN, resolved_at=None)
    with store.writing() as session:
        session.insert_payment(payment)
        session.insert_transaction(unknown)
    later = unknown.created_at + timedelta(hours=1)

    with store.writing() as session:
        counted = session.note_check(
            unknown.id, status=TransactionStatus.UNKNOWN, next_check_at=later
        )
        missed = session.note_check(
            unknown.id, status=TransactionStatus.PENDING, next_check_at=None
        )
        after = session.transaction(unknown.id)

    assert (counted, missed) == (True, False)
    assert after is not None
    assert (after.checks, after.next_check_at) == (unknown.checks + 1, later)


def test_record_event_stores_each_event_of_a_gateway_once(store: Store) -> None:
    with store.writing() as session:
        session.insert_payment(attrs.evolve(a_bare_payment("pay_1"), owner="ord_1"))
        session.insert_payment(a_bare_payment("pay_2"))
        first = session.record_event(an_event())
        again = session.record_event(an_event(disposition="ignored"))
        other_gateway = session.record_event(an_event(gateway="other"))
        other_event = session.record_event(an_event(event_id="evt_2", payment_id=None))
        ownerless = session.record_event(an_event(event_id="evt_4", payment_id="pay_2"))
    with store.reading() as session:
        stored = session.stored_events("dummy", ["evt_1", "evt_2", "evt_3", "evt_4", "evt_1"])
        dispositions = session.connection.execute(
            sa.select(webhook_events.c.gateway, webhook_events.c.disposition).where(
                webhook_events.c.event_id == "evt_1"
            )
        ).all()

    assert (first, again, other_gateway, other_event, ownerless) == (True, False, True, True, True)
    # The payment an event named, where it has an owner (only those can be a checkout's).
    assert stored == {"evt_1": "pay_1", "evt_2": None, "evt_4": None}
    assert sorted(dispositions) == [("dummy", "applied"), ("other", "applied")]


def test_outbox_entries_are_listed_oldest_first_and_removed_once(store: Store) -> None:
    payment = a_bare_payment()
    at = now()
    with store.writing() as session:
        session.insert_payment(payment)
        ids = [
            session.add_to_outbox(
                payment_id=payment.id,
                transaction_id=None,
                previous_status=PaymentStatus.NEW,
                status=status,
                at=at,
            )
            for status in (PaymentStatus.NEW, PaymentStatus.AUTHORIZED)
        ]

    with store.writing() as session:
        entries = session.outbox_entries(created_before=at + timedelta(seconds=1), limit=10)
        removed = session.remove_from_outbox(ids)
        removed_again = session.remove_from_outbox(ids)

    assert [entry["id"] for entry in entries] == ids
    assert [entry["status"] for entry in entries] == ["new", "authorized"]
    assert (removed, removed_again) == (2, 0)


# -- connecting ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://x", "mysql+pymysql://user@host/db", "not a url"])
def test_only_sqlite_and_postgresql_urls_are_accepted(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Store.connect(url)

    assert raised.value.subject == "database_url"


# -- SQLite: durability and the write lock ---------------------------------------------


@sqlite_only
def test_sqlite_connections_are_durable_and_check_foreign_keys(database_url: str) -> None:
    store = Store.connect(database_url)
    try:
        with store.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys")
            }
    finally:
        store.close()

    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}


@sqlite_only
def test_a_sqlite_writer_holds_the_write_lock_from_its_first_statement(database_url: str) -> None:
    first = Store.connect(database_url, connect_args={"timeout": 0.2})
    second = Store.connect(database_url, connect_args={"timeout": 0.2})
    try:
        with first.writing() as session:
            # Only a read so far: a deferred transaction would not hold the lock yet.
            assert session.payment("pay_1") is None
            with pytest.raises(OperationalError, match="database is locked"), second.writing():
                pass
            # Readers do not wait for the writer (WAL), and see what it has committed.
            with second.reading() as reader:
                assert reader.count_payments() == 0
            # The writer itself never fails midway: it already holds the lock.
            session.insert_payment(a_payment())
        with second.writing() as session:
            assert session.count_payments() == 1
    finally:
        first.close()
        second.close()


# -- PostgreSQL: one locker of a payment at a time -------------------------------------


@postgres_only
def test_a_locked_payment_makes_every_other_locker_wait_until_commit(store: Store) -> None:
    payment = a_payment()
    with store.writing() as session:
        session.insert_payment(payment)

    def lock_within_100ms() -> Payment | None:
        with store.writing() as other:
            other.connection.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
            return other.payment(payment.id, lock=True)

    with store.writing() as first:
        assert first.payment(payment.id, lock=True) == payment
        with pytest.raises(OperationalError, match="lock timeout"):
            lock_within_100ms()
        with store.reading() as reader:  # reading needs no lock
            assert reader.payment(payment.id) == payment

    assert lock_within_100ms() == payment


@postgres_only
def test_the_next_locker_of_a_payment_sees_what_the_first_committed(store: Store) -> None:
    payment = a_bare_payment()
    with store.writing() as session:
        session.insert_payment(payment)
    backend: queue.Queue[int] = queue.Queue()
    seen: queue.Queue[Payment | None] = queue.Queue()

    def second_locker() -> None:
        with store.writing() as second:
            backend.put(second.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            seen.put(second.payment(payment.id, lock=True))

    def waits_for_a_lock(pid: int) -> bool:
        with store.engine.connect() as observer:
            wait = observer.execute(
                sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar()
        return wait == "Lock"

    authorized = attrs.evolve(
        payment,
        status=PaymentStatus.AUTHORIZED,
        authorized=payment.amount,
        capturable=payment.amount,
    )
    thread = threading.Thread(target=second_locker)
    with store.writing() as first:
        first.payment(payment.id, lock=True)
        thread.start()
        pid = backend.get(timeout=10)
        wait_until(lambda: waits_for_a_lock(pid), "the second locker waits for the first")
        first.update_payment(authorized)
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert seen.get_nowait() == authorized


@pytest.mark.postgres
def test_a_pooled_postgresql_connection_killed_while_idle_is_replaced_before_use(
    session_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.transactions import store as store_module

    store = Store.connect(session_postgres_url, pool_size=1, max_overflow=0)
    try:
        with store.reading() as session:
            backend = session.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        # The server drops the pooled connection (a restart, an idle timeout).
        with Store.connect(session_postgres_url).engine.begin() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
        monkeypatch.setattr(store_module, "IDLE_BEFORE_PING", 0.0)

        with store.reading() as session:
            replacement = session.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            assert session.payment("pay_none") is None
    finally:
        store.close()

    assert replacement != backend
