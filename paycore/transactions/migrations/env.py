"""Alembic's environment for the ledger: migrations run on the caller's connection.

`paycore.transactions.migrate.upgrade` opens the connection, begins the transaction
and takes the migration lock before Alembic runs this file, so every revision of one
upgrade commits together or not at all, and two processes never migrate at once.
"""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from paycore.transactions.schema import metadata

target_metadata = metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters a table by copying it; autogenerate must write batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise CommandError(
            "paycore's migrations run against a database; offline (--sql) mode is not supported"
        )
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise CommandError(
            "no database connection: run migrations with paycore.transactions.migrate.upgrade "
            "(or 'paycore db upgrade')"
        )
    run_migrations(connection)


main()
