"""Reading an operation's ``Data`` in the XPAY sandbox: each field checked, the first
problem answered 400 with a ``Message`` naming the field (``Transaction.DateTime``),
never quoting its value.

What the three operations may carry, and how a ``Transaction`` block reads
(providers.md §2.4), is here too: `read_checkout`, `read_refund`, `read_status`.
Documented fields the sandbox does not simulate are accepted and ignored; a field XPAY
does not document is refused [PROPOSAL], so a misspelt one does not pass unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen

from paycore_xpay.sandbox_envelope import failure

__all__ = [
    "CHECKOUT_FIELDS",
    "MAX_TTL",
    "REFUND_FIELDS",
    "STATUS_FIELDS",
    "CheckoutSpec",
    "DataReader",
    "Pair",
    "RefundSpec",
    "StatusQuery",
    "read_checkout",
    "read_refund",
    "read_status",
]

MAX_SUM = 10**12  # kopecks: far above any card payment [PROPOSAL]
MAX_TTL = 1440  # minutes: a page lives a day at most [PROPOSAL]
_MAX_TEXT = 255
_DATE_TIMES = ("%Y-%m-%d %H:%M:%S", "%Y%m%d %H:%M:%S")  # as in XPAY's code and its docs
_PHONE = re.compile(r"\d{7,15}")

# [10005] (providers.md §2.4.1), exactly as XPAY spells them ("Exchnge" included).
CHECKOUT_FIELDS = frozenset(
    {
        "PayType", "Phone", "Email", "Account", "FirstName", "LastName", "MiddleName",
        "IPN", "PaymentSum", "Order", "Purpose", "ClientIP", "PanSuffix", "Currency",
        "Exchnge", "Signature", "AccountID", "Sum", "BrowserFingerprint", "RecipientCard",
        "MIDs", "PaymentInfo", "RegistryAttr", "Service", "Callback", "BillAttr", "TTL",
        "CallBackURL", "AccountPayments", "ticket", "cashiersignature", "Transaction",
    }
)  # fmt: skip
REFUND_FIELDS = frozenset({"Transaction", "TxnID", "Sum", "ticket", "cashiersignature"})
STATUS_FIELDS = frozenset({"OperationID", "TransactionID", "TerminalID"})
_CURRENCIES = ("UAH", "980")


class DataReader:
    """The fields of one JSON object, at ``path`` (``""`` for ``Data`` itself)."""

    def __init__(self, value: Any, path: str = "") -> None:
        if not isinstance(value, Mapping):
            raise failure(400, f"{path or 'Data'} must be a JSON object")
        self.fields = value
        self.path = path

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def only(self, allowed: frozenset[str]) -> None:
        for name in self.fields:
            if name not in allowed:
                raise failure(400, f"{self.at(str(name)[:40])} is not a field of this operation")

    def present(self, name: str) -> bool:
        """Whether ``name`` is given: absent, null and "" all mean not given."""
        return self.fields.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False, limit: int = _MAX_TEXT) -> str | None:
        if not self.present(name):
            if required:
                raise failure(400, f"{self.at(name)} is missing")
            return None
        value = self.fields[name]
        if not isinstance(value, str):
            raise failure(400, f"{self.at(name)} must be a string")
        if len(value) > limit or not value.isprintable():
            raise failure(
                400, f"{self.at(name)} must be printable text of {limit} characters or less"
            )
        return value

    def integer(
        self, name: str, *, required: bool = False, minimum: int = 1, maximum: int = MAX_SUM
    ) -> int | None:
        if not self.present(name):
            if required:
                raise failure(400, f"{self.at(name)} is missing")
            return None
        value = self.fields[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise failure(400, f"{self.at(name)} must be an integer")
        if not minimum <= value <= maximum:
            raise failure(400, f"{self.at(name)} must be from {minimum} to {maximum}")
        return value

    def url(self, name: str) -> str | None:
        value = self.text(name, limit=2048)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise failure(400, f"{self.at(name)} must be an http or https URL")
        return value

    def block(self, name: str, *, required: bool = False) -> DataReader | None:
        if not self.present(name):
            if required:
                raise failure(400, f"{self.at(name)} is missing")
            return None
        return DataReader(self.fields[name], self.at(name))


@frozen
class Pair:
    """A partner transaction: XPAY's idempotency key and a way to find an operation."""

    transaction_id: str
    terminal_id: str


