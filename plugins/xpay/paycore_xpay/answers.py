"""The Data of XPAY's answers read into typed views: checkout links, operations, refunds.

`DataReader` checks every field it reads and raises `GatewayProtocolError` naming the
field, never quoting a value. Ids and sums are integers [DOC: kopecks]; an integer
written as a string of digits is read alike (XPAY's examples write ids both ways), a
fraction never. Statuses are strings ("10"); a number is read alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from paycore.gateways.fields import AnswerReader
from paycore_xpay.messages import DATE_TIME, NAME

__all__ = ["CheckoutLink", "DataReader", "OperationState", "RefundAnswer", "read"]

_MAX_ID = 255


@frozen(kw_only=True)
class CheckoutLink:
    """A 10005 answer: the operation made for the payment and its hosted page [CODE]."""

    operation_id: int
    status: str  # "10": the link was made (the payment itself waits for the customer)
    uri: str | None
    reason: str | None


@frozen(kw_only=True)
class OperationState:
    """A 20003 answer: where one operation stands [DOC; PROPOSAL beyond "10" and "21"].

    ``operation_type`` is 10005 (a payment) or 30203 (a refund); ``txn_id`` is XPAY's
    transaction id once paid or refunded; ``uri`` the page while the payment waits;
    ``refunded_sum`` what was refunded of a payment; ``parent_operation_id`` the
    payment a refund refunded.
    """

    operation_id: int
    operation_type: int
    transaction_id: str
    terminal_id: str
    status: str
    sum: int
    txn_id: str | None
    uri: str | None
    reason: str | None
    refunded_sum: int
    parent_operation_id: int | None
    changed_at: datetime | None = None  # ``DateTime``: when it last changed (UTC)

    @property
    def refundable(self) -> int:
        """Kopecks of a payment not refunded yet."""
        return self.sum - self.refunded_sum


@frozen(kw_only=True)
class RefundAnswer:
    """A 30203 answer: the refund operation made [DOC; PROPOSAL: the fields]."""

    operation_id: int
    status: str
    sum: int | None
    txn_id: str | None
    parent_operation_id: int | None
    reason: str | None


class DataReader(AnswerReader):
    """`AnswerReader` for the Data of XPAY's answers."""

    def checkout_link(self, data: Mapping[str, Any]) -> CheckoutLink:
        return CheckoutLink(
            operation_id=self.number(data, "OperationID"),
            status=self.status(data),
            uri=self._url(data, "URI"),
            reason=self.optional_identifier(data, "Reason"),
        )

    def operation_state(self, data: Mapping[str, Any]) -> OperationState:
        refunded = self.optional_number(data, "RefundedSum")
        return OperationState(
            operation_id=self.number(data, "OperationID"),
            operation_type=self.number(data, "OperationType"),
            transaction_id=self.identifier(data, "TransactionID"),
            terminal_id=self.identifier(data, "TerminalID"),
            status=self.status(data),
            sum=self.number(data, "Sum"),
            txn_id=self.optional_identifier(data, "TxnID"),
            uri=self._url(data, "URI"),
            reason=self.optional_identifier(data, "Reason"),
            refunded_sum=0 if refunded is None else refunded,
            parent_operation_id=self.optional_number(data, "ParentOperationID"),
            changed_at=self.optional_time(data, "DateTime"),
        )

    def refund_answer(self, data: Mapping[str, Any]) -> RefundAnswer:
        return RefundAnswer(
            operation_id=self.number(data, "OperationID"),
            status=self.status(data),
            sum=self.optional_number(data, "Sum"),
            txn_id=self.optional_identifier(data, "TxnID"),
            parent_operation_id=self.optional_number(data, "ParentOperationID"),
            reason=self.optional_identifier(data, "Reason"),
        )

    # -- fields --------------------------------------------------------------------------

    def number(self, body: Mapping[str, Any], key: str) -> int:
        """A whole number of zero or more: an id, or kopecks."""
        value = body.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            value = int(value)
        if type(value) is not int or value < 0:
            raise self.error(f"the answer's {key!r} is missing or not a whole number")
        return value

    def optional_number(self, body: Mapping[str, Any], key: str) -> int | None:
        return None if body.get(key) in (None, "") else self.number(body, key)

    def optional_time(self, body: Mapping[str, Any], key: str) -> datetime | None:
        """A ``YYYY-MM-DD HH:MM:SS`` time, in UTC [PROPOSAL: UTC]."""
        value = body.get(key)
        if value in (None, ""):
            return None
        try:
            return datetime.strptime(str(value), DATE_TIME).replace(tzinfo=UTC)
        except ValueError:
            raise self.error(f"the answer's {key!r} is not a YYYY-MM-DD HH:MM:SS time") from None

    def status(self, body: Mapping[str, Any]) -> str:
        value = body.get("OperationStatus")
        if type(value) is int:
            value = str(value)
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.error("the answer's 'OperationStatus' is missing or not a status code")
        return value[:16]

    def identifier(self, body: Mapping[str, Any], key: str) -> str:
        """A short visible-ASCII string (an id, a code); a number is read as its digits."""
        value = body.get(key)
        if type(value) is int:
            value = str(value)
        if not (
            isinstance(value, str)
            and 0 < len(value) <= _MAX_ID
            and value.isascii()
            and value.isprintable()
        ):
            raise self.error(f"the answer's {key!r} is missing or not an identifier")
        return value

    def optional_identifier(self, body: Mapping[str, Any], key: str) -> str | None:
        return None if body.get(key) in (None, "") else self.identifier(body, key)

    def _url(self, body: Mapping[str, Any], key: str) -> str | None:
        value = self.optional_text(body, key)
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            raise self.error(f"the answer's {key!r} is not an http(s) URL")
        return value


read = DataReader(NAME)
