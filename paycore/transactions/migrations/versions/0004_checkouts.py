"""The checkout: checkouts, their payments, customers' stored methods.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

``checkouts`` is one attempt to pay a cart (items in minor units, the total, the
capture mode, the order id once completed, the failed payment and why);
``checkout_payments`` lists the ledger payments that pay it, in order;
``stored_methods`` keeps customers' saved methods as the gateway's token reference
with masked display data. The ``outbox`` also carries a finished checkout's
notification: ``checkout_id``, with no payment.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("capture", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=True),
        sa.Column("failed_payment_id", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("completed_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
        sa.UniqueConstraint("order_id", name=op.f("uq_checkouts_order_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_checkouts_idempotency_key")),
    )
    op.create_index(op.f("ix_checkouts_owner"), "checkouts", ["owner"])
    op.create_index(op.f("ix_checkouts_status_updated_at"), "checkouts", ["status", "updated_at"])
    op.create_table(
        "checkout_payments",
        sa.Column("checkout_id", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_checkout_payments_checkout_id_checkouts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_checkout_payments_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_checkout_payments")),
        sa.UniqueConstraint(
            "checkout_id", "position", name=op.f("uq_checkout_payments_checkout_id_position")
        ),
    )
    op.create_table(
        "stored_methods",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("token", sa.String(255), nullable=False),
        sa.Column("customer_reference", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(32), nullable=True),
        sa.Column("last4", sa.String(4), nullable=True),
        sa.Column("exp_month", sa.Integer(), nullable=True),
        sa.Column("exp_year", sa.Integer(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_methods")),
        sa.UniqueConstraint("gateway", "token", name=op.f("uq_stored_methods_gateway_token")),
    )
    op.create_index(op.f("ix_stored_methods_owner"), "stored_methods", ["owner"])
    with op.batch_alter_table("outbox") as table:
        table.alter_column("payment_id", existing_type=sa.String(64), nullable=True)
        table.add_column(sa.Column("checkout_id", sa.String(64), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE payment_id IS NULL")
    with op.batch_alter_table("outbox") as table:
        table.drop_column("checkout_id")
        table.alter_column("payment_id", existing_type=sa.String(64), nullable=False)
    op.drop_index(op.f("ix_stored_methods_owner"), table_name="stored_methods")
    op.drop_table("stored_methods")
    op.drop_table("checkout_payments")
    op.drop_index(op.f("ix_checkouts_status_updated_at"), table_name="checkouts")
    op.drop_index(op.f("ix_checkouts_owner"), table_name="checkouts")
    op.drop_table("checkouts")