@frozen(kw_only=True)
class CheckoutSpec:
    """What a [10005] request asks for."""

    pair: Pair
    payment_sum: int  # kopecks
    order: str | None
    purpose: str | None
    callback_url: str | None
    success_url: str | None
    fail_url: str | None
    ttl: int | None  # minutes
    email: str | None
    phone: str | None


@frozen(kw_only=True)
class RefundSpec:
    """What a [30203] request asks for: ``sum`` None refunds everything left."""

    pair: Pair
    txn_id: str
    sum: int | None


@frozen(kw_only=True)
class StatusQuery:
    """What a [20003] request asks about: an OperationID, or a pair."""

    operation_id: int | None = None
    pair: Pair | None = None


def read_checkout(data: Any, *, terminal_id: str) -> CheckoutSpec:
    reader = DataReader(data)
    reader.only(CHECKOUT_FIELDS)
    pair = _transaction(reader, terminal_id)
    payment_sum = reader.integer("PaymentSum", required=True)
    currency = reader.text("Currency")
    if currency is not None and currency not in _CURRENCIES:
        raise failure(400, "Currency: this terminal takes UAH only")
    phone = reader.text("Phone", limit=15)
    if phone is not None and not _PHONE.fullmatch(phone):
        raise failure(400, "Phone must be 7 to 15 digits, in international form without +")
    callback = reader.block("Callback")
    success = fail = None
    if callback is not None:
        callback.only(frozenset({"PaySuccess", "PayFail"}))
        success_block = callback.block("PaySuccess")
        fail_block = callback.block("PayFail")
        for block in (success_block, fail_block):
            if block is not None:
                block.only(frozenset({"URL"}))
        success = success_block.url("URL") if success_block else None
        fail = fail_block.url("URL") if fail_block else None
    assert payment_sum is not None  # required: refused otherwise
    return CheckoutSpec(
        pair=pair,
        payment_sum=payment_sum,
        order=reader.text("Order", limit=64),
        purpose=reader.text("Purpose"),
        callback_url=reader.url("CallBackURL"),
        success_url=success,
        fail_url=fail,
        ttl=reader.integer("TTL", maximum=MAX_TTL),
        email=reader.text("Email"),
        phone=phone,
    )


def read_refund(data: Any, *, terminal_id: str) -> RefundSpec:
    reader = DataReader(data)
    reader.only(REFUND_FIELDS)
    pair = _transaction(reader, terminal_id)
    txn_id = reader.text("TxnID", required=True, limit=64)
    assert txn_id is not None  # required: refused otherwise
    return RefundSpec(pair=pair, txn_id=txn_id, sum=reader.integer("Sum"))


def read_status(data: Any) -> StatusQuery:
    """Either ``OperationID`` or ``TransactionID`` and ``TerminalID``; the others empty."""
    reader = DataReader(data)
    reader.only(STATUS_FIELDS)
    by_pair = reader.present("TransactionID") or reader.present("TerminalID")
    if reader.present("OperationID"):
        if by_pair:
            raise failure(400, "send OperationID, or TransactionID and TerminalID, not both")
        return StatusQuery(operation_id=reader.integer("OperationID", maximum=2**63 - 1))
    if not by_pair:
        raise failure(400, "OperationID, or TransactionID and TerminalID, is missing")
    transaction_id = reader.text("TransactionID", required=True, limit=64)
    terminal_id = reader.text("TerminalID", required=True, limit=64)
    assert transaction_id is not None and terminal_id is not None  # required
    return StatusQuery(pair=Pair(transaction_id, terminal_id))


def _transaction(reader: DataReader, terminal_id: str) -> Pair:
    block = reader.block("Transaction", required=True)
    assert block is not None  # required: refused otherwise
    block.only(frozenset({"TransactionID", "TerminalID", "DateTime"}))
    transaction_id = block.text("TransactionID", required=True, limit=64)
    terminal = block.text("TerminalID", required=True, limit=64)
    date_time = block.text("DateTime", required=True, limit=19)
    if terminal != terminal_id:
        raise failure(400, "Transaction.TerminalID is not a terminal of this partner")
    if not any(_parses(date_time, form) for form in _DATE_TIMES):
        raise failure(400, "Transaction.DateTime must read YYYY-MM-DD HH:MM:SS")
    assert transaction_id is not None and terminal is not None  # required
    return Pair(transaction_id, terminal)


def _parses(text: str | None, form: str) -> bool:
    try:
        datetime.strptime(text or "", form)
    except ValueError:
        return False
    return True
