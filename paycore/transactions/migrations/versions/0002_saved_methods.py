"""Saved payment methods: charging one off-session, and keeping one saved during a payment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``payments.method_off_session``: the customer is not there to act, so the gateway
must not ask for a redirect. ``transactions.saved_method``: what the gateway kept when
the payment asked it to (its token and masked display data, never a card number).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as payments:
        payments.add_column(
            sa.Column("method_off_session", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("transactions") as transactions:
        transactions.add_column(sa.Column("saved_method", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as transactions:
        transactions.drop_column("saved_method")
    with op.batch_alter_table("payments") as payments:
        payments.drop_column("method_off_session")
