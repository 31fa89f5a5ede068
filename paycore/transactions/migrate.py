"""The ledger's schema migrations: Alembic, configured in code rather than an alembic.ini.

The revisions ship inside the package (``paycore.transactions:migrations``), so an
installed paycore migrates its database from nothing but a URL: ``paycore db upgrade``
or `Store.upgrade`.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from paycore.transactions.store import _BEGIN

__all__ = [
    "MIGRATION_LOCK_KEY",
    "SCRIPT_LOCATION",
    "RevisionChange",
    "alembic_config",
    "current_revision",
    "head_revision",
    "known_revisions",
    "upgrade",
]

SCRIPT_LOCATION = "paycore.transactions:migrations"

# The PostgreSQL advisory lock an upgrade holds until it commits: "paycore" in ASCII.
MIGRATION_LOCK_KEY = int.from_bytes(b"paycore", "big")

# Alembic's `context` and `op` are module-level proxies to the migration running now:
# two threads migrating at once would each drive the other's.
_one_migration_per_process = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic config of the ledger's migrations; ``env.py`` runs on ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of paycore knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise CommandError(f"no migrations found in {SCRIPT_LOCATION}")
    return head


def known_revisions() -> list[str]:
    """Every revision this version of paycore knows, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return [script.revision for script in reversed(list(scripts))]


class RevisionChange(NamedTuple):
    """The revisions a database was at before and after an upgrade (None: no schema)."""

    before: str | None
    after: str | None


def upgrade(engine: Engine, revision: str = "head") -> RevisionChange:
    """Migrate the database to ``revision`` in one transaction, under a lock.

    Concurrent upgrades (several processes starting at once) queue on the lock, and
    each that follows the first finds the work done: its ``before`` is read under the
    lock, so it says so. SQLite's lock is the write lock, taken by ``BEGIN IMMEDIATE``
    before Alembic reads the current revision; PostgreSQL's is an advisory lock,
    because its DDL does not queue: two ``CREATE TABLE`` of one missing table both
    proceed, and one fails.
    """
    with _one_migration_per_process, engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection = connection.execution_options(**{_BEGIN: "IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(alembic_config(connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
    return RevisionChange(before, after)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None before its first upgrade."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
