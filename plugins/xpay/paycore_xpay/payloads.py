"""The Data paycore sends XPAY for each operation, before it is sealed.

Every mutation carries ``Transaction: {TransactionID, TerminalID, DateTime}``: paycore's
transaction id, the configured terminal and the time in UTC [PROPOSAL: the zone]. The
pair is the idempotency key [inferred from DOC]: XPAY answers a repeat with the same
Data (``DateTime`` aside) as it answered the first, and refuses (409) one with other
Data. Sums are integer kopecks [DOC]. Values paycore does not have are left out.

Input XPAY would refuse is refused here, before anything is sent: another currency
than UAH, a saved or off-session method, a method the hosted page does not offer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from paycore.errors import InvalidRequest
from paycore.transactions.model import PaymentRequest, TransactionType
from paycore_xpay.answers import OperationState
from paycore_xpay.config import XpayConfig
from paycore_xpay.messages import DATE_TIME

__all__ = [
    "CURRENCY",
    "check_payment",
    "checkout_link",
    "operation_id",
    "refund",
    "status_of_operation",
    "status_of_transaction",
    "transaction",
]

CURRENCY = "UAH"  # [PROPOSAL] XPAY's checkout takes hryvnias; no Currency field is sent
PHONE_FIELD = "phone"  # [PROPOSAL] the PaymentMethod field a phone number comes in
_PHONE_DIGITS = re.compile(r"[0-9]{10,15}")


def check_payment(request: PaymentRequest, config: XpayConfig) -> None:
    """Refuse a payment XPAY's hosted page cannot take."""
    if request.transaction_type is not TransactionType.SALE:
        raise InvalidRequest(
            f"XPAY takes a payment at once through its hosted page: a sale, not a "
            f"{request.transaction_type}"
        )
    check_currency(request)
    method = request.payment_method
    if method is None:
        return
    if method.token is not None or method.save or method.off_session:
        raise InvalidRequest(
            "XPAY keeps no saved payment methods: the customer pays on the hosted page "
            "(no token, save or off_session)"
        )
    if method.type not in config.payment_methods:
        raise InvalidRequest(
            f"the hosted page offers {', '.join(config.payment_methods)}; "
            f"not {method.type[:32]!r} (see payment_methods in the gateway's config)"
        )


def check_currency(request: PaymentRequest) -> None:
    if request.amount.currency.code != CURRENCY:
        raise InvalidRequest(f"XPAY takes {CURRENCY} only, not {request.amount.currency.code}")


def checkout_link(config: XpayConfig, request: PaymentRequest, *, now: datetime) -> dict[str, Any]:
    """10005 Get Checkout Link: the hosted page where the customer pays ``request``."""
    data: dict[str, Any] = {
        "PaymentSum": request.amount.minor_units,
        "Order": request.payment_id,
        "Purpose": request.description or f"Payment {request.payment_id}",
    }
    callback_url = request.notification_url or config.callback_url
    if callback_url:
        data["CallBackURL"] = callback_url
    returns = _optional(
        PaySuccess=request.return_url, PayFail=request.cancel_url or request.return_url
    )
    if returns:
        data["Callback"] = {name: {"URL": url} for name, url in returns.items()}
    data["TTL"] = config.page_ttl
    customer = request.customer
    data |= _optional(
        Email=customer.email if customer else None,
        Phone=_phone(request),
    )
    data["Transaction"] = transaction(config, request.transaction_id, now=now)
    return data


def status_of_transaction(config: XpayConfig, transaction_id: str) -> dict[str, Any]:
    """20003 Get Operation Status of the operation paycore's ``transaction_id`` made."""
    return {"TransactionID": transaction_id, "TerminalID": config.terminal_id}


def status_of_operation(operation: int) -> dict[str, Any]:
    """20003 Get Operation Status of XPAY's operation ``operation``."""
    return {"OperationID": operation}


def refund(
    config: XpayConfig, request: PaymentRequest, payment: OperationState, *, now: datetime
) -> dict[str, Any]:
    """30203 Cancel/Refund Checkout Payment of ``payment`` (as 20003 read it).

    ``Sum`` is left out when the refund is the whole payment and nothing was refunded
    before: XPAY then cancels or refunds it in full [DOC: no Sum, the whole sum].
    """
    if payment.txn_id is None:
        raise InvalidRequest("the payment has no XPAY TxnID to refund: it was not paid")
    data: dict[str, Any] = {
        "Transaction": transaction(config, request.transaction_id, now=now),
        "TxnID": payment.txn_id,
    }
    whole = request.amount.minor_units == payment.sum and payment.refunded_sum == 0
    if not whole:
        data["Sum"] = request.amount.minor_units
    return data


def transaction(config: XpayConfig, transaction_id: str, *, now: datetime) -> dict[str, str]:
    return {
        "TransactionID": transaction_id,
        "TerminalID": config.terminal_id,
        "DateTime": now.strftime(DATE_TIME),
    }


def operation_id(request: PaymentRequest) -> int:
    """XPAY's OperationID of the payment ``request`` is about (its gateway_reference)."""
    reference = request.gateway_reference
    if not (reference and reference.isascii() and reference.isdigit() and len(reference) <= 19):
        raise InvalidRequest(
            f"a {request.transaction_type} needs the payment's gateway_reference: XPAY's "
            "OperationID, a number"
        )
    return int(reference)


def _phone(request: PaymentRequest) -> str | None:
    """[PROPOSAL] The customer's phone from the method's ``phone`` field, digits only:
    XPAY writes phones in international format without ``+``."""
    method = request.payment_method
    phone = method.fields.get(PHONE_FIELD) if method is not None else None
    if phone is None:
        return None
    digits = re.sub(r"[\s()+.-]", "", phone)
    if not _PHONE_DIGITS.fullmatch(digits):
        raise InvalidRequest(
            "the phone field must be a phone number in international format (10 to 15 digits)"
        )
    return digits


def _optional(**fields: str | None) -> dict[str, str]:
    return {key: value for key, value in fields.items() if value}
