"""The ledger's tables, as SQLAlchemy Core metadata (DESIGN §6).

``payments``, ``transactions`` (unique per payment and idempotency key),
``webhook_events`` (unique per gateway and provider event id) and ``outbox`` (one
row per recorded outcome, for its hooks, committed with it); for the checkout
(`paycore.checkout`), ``checkouts`` (one attempt to pay a cart; unique ``order_id``
once completed), ``checkout_payments`` (the ledger payments that pay it, in order)
and ``stored_methods`` (customers' saved methods: the gateway's token reference and
masked display data). The migrations in
``paycore/transactions/migrations`` build exactly this; a test compares them. Money is
stored as integer minor units beside its currency code; card data has no column.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "checkout_payments",
    "checkouts",
    "metadata",
    "outbox",
    "payments",
    "stored_methods",
    "transactions",
    "webhook_events",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

_ID = sa.String(64)
_TEXT_ID = sa.String(255)
_MONEY = sa.BigInteger()
_WHEN = sa.DateTime(timezone=True)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", _MONEY, nullable=False),
    sa.Column("authorized", _MONEY, nullable=False),
    sa.Column("captured", _MONEY, nullable=False),
    sa.Column("refunded", _MONEY, nullable=False),
    sa.Column("capturable", _MONEY, nullable=False),
    sa.Column("owner", _TEXT_ID),
    sa.Column("gateway_reference", _TEXT_ID),
    sa.Column("method_type", sa.String(64)),
    sa.Column("method_token", _TEXT_ID),  # the provider's token, never a card number
    sa.Column("method_save", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("method_off_session", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("method_fields", sa.JSON),  # what the frontend collected; card numbers masked
    sa.Column("customer", sa.JSON),
    sa.Column("description", sa.Text),
    sa.Column("return_url", sa.Text),
    sa.Column("notification_url", sa.Text),
    sa.Column("idempotency_key", _TEXT_ID, unique=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("authorization_expires_at", _WHEN),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", _WHEN, nullable=False),
    sa.Column("updated_at", _WHEN, nullable=False),
    sa.Index(None, "owner"),
    sa.Index(None, "gateway", "gateway_reference"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("payment_id", _ID, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", _MONEY, nullable=False),
    sa.Column("idempotency_key", _TEXT_ID, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("parent_id", _ID),
    sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("gateway_transaction_id", _TEXT_ID),
    sa.Column("provider_status", sa.String(64)),
    sa.Column("decline_reason", sa.String(32)),
    sa.Column("decline_code", sa.String(64)),
    sa.Column("failure", sa.String(64)),
    sa.Column("message", sa.Text),
    sa.Column("next_action", sa.JSON),
    sa.Column("saved_method", sa.JSON),  # token and masked display data only
    sa.Column("exchange", sa.Text),
    sa.Column("checks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_check_at", _WHEN),
    sa.Column("created_at", _WHEN, nullable=False),
    sa.Column("updated_at", _WHEN, nullable=False),
    sa.Column("resolved_at", _WHEN),
    sa.UniqueConstraint("payment_id", "idempotency_key"),
    sa.Index(None, "payment_id", "created_at"),
    # Reconciliation: unresolved transactions not sent or changed since T.
    sa.Index(None, "status", "updated_at"),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("event_id", _TEXT_ID, nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("transaction_type", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("occurred_at", _WHEN, nullable=False),
    sa.Column("received_at", _WHEN, nullable=False),
    sa.Column("payment_id", _ID),
    sa.Column("transaction_id", _ID),
    sa.Column("disposition", sa.String(16), nullable=False),
    sa.UniqueConstraint("gateway", "event_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", _ID),  # a payment's outcome …
    sa.Column("transaction_id", _ID),
    sa.Column("checkout_id", _ID),  # … or a checkout finished
    sa.Column("previous_status", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", _WHEN, nullable=False),
)

checkouts = sa.Table(
    "checkouts",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("owner", _TEXT_ID, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", sa.BigInteger(), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("capture", sa.String(16), nullable=False),
    sa.Column("order_id", _TEXT_ID, unique=True),
    sa.Column("failed_payment_id", _ID),
    sa.Column("failure_reason", sa.String(64)),
    sa.Column("failure_message", sa.Text),
    sa.Column("idempotency_key", _TEXT_ID, unique=True),
    sa.Column("created_at", _WHEN, nullable=False),
    sa.Column("updated_at", _WHEN, nullable=False),
    sa.Column("completed_at", _WHEN),
    sa.Index(None, "owner"),
    sa.Index(None, "status", "updated_at"),
)

checkout_payments = sa.Table(
    "checkout_payments",
    metadata,
    sa.Column("checkout_id", _ID, sa.ForeignKey("checkouts.id"), nullable=False),
    sa.Column("payment_id", _ID, sa.ForeignKey("payments.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("checkout_id", "position"),
)

stored_methods = sa.Table(
    "stored_methods",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("owner", _TEXT_ID, nullable=False),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("token", _TEXT_ID, nullable=False),  # the gateway's reference, never a card number
    sa.Column("customer_reference", _TEXT_ID, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("brand", sa.String(32)),
    sa.Column("last4", sa.String(4)),
    sa.Column("exp_month", sa.Integer),
    sa.Column("exp_year", sa.Integer),
    sa.Column("created_at", _WHEN, nullable=False),
    sa.UniqueConstraint("gateway", "token"),
    sa.Index(None, "owner"),
)
