"""What the frontend collected for a payment method (``PaymentMethod.fields``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

``payments.method_fields``: the values a gateway's method asks for (a phone number, a
wallet account …), sent with every transaction of the payment. Card numbers in them
are masked before they are stored; card data itself only ever goes to hosted pages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as payments:
        payments.add_column(sa.Column("method_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as payments:
        payments.drop_column("method_fields")
