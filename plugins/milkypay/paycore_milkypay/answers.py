"""Invoices, refunds and error answers read into paycore's results.

One invoice answers for several transactions: its authorization (a ``delayed_charge``
holds a reserve), its sale (a ``charge``), the one capture and the void of a hold
[PROPOSAL: ``process`` with ``action`` capture or void]. `invoice_result` reads it for
the transaction type asked about; a capture or void of which the invoice shows no
trace yet (the reserve still held) is ``None``, which the gateway turns into "not
found". Declines carry the invoice's ``resolution`` as their code.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from attrs import evolve

from paycore.errors import GatewayRefused, InvalidRequest
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutSession,
    DeclineReason,
    GatewayResult,
    NextAction,
    NextActionKind,
    Outcome,
    TransactionType,
)
from paycore_milkypay.documents import ErrorAnswer, Invoice, Refund

__all__ = [
    "CHARGED_LATER",
    "DUPLICATE_REFERENCE",
    "PAID",
    "PENDING",
    "checkout_session_from",
    "declined",
    "invoice_result",
    "payment_result",
    "redirect_from",
    "refund_result",
    "refused",
    "step_result",
    "voided",
]

DUPLICATE_REFERENCE = "duplicate_reference_id"  # reference_id used before: look it up

# Statuses an invoice reaches only once paid: refunds and charge-backs.
CHARGED_LATER = frozenset(
    {
        "refunding",
        "refund_pending",
        "partially_refunded",
        "refunded",
        "refund_error",
        "refund_failed",
        "charged_back",
        "partially_charged_back",
    }
)
PAID = frozenset({"processed", "partially_processed"}) | CHARGED_LATER
# Not decided yet: more updates follow.
PENDING = frozenset({"created", "processing", "process_pending", "process_error"})

# [PROPOSAL] The platform's resolutions -> the normalised reason.
RESOLUTION_REASONS: Mapping[str, DeclineReason] = {
    "declined": DeclineReason.CARD_DECLINED,
    "insufficient_funds": DeclineReason.INSUFFICIENT_FUNDS,
    "expired_card": DeclineReason.EXPIRED_CARD,
    "authentication_failed": DeclineReason.AUTHENTICATION_FAILED,
    "fraud_suspected": DeclineReason.FRAUD_SUSPECTED,
    "voided": DeclineReason.CANCELED,
    "terminated": DeclineReason.CANCELED,
    "expired": DeclineReason.EXPIRED,
}
# An error answer's first code -> the reason; codes not here are INVALID_REQUEST.
ERROR_REASONS: Mapping[str, DeclineReason] = {
    "currency_not_supported": DeclineReason.CURRENCY_NOT_SUPPORTED,
    "invalid_status": DeclineReason.NOT_PERMITTED,
    "service_not_found": DeclineReason.METHOD_NOT_SUPPORTED,
}


# -- invoices ----------------------------------------------------------------------------


def invoice_result(invoice: Invoice, kind: TransactionType) -> GatewayResult | None:
    """What ``invoice`` says about its transaction of type ``kind`` (`payment_result`
    for an authorization or a sale, `step_result` for a capture or a void)."""
    if kind in (TransactionType.CAPTURE, TransactionType.VOID):
        return step_result(invoice, kind)
    return payment_result(invoice, kind)


def payment_result(invoice: Invoice, kind: TransactionType) -> GatewayResult:
    """What ``invoice`` says about the authorization or sale that created it.

    Authorize: approved while the reserve is held (until ``reserve_expires``) and once
    captured or voided since. Sale: approved once paid; a reserve means nothing. The
    rest is pending (processing, or the customer's redirect while ``created``) or
    declined.
    """
    result = _result(invoice)
    status = invoice.status
    if kind is TransactionType.AUTHORIZE:
        if invoice.held:
            return evolve(
                result,
                outcome=Outcome.APPROVED,
                amount=invoice.reserved_amount,
                authorization_expires_at=invoice.reserve_expires,
            )
        if status in PAID or voided(invoice):
            return evolve(result, outcome=Outcome.APPROVED, amount=invoice.amount)
    elif kind is TransactionType.SALE:
        if status in PAID:
            return evolve(result, outcome=Outcome.APPROVED, amount=_paid_amount(invoice))
    else:
        raise InvalidRequest(f"an invoice answers for payments, not for a {kind}")
    if status == "created" and invoice.flow_data is not None:
        return evolve(result, outcome=Outcome.ACTION_REQUIRED, next_action=redirect_from(invoice))
    if status in PENDING:
        return result
    return _declined(result, invoice)


def step_result(invoice: Invoice, kind: TransactionType) -> GatewayResult | None:
    """What ``invoice`` says about the capture or void of its reserve.

    Capture: approved once paid. Void: approved once terminated with resolution
    ``voided``. ``None`` while the reserve is still held: no trace of it yet. Declined
    (not permitted) when the invoice holds no reserve and never will.
    """
    result = _result(invoice)
    status = invoice.status
    if kind is TransactionType.CAPTURE and status in PAID:
        return evolve(
            result,
            outcome=Outcome.APPROVED,
            amount=_paid_amount(invoice),
            transaction_reference=f"{invoice.id}:capture",
        )
    if kind is TransactionType.VOID and voided(invoice):
        return evolve(
            result,
            outcome=Outcome.APPROVED,
            amount=invoice.amount,
            transaction_reference=f"{invoice.id}:void",
        )
    if kind not in (TransactionType.CAPTURE, TransactionType.VOID):
        raise InvalidRequest(f"a capture or a void, not a {kind}")
    if invoice.held:
        return None
    if status in PENDING - {"created"}:
        return result  # the platform is still at it
    what = "captured" if kind is TransactionType.CAPTURE else "voided"
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        decline_reason=DeclineReason.NOT_PERMITTED,
        decline_code=invoice.resolution or status,
        message=f"the invoice is {status}: it holds no reserve to be {what}",
    )


def _result(invoice: Invoice) -> GatewayResult:
    return GatewayResult(
        outcome=Outcome.PROCESSING, gateway_reference=invoice.id, provider_status=invoice.status
    )


def _declined(result: GatewayResult, invoice: Invoice) -> GatewayResult:
    status = invoice.status
    if status == "expired":
        reason = DeclineReason.EXPIRED
    elif status == "terminated":
        reason = DeclineReason.CANCELED
    else:  # process_failed
        reason = RESOLUTION_REASONS.get(invoice.resolution or "", DeclineReason.CARD_DECLINED)
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        decline_reason=reason,
        decline_code=invoice.resolution or status,
    )


def voided(invoice: Invoice) -> bool:
    """Whether a hold was voided (released without a capture)."""
    return invoice.status == "terminated" and invoice.resolution == "voided"


def _paid_amount(invoice: Invoice) -> Money:
    # What was taken; an answer without it (zero) took the invoice's amount.
    paid = invoice.processed_amount
    return paid if paid.is_positive() else invoice.amount


def redirect_from(invoice: Invoice) -> NextAction:
    """Where the customer goes to pay ``invoice`` (its ``flow_data``)."""
    flow = invoice.flow_data
    if flow is None:
        raise InvalidRequest(f"invoice {invoice.id} has no flow_data to send the customer to")
    if flow.method == "POST":
        return NextAction(
            kind=NextActionKind.REDIRECT,
            url=flow.action,
            method="POST",
            parameters=flow.params,
            expires_at=invoice.expires,
        )
    url = flow.action
    if flow.params:
        url = str(httpx.URL(url).copy_merge_params({k: str(v) for k, v in flow.params.items()}))
    return NextAction.redirect(url, expires_at=invoice.expires)


def checkout_session_from(invoice: Invoice, hosted_page: str) -> CheckoutSession:
    """The hosted page of a created invoice: its ``flow_data``, else ``hosted_page``."""
    next_action = (
        redirect_from(invoice)
        if invoice.flow_data is not None
        else NextAction.redirect(hosted_page, expires_at=invoice.expires)
    )
    return CheckoutSession(
        reference=invoice.id,
        gateway_reference=invoice.id,
        next_action=next_action,
        expires_at=invoice.expires,
    )


# -- refunds -----------------------------------------------------------------------------


def refund_result(refund: Refund) -> GatewayResult:
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=refund.invoice_id,
        transaction_reference=refund.id,
        provider_status=refund.status,
        amount=refund.amount,
    )
    if refund.status == "processed":
        return evolve(result, outcome=Outcome.APPROVED)
    if refund.status == "processing":
        return result
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        amount=None,
        decline_reason=RESOLUTION_REASONS.get(
            refund.resolution or "", DeclineReason.PROCESSING_ERROR
        ),
        decline_code=refund.resolution or refund.status,
    )


# -- errors ------------------------------------------------------------------------------


def declined(error: ErrorAnswer, gateway_reference: str | None = None) -> GatewayResult:
    """A 4xx answer to a payment operation: the platform refused, nothing happened."""
    if error.http_status == 404:
        reason = DeclineReason.NOT_FOUND
    elif (error.code or "").startswith("amount_"):
        reason = DeclineReason.AMOUNT_INVALID
    else:
        reason = ERROR_REASONS.get(error.code or "", DeclineReason.INVALID_REQUEST)
    return GatewayResult(
        outcome=Outcome.DECLINED,
        gateway_reference=gateway_reference,
        decline_reason=reason,
        decline_code=error.code or ("not_found" if error.http_status == 404 else None),
        message=error.detail,
        provider_status=f"http_{error.http_status}",
    )


def refused(error: ErrorAnswer, what: str, *, gateway: str) -> GatewayRefused:
    """The error to raise when the platform refuses ``what`` (a hosted page's invoice,
    the payment methods): those operations have no `GatewayResult` to carry a decline.

    Codes are quoted, the platform's details are not (they may echo what was sent).
    """
    codes = ", ".join(error.codes) or "no error code"
    return GatewayRefused(
        f"the platform refused {what} ({codes[:200]})",
        gateway=gateway,
        http_status=error.http_status,
        request_id=error.request_id,
        code=error.code,
    )
