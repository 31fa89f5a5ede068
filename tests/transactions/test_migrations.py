"""The migrations build exactly the store's tables, once, however many upgrade at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

from paycore.money import Money
from paycore.transactions.migrate import (
    MIGRATION_LOCK_KEY,
    alembic_config,
    head_revision,
    known_revisions,
)
from paycore.transactions.model import PaymentStatus
from paycore.transactions.records import Payment
from paycore.transactions.store import Store, metadata

on_each_database = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=on_each_database)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database no migration has touched: a new SQLite file, or a new
    PostgreSQL database beside the test database (dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server_url = sa.engine.make_url(request.getfixturevalue("postgres_url"))
    name = f"paycore_test_{uuid.uuid4().hex[:12]}"
    admin = Store.connect(server_url.render_as_string(hide_password=False))
    autocommit = admin.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with autocommit.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


# -- what the migrations build ---------------------------------------------------------


def test_the_migrations_build_exactly_the_tables_of_the_metadata(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_constraints_and_indexes_bear_the_names_of_the_naming_convention(store: Store) -> None:
    with store.engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in metadata.sorted_tables:
            primary_key = inspector.get_pk_constraint(table.name)["name"]
            foreign_keys = {key["name"] for key in inspector.get_foreign_keys(table.name)}
            uniques = {unique["name"] for unique in inspector.get_unique_constraints(table.name)}
            indexes = {
                index["name"]
                for index in inspector.get_indexes(table.name)
                if not index.get("duplicates_constraint")  # PostgreSQL's index of a unique
            }

            assert primary_key == table.primary_key.name
            assert foreign_keys == {key.name for key in table.foreign_key_constraints}
            assert uniques == {
                constraint.name
                for constraint in table.constraints
                if isinstance(constraint, sa.UniqueConstraint)
            }
            assert indexes == {index.name for index in table.indexes}


def test_the_revisions_form_one_line_ending_at_the_head() -> None:
    revisions = known_revisions()

    assert revisions[0] == "0001"
    assert revisions[-1] == head_revision()
    assert len(set(revisions)) == len(revisions)


# -- upgrading -------------------------------------------------------------------------


def test_a_new_database_has_no_revision_until_upgraded(empty_database_url: str) -> None:
    store = Store.connect(empty_database_url)
    try:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
        with store.engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
    finally:
        store.close()

    assert before is None
    assert after == head_revision()
    assert tables == {*metadata.tables, "alembic_version"}


def test_upgrading_again_changes_nothing(store: Store) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    payment = Payment(
        id="pay_1",
        gateway="dummy",
        amount=Money(100, "USD"),
        status=PaymentStatus.NEW,
        authorized=Money(0, "USD"),
        captured=Money(0, "USD"),
        refunded=Money(0, "USD"),
        capturable=Money(0, "USD"),
        created_at=at,
        updated_at=at,
    )
    with store.writing() as session:
        session.insert_payment(payment)

    store.upgrade()
    store.upgrade(head_revision())

    assert store.current_revision() == head_revision()
    with store.reading() as session:
        assert session.payment("pay_1") == payment


def test_an_unknown_revision_is_refused_and_changes_nothing(empty_database_url: str) -> None:
    store = Store.connect(empty_database_url)
    try:
        with pytest.raises(CommandError, match="Can't locate revision identified by 'nope'"):
            store.upgrade("nope")
        revision = store.current_revision()
        with store.engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
    finally:
        store.close()

    assert revision is None
    assert tables == []


def test_concurrent_upgrades_from_two_threads_both_succeed(empty_database_url: str) -> None:
    stores = [Store.connect(empty_database_url) for _ in range(2)]
    start = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def upgrade(store: Store) -> None:
        start.wait()
        try:
            store.upgrade()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=upgrade, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    revision = stores[0].current_revision()
    for store in stores:
        store.close()

    assert failures == []
    assert revision == head_revision()


@pytest.mark.parametrize(
    "empty_database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_concurrent_upgrades_from_two_processes_both_succeed(empty_database_url: str) -> None:
    """Both processes are made to queue on the migration lock before either may take it:
    the one that goes second must find the schema built and change nothing."""
    store = Store.connect(empty_database_url)
    key_high, key_low = MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF
    env = {**os.environ, "PAYCORE_DATABASE_URL": empty_database_url}
    processes: list[subprocess.Popen[str]] = []

    def waiting_for_the_lock() -> int:
        with store.engine.connect() as observer:
            return int(
                observer.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND NOT granted AND classid = :high AND objid = :low"
                        " AND database = (SELECT oid FROM pg_database"
                        "                 WHERE datname = current_database())"
                    ),
                    {"high": key_high, "low": key_low},
                ).scalar_one()
            )

    try:
        with store.engine.connect() as holder:
            holder.execute(sa.select(sa.func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
            holder.commit()  # the lock is the session's: it outlives the transaction
            for _ in range(2):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "paycore", "db", "upgrade"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
            wait_until(lambda: waiting_for_the_lock() == 2, "both processes wait for the lock")
            holder.execute(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
            holder.commit()
        outputs = [process.communicate(timeout=60) for process in processes]
        revision = store.current_revision()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        store.close()

    assert [process.returncode for process in processes] == [0, 0], outputs
    results = sorted(stdout.splitlines()[-1] for stdout, _ in outputs)
    head = head_revision()
    assert results == [f"revision: {head} (head), unchanged", f"revision: none -> {head} (head)"]
    assert revision == head


# -- Alembic's environment -------------------------------------------------------------


def test_the_migrations_refuse_to_run_without_a_connection() -> None:
    with pytest.raises(CommandError, match="no database connection"):
        command.upgrade(alembic_config(), "head")


def test_the_migrations_refuse_offline_mode() -> None:
    with pytest.raises(CommandError, match="offline"):
        command.upgrade(alembic_config(), "head", sql=True)
