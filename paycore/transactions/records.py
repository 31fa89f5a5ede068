"""What the ledger keeps: payments and their transactions, as committed (DESIGN §2).

Both are frozen attrs records read from the store; the services hand them out and
the hooks receive them. They never hold card data: a payment method is a type and,
for saved or tokenised methods, the provider's token.

- A `Payment` is how much is paid for one owner (a checkout, then an order) through
  one configured gateway, with denormalised totals: ``authorized``, ``captured``,
  ``refunded``, and ``capturable`` (what the authorization still holds). Its status
  is derived from them (`paycore.transactions.states.status_of`).
- A `PaymentTransaction` is one interaction with the gateway: its type, status,
  amount, idempotency key and request fingerprint, the provider's ids, the decline
  or failure, and a scrubbed one-line summary of the exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import field, frozen

from paycore.money import Money
from paycore.transactions.model import (
    Customer,
    DeclineReason,
    NextAction,
    PaymentMethod,
    PaymentStatus,
    SavedMethod,
    TransactionStatus,
    TransactionType,
    _frozen_mapping,
)

__all__ = ["MUTATIONS", "UNRESOLVED", "Payment", "PaymentTransaction"]

# Transaction types that change money at the gateway (fetch_status only reads).
MUTATIONS = frozenset(
    {
        TransactionType.AUTHORIZE,
        TransactionType.SALE,
        TransactionType.CAPTURE,
        TransactionType.VOID,
        TransactionType.REFUND,
    }
)

# Statuses reconciliation looks at: the gateway may know more than the ledger.
UNRESOLVED = frozenset(
    {TransactionStatus.PENDING, TransactionStatus.UNKNOWN, TransactionStatus.PROCESSING}
)

# A mutation in one of these blocks every other mutation of its payment.
IN_FLIGHT = frozenset({TransactionStatus.PENDING, TransactionStatus.UNKNOWN})


@frozen(kw_only=True)
class Payment:
    """A payment as committed in the ledger.

    ``gateway`` is the configured gateway name (the key of ``[gateways.NAME]``), so
    two accounts of one provider stay apart. ``gateway_reference`` is the provider's
    id of the payment, known after the first call. All money fields share
    ``amount``'s currency.
    """

    id: str
    gateway: str
    amount: Money
    status: PaymentStatus
    authorized: Money
    captured: Money
    refunded: Money
    capturable: Money
    created_at: datetime
    updated_at: datetime
    owner: str | None = None  # checkout id, then order id
    gateway_reference: str | None = None
    payment_method: PaymentMethod | None = None
    customer: Customer | None = None
    description: str | None = None
    return_url: str | None = None
    notification_url: str | None = None
    idempotency_key: str | None = None
    authorization_expires_at: datetime | None = None
    metadata: Mapping[str, str] = field(default=None, converter=_frozen_mapping)

    @property
    def refundable(self) -> Money:
        """What may still be refunded: captured and not yet refunded."""
        return self.captured - self.refunded

    def totals(self) -> dict[str, int]:
        """The four totals in minor units, for comparisons and reports."""
        return {
            "authorized": self.authorized.minor_units,
            "captured": self.captured.minor_units,
            "refunded": self.refunded.minor_units,
            "capturable": self.capturable.minor_units,
        }


@frozen(kw_only=True)
class PaymentTransaction:
    """One interaction with the gateway, as committed in the ledger.

    ``status`` is final once ``succeeded``, ``declined`` or ``failed``; ``pending``,
    ``unknown`` and ``processing`` are resolved later (a webhook, `fetch_status`,
    reconciliation). ``failure`` names the error for ``failed`` and ``unknown``
    transactions (``"GatewayUnavailable"``, ``"OutcomeUnknown"``) and ``message`` says
    what happened, scrubbed. ``gateway_transaction_id`` is the provider's id of this
    transaction (a refund id, say). ``exchange`` summarises the requests sent, scrubbed.
    """

    id: str
    payment_id: str
    type: TransactionType
    status: TransactionStatus
    amount: Money
    idempotency_key: str
    fingerprint: str
    created_at: datetime
    updated_at: datetime
    parent_id: str | None = None
    final: bool = False
    gateway_transaction_id: str | None = None
    provider_status: str | None = None
    decline_reason: DeclineReason | None = None
    decline_code: str | None = None
    failure: str | None = None
    message: str | None = None
    next_action: NextAction | None = None
    saved_method: SavedMethod | None = None  # kept by the gateway (``PaymentMethod.save``)
    exchange: str | None = None
    checks: int = 0  # how many times reconciliation asked the gateway about it
    next_check_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def succeeded(self) -> bool:
        return self.status is TransactionStatus.SUCCEEDED
