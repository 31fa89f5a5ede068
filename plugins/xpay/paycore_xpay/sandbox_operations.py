"""The XPAY sandbox's operations: a checkout payment [10005] and a refund [30203], as
[20003] describes them and as the sandbox's state snapshot shows them.

Both carry XPAY's ``OperationID``, the partner's pair (``TransactionID``,
``TerminalID``), an ``OperationStatus`` ("1" created and waiting for the customer
[PROPOSAL], "10" done, "21" failed [DOC]), a ``Sum`` in kopecks and, once ended, XPAY's
``TxnID``. A failed one says why (``Reason`` [PROPOSAL]). The record also keeps what
its request answered first (a repeat of the pair with the same data gets it again) and
that request's fingerprint. No card number is ever part of one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from attrs import define, field

from paycore_xpay.sandbox_fields import CheckoutSpec, Pair

__all__ = [
    "CHECKOUT",
    "CREATED",
    "DONE",
    "FAILED",
    "REFUND",
    "STATUS",
    "Operation",
    "Payment",
    "Refund",
    "date_time",
]

# Operation types [DOC].
CHECKOUT = 10005
STATUS = 20003
REFUND = 30203

# Operation statuses: "10" and "21" [DOC], "1" [PROPOSAL].
CREATED = "1"
DONE = "10"
FAILED = "21"


def date_time(seconds: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, as [20003] writes a ``DateTime`` [PROPOSAL: UTC]."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


@define(kw_only=True)
class Operation:
    """What a payment and a refund share."""

    operation_type: int
    operation_id: int
    pair: Pair
    sum: int
    status: str
    changed: int  # unix seconds of the current status
    fingerprint: str
    answer: dict[str, Any]  # the Data its request answered first
    txn_id: str | None = None
    reason: str | None = None

    def status_data(self) -> dict[str, Any]:
        """The [20003] answer's ``Data`` about this operation."""
        data: dict[str, Any] = {
            "OperationID": self.operation_id,
            "OperationType": self.operation_type,
            "TransactionID": self.pair.transaction_id,
            "TerminalID": self.pair.terminal_id,
            "OperationStatus": self.status,
            "Sum": self.sum,
            "DateTime": date_time(self.changed),
        }
        if self.txn_id is not None:
            data["TxnID"] = self.txn_id
        if self.status == FAILED and self.reason is not None:
            data["Reason"] = self.reason
        return data

    def as_json(self) -> dict[str, Any]:
        """The operation in the sandbox's state snapshot (integers for every sum)."""
        return {
            "operation_id": self.operation_id,
            "operation_type": self.operation_type,
            "transaction_id": self.pair.transaction_id,
            "terminal_id": self.pair.terminal_id,
            "status": self.status,
            "sum": self.sum,
            "changed": self.changed,
            "txn_id": self.txn_id,
            "reason": self.reason,
        }


@define(kw_only=True)
class Payment(Operation):
    """A checkout link [10005] and the payment the customer makes on its page."""

    uuid: str
    uri: str
    expires: int  # unix seconds: the page answers 410 from then on, unless paid
    order: str | None
    purpose: str | None
    callback_url: str | None
    success_url: str | None
    fail_url: str | None
    email: str | None
    phone: str | None
    refunded_sum: int = 0
    refunds: list[int] = field(factory=list)
    # The customer submitted the page and the payment is being taken (the partner's
    # check may be under way): the page takes no second submission, the page does not expire.
    in_progress: bool = False

    @classmethod
    def open(cls, spec: CheckoutSpec, **values: Any) -> Payment:
        return cls(
            operation_type=CHECKOUT,
            pair=spec.pair,
            sum=spec.payment_sum,
            status=CREATED,
            order=spec.order,
            purpose=spec.purpose,
            callback_url=spec.callback_url,
            success_url=spec.success_url,
            fail_url=spec.fail_url,
            email=spec.email,
            phone=spec.phone,
            **values,
        )

    @property
    def payable(self) -> bool:
        """Whether the customer may still pay on the page."""
        return self.status == CREATED and not self.in_progress

    @property
    def refundable(self) -> int:
        """Kopecks left to refund (0 unless paid)."""
        return self.sum - self.refunded_sum if self.status == DONE else 0

    def status_data(self) -> dict[str, Any]:
        data = super().status_data()
        if self.status == CREATED:
            data["URI"] = self.uri
        data["RefundedSum"] = self.refunded_sum
        return data

    def as_json(self) -> dict[str, Any]:
        return {
            **super().as_json(),
            "refunded_sum": self.refunded_sum,
            "refunds": list(self.refunds),
            "uuid": self.uuid,
            "uri": self.uri,
            "expires": self.expires,
            "order": self.order,
            "purpose": self.purpose,
            "callback_url": self.callback_url,
            "success_url": self.success_url,
            "fail_url": self.fail_url,
            "in_progress": self.in_progress,
        }


@define(kw_only=True)
class Refund(Operation):
    """A cancel or refund [30203] of a paid payment, whole or in part."""

    parent_operation_id: int

    def status_data(self) -> dict[str, Any]:
        return {**super().status_data(), "ParentOperationID": self.parent_operation_id}

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "parent_operation_id": self.parent_operation_id}
