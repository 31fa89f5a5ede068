"""The ledger: payments, their transactions, webhook events seen, and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The schema is spelled out here rather than taken from `paycore.transactions.store`:
a revision creates the tables as they were when it was written, whatever the models
say later. Names are given in full (``op.f``), as the metadata's naming convention
produces them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("authorized", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("capturable", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("gateway_reference", sa.String(255), nullable=True),
        sa.Column("method_type", sa.String(64), nullable=True),
        sa.Column("method_token", sa.String(255), nullable=True),
        sa.Column("method_save", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("notification_url", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("authorization_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_idempotency_key")),
    )
    op.create_index(op.f("ix_payments_owner"), "payments", ["owner"])
    op.create_index(
        op.f("ix_payments_gateway_gateway_reference"), "payments", ["gateway", "gateway_reference"]
    )

    op.create_table(
        "transactions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("final", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("gateway_transaction_id", sa.String(255), nullable=True),
        sa.Column("provider_status", sa.String(64), nullable=True),
        sa.Column("decline_reason", sa.String(32), nullable=True),
        sa.Column("decline_code", sa.String(64), nullable=True),
        sa.Column("failure", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("next_action", sa.JSON(), nullable=True),
        sa.Column("exchange", sa.Text(), nullable=True),
        sa.Column("checks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_transactions_payment_id_payments")
        ),
        sa.UniqueConstraint(
            "payment_id",
            "idempotency_key",
            name=op.f("uq_transactions_payment_id_idempotency_key"),
        ),
    )
    op.create_index(
        op.f("ix_transactions_payment_id_created_at"), "transactions", ["payment_id", "created_at"]
    )
    op.create_index(
        op.f("ix_transactions_status_updated_at"), "transactions", ["status", "updated_at"]
    )

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("transaction_type", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=True),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("gateway", "event_id", name=op.f("uq_webhook_events_gateway_event_id")),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("previous_status", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("webhook_events")
    op.drop_index(op.f("ix_transactions_status_updated_at"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_payment_id_created_at"), table_name="transactions")
    op.drop_table("transactions")
    op.drop_index(op.f("ix_payments_gateway_gateway_reference"), table_name="payments")
    op.drop_index(op.f("ix_payments_owner"), table_name="payments")
    op.drop_table("payments")
