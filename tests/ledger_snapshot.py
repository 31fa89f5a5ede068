"""Every row of every table of the ledger, to show that something changed nothing.

Tests of bad input take it before and after the refused call and compare: the rows
themselves, not their counts, so an update in place is seen too. The tables are the
ledger's own metadata (`paycore.transactions.schema`), not reflected: a snapshot costs
a query per table, cheap enough to take around every case of a long corpus.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from paycore.transactions.schema import metadata
from paycore.transactions.store import Store


def ledger_rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of every ledger table, by table name, in primary-key order."""
    with store.reading() as session:
        return {
            table.name: [
                dict(row._mapping)
                for row in session.connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                )
            ]
            for table in metadata.sorted_tables
        }
