"""A ledger of a benchmark run's own: a new SQLite file, or a PostgreSQL schema dropped at
the end (shared by the bench scripts; not a benchmark itself)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from paycore.config import redact_url
from paycore.transactions.store import Store


@contextmanager
def fresh_ledger(database_url: str | None) -> Iterator[tuple[Store, str]]:
    """A migrated, empty ledger and the URL other processes reach it by: a new SQLite
    file without ``database_url``, else a schema of this run's own in that PostgreSQL
    database."""
    if database_url is None:
        directory = tempfile.mkdtemp(prefix="paycore-bench-")
        url = f"sqlite:///{directory}/ledger.db"
        store = Store.connect(url)
        try:
            store.upgrade()
            yield store, url
        finally:
            store.close()
            shutil.rmtree(directory, ignore_errors=True)
        return
    schema = f"paycore_bench_{uuid.uuid4().hex[:12]}"
    admin = Store.connect(database_url)
    with admin.engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    scoped = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url = scoped.render_as_string(hide_password=False)
    store = Store.connect(url)
    try:
        store.upgrade()
        yield store, url
    finally:
        store.close()
        with admin.engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def store_name(database_url: str | None) -> str:
    """How a report names the ledger of ``fresh_ledger(database_url)``."""
    if database_url is None:
        return "sqlite (temporary file)"
    return f"postgresql {redact_url(database_url)} (a schema of this run's own)"
