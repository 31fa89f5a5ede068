"""WooshPay's answers read into paycore's results: intents, refunds, errors, sessions, methods.

A PaymentIntent answers for several transactions at once (its authorization, its one
capture, its cancellation), so `intent_result` reads it for the transaction type asked
about. Objects' ``created`` is in milliseconds, events' ``created`` and sessions'
``expires_at`` in seconds; every timestamp is read with ``unit="auto"`` because the
documentation shows both.

[PROPOSAL] A PaymentIntent made by a checkout session or a payment link carries
``metadata.paycore_checkout``: there a failed attempt is not final (the customer may try
again on the page until it expires), so it reads as processing, not declined.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from attrs import evolve

from paycore.errors import GatewayRefused, InvalidRequest, OutcomeUnknown
from paycore.gateways.fields import AnswerReader
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    DeclineReason,
    GatewayResult,
    NextAction,
    Outcome,
    SavedMethod,
    TransactionType,
)

__all__ = [
    "AUTHORIZATION_WINDOW",
    "CHECKOUT_MARKER",
    "NAME",
    "cancellation_of",
    "checkout_session_from",
    "decline_code_from",
    "decline_reason_from",
    "declined_from",
    "from_checkout",
    "intent_result",
    "is_missing",
    "money",
    "paycore_transaction",
    "payment_link_from",
    "read",
    "refund_result",
    "refused",
    "saved_method_from",
    "success_body",
]

NAME = "wooshpay"
REQUEST_ID_HEADER = "Request-Id"
AUTHORIZATION_WINDOW = timedelta(days=7)  # "capture within 7 days", then released
CHECKOUT_MARKER = "paycore_checkout"  # metadata key of intents a hosted page or link made

# Error codes and decline codes -> the normalised reason. A decline code (the issuer's
# reason) is looked up before the error code it comes with (`card_declined`).
DECLINE_REASONS = {
    "card_declined": DeclineReason.CARD_DECLINED,
    "generic_decline": DeclineReason.CARD_DECLINED,
    "do_not_honor": DeclineReason.CARD_DECLINED,
    "insufficient_funds": DeclineReason.INSUFFICIENT_FUNDS,
    "lost_card": DeclineReason.LOST_OR_STOLEN,
    "stolen_card": DeclineReason.LOST_OR_STOLEN,
    "expired_card": DeclineReason.EXPIRED_CARD,
    "incorrect_cvc": DeclineReason.INCORRECT_CVC,
    "invalid_cvc": DeclineReason.INCORRECT_CVC,
    "incorrect_number": DeclineReason.INCORRECT_NUMBER,
    "invalid_number": DeclineReason.INCORRECT_NUMBER,
    "fraudulent": DeclineReason.FRAUD_SUSPECTED,
    "card_velocity_exceeded": DeclineReason.LIMIT_EXCEEDED,
    "authentication_required": DeclineReason.AUTHENTICATION_FAILED,
    "payment_intent_authentication_failure": DeclineReason.AUTHENTICATION_FAILED,
    "payment_method_unactivated": DeclineReason.METHOD_NOT_SUPPORTED,
    "currency_not_supported": DeclineReason.CURRENCY_NOT_SUPPORTED,
    "amount_too_large": DeclineReason.AMOUNT_INVALID,
    "amount_too_small": DeclineReason.AMOUNT_INVALID,
    "payment_intent_unexpected_state": DeclineReason.NOT_PERMITTED,
    "charge_already_refunded": DeclineReason.NOT_PERMITTED,
    "processing_error": DeclineReason.PROCESSING_ERROR,
}
# An error type whose codes are all unknown -> its reason.
ERROR_TYPE_REASONS = {
    "card_error": DeclineReason.CARD_DECLINED,
    "api_error": DeclineReason.PROCESSING_ERROR,
}

INTENT_STATUSES = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "succeeded",
        "canceled",
    }
)
# Cancellation reasons that mean nobody paid in time, rather than somebody canceled.
EXPIRY_REASONS = frozenset({"abandoned", "automatic"})

REFUND_OUTCOMES = {
    "succeeded": Outcome.APPROVED,
    "pending": Outcome.PROCESSING,
    "requires_action": Outcome.PROCESSING,
    "failed": Outcome.DECLINED,
    "canceled": Outcome.DECLINED,
}
REFUND_FAILURES = {
    "lost_or_stolen_card": DeclineReason.LOST_OR_STOLEN,
    "expired_or_canceled_card": DeclineReason.EXPIRED_CARD,
}

read = AnswerReader(NAME)


# -- payment intents ---------------------------------------------------------------------


def intent_result(intent: Mapping[str, Any], kind: TransactionType) -> GatewayResult:
    """What ``intent`` says about its transaction of type ``kind``.

    Authorize: approved once authorized, even if captured or canceled since. Sale:
    approved when succeeded. Capture: approved when a manual intent succeeded. Void:
    approved when canceled after an authorization. A capture or void of which the intent
    shows no trace did not happen (declined, not found).
    """
    status = read.text(intent, "status")
    if status not in INTENT_STATUSES:
        raise read.error(f"unknown payment intent status {status[:32]!r}")
    authorized = status in ("requires_capture", "succeeded") or (
        status == "canceled" and read.optional_text(intent, "latest_charge") is not None
    )
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=read.text(intent, "id"),
        transaction_reference=read.optional_text(intent, "latest_charge"),
        provider_status=status,
    )
    if kind is TransactionType.CAPTURE:
        if status == "succeeded" and read.text(intent, "capture_method") == "manual":
            return evolve(result, outcome=Outcome.APPROVED, amount=money(intent, "amount_received"))
        return result if status == "processing" else _no_trace(result, "capture", status)
    if kind is TransactionType.VOID:
        if status == "canceled" and authorized:
            return evolve(result, outcome=Outcome.APPROVED, amount=money(intent, "amount"))
        return _no_trace(result, "cancellation", status)
    if kind is TransactionType.AUTHORIZE and authorized:
        created = read.timestamp(intent, "created", unit="auto")
        return evolve(
            result,
            outcome=Outcome.APPROVED,
            amount=money(intent, "amount"),
            authorization_expires_at=(
                created + AUTHORIZATION_WINDOW if status == "requires_capture" else None
            ),
        )
    if kind is TransactionType.SALE and status == "succeeded":
        return evolve(result, outcome=Outcome.APPROVED, amount=money(intent, "amount_received"))
    if status == "requires_action":
        return evolve(result, outcome=Outcome.ACTION_REQUIRED, next_action=_redirect_from(intent))
    if status == "canceled":
        return _canceled(result, intent)
    failure = intent.get("last_payment_error")
    if status == "requires_payment_method" and failure is not None and not from_checkout(intent):
        return _declined(result, read.object(failure, "the last_payment_error"))
    # processing, requires_confirmation, or waiting for the customer on a hosted page
    return result


def _canceled(result: GatewayResult, intent: Mapping[str, Any]) -> GatewayResult:
    reason, code = cancellation_of(intent)
    return evolve(result, outcome=Outcome.DECLINED, decline_reason=reason, decline_code=code)


def cancellation_of(intent: Mapping[str, Any]) -> tuple[DeclineReason, str]:
    """Why an intent was canceled, and WooshPay's word for it."""
    why = read.optional_text(intent, "cancellation_reason")
    reason = DeclineReason.EXPIRED if why in EXPIRY_REASONS else DeclineReason.CANCELED
    return reason, why or "canceled"


def _no_trace(result: GatewayResult, what: str, status: str) -> GatewayResult:
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        decline_reason=DeclineReason.NOT_FOUND,
        decline_code="not_found",
        message=f"the payment intent is {status}: no {what} happened",
    )


def _declined(result: GatewayResult, error: Mapping[str, Any]) -> GatewayResult:
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        decline_reason=decline_reason_from(error),
        decline_code=decline_code_from(error),
        message=read.optional_text(error, "message"),
    )


def _redirect_from(intent: Mapping[str, Any]) -> NextAction:
    # `challenge_redirect: {url}`; Stripe's other redirect kinds keep the same shape.
    action = read.object(intent.get("next_action"), "the payment intent's next_action")
    details = read.object(action.get(read.text(action, "type")), "the next_action's details")
    return NextAction.redirect(read.text(details, "url"))


def from_checkout(intent: Mapping[str, Any]) -> bool:
    return CHECKOUT_MARKER in _metadata(intent)


# -- refunds -----------------------------------------------------------------------------


def refund_result(refund: Mapping[str, Any]) -> GatewayResult:
    status = read.text(refund, "status")
    outcome = REFUND_OUTCOMES.get(status)
    if outcome is None:
        raise read.error(f"unknown refund status {status[:32]!r}")
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=read.text(refund, "payment_intent"),
        transaction_reference=read.text(refund, "id"),
        provider_status=status,
    )
    if outcome is not Outcome.DECLINED:
        return evolve(result, outcome=outcome, amount=money(refund, "amount"))
    failure = read.optional_text(refund, "failure_reason") or status
    return evolve(
        result,
        outcome=outcome,
        decline_reason=(
            DeclineReason.CANCELED
            if status == "canceled"
            else REFUND_FAILURES.get(failure, DeclineReason.PROCESSING_ERROR)
        ),
        decline_code=failure,
    )


# -- errors ------------------------------------------------------------------------------


def declined_from(response: httpx.Response) -> GatewayResult:
    """A 4xx answer to a payment operation: the provider refused, nothing happened.

    Raises `OutcomeUnknown` for an idempotency conflict, which is no refusal (see
    `_key_in_use`); every operation's error answer passes here, so none can miss it.
    """
    error = _error_of(response)
    intent = error.get("payment_intent")
    return GatewayResult(
        outcome=Outcome.DECLINED,
        gateway_reference=(
            read.text(read.object(intent, "the error's payment_intent"), "id") if intent else None
        ),
        decline_reason=decline_reason_from(error),
        decline_code=decline_code_from(error),
        message=read.optional_text(error, "message"),
        provider_status=f"http_{response.status_code}",
    )


def refused(response: httpx.Response, what: str) -> GatewayRefused:
    """The error to raise when the provider refuses ``what`` (a checkout, a saved method).

    Those operations return no `GatewayResult` to carry a decline, so the refusal is
    `GatewayRefused`: definite, nothing was done. Codes are quoted, the provider's
    message is not (it may echo what was sent).
    """
    error = _error_of(response)
    code = read.text(error, "code")
    codes = [code] + [f"{key} {error[key]}" for key in ("decline_code", "param") if error.get(key)]
    return GatewayRefused(
        f"WooshPay refused {what} ({', '.join(codes)[:200]})",
        gateway=NAME,
        http_status=response.status_code,
        request_id=response.headers.get(REQUEST_ID_HEADER),
        code=code[:64],
    )


def _error_of(response: httpx.Response) -> Mapping[str, Any]:
    error = read.object(read.json(response).get("error"), "the answer's error")
    if error.get("type") == "idempotency_error" or error.get("code") == "idempotency_key_reused":
        raise _key_in_use(response)
    return error


def _key_in_use(response: httpx.Response) -> OutcomeUnknown:
    """A 409 on an Idempotency-Key: the first request with that key may have succeeded.

    WooshPay answers it when the key was used for another request (or, Stripe-like,
    while the first is still being processed). It says nothing about whether the
    operation happened, so it must not become a decline; `fetch_status` finds out.
    """
    return OutcomeUnknown(
        "the provider reports the Idempotency-Key in use by another request, which may "
        "have succeeded: reconcile with fetch_status, never retry under a new key",
        gateway=NAME,
        http_status=response.status_code,
        request_id=response.headers.get(REQUEST_ID_HEADER),
    )


def decline_reason_from(error: Mapping[str, Any]) -> DeclineReason:
    for key in ("decline_code", "code"):
        reason = DECLINE_REASONS.get(str(error.get(key)))
        if reason is not None:
            return reason
    return ERROR_TYPE_REASONS.get(str(error.get("type")), DeclineReason.INVALID_REQUEST)


def decline_code_from(error: Mapping[str, Any]) -> str | None:
    return read.optional_text(error, "decline_code") or read.optional_text(error, "code")


def success_body(response: httpx.Response) -> Mapping[str, Any]:
    body = read.json(response)
    if not response.is_success:
        error = body.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        raise read.error(
            f"unexpected answer: {str(code)[:64] if code else 'no error code'}",
            http_status=response.status_code,
        )
    return body


def is_missing(response: httpx.Response) -> bool:
    """A 404 saying the object does not exist (not a wrong URL, whose body is no error)."""
    if response.status_code != 404:
        return False
    error = read.object(read.json(response).get("error"), "the answer's error")
    return error.get("code") == "resource_missing"


def checkout_session_from(session: Mapping[str, Any]) -> CheckoutSession:
    expires_at = read.optional_timestamp(session, "expires_at", unit="auto")
    return CheckoutSession(
        reference=read.text(session, "id"),
        next_action=NextAction.redirect(read.text(session, "url"), expires_at=expires_at),
        gateway_reference=read.optional_text(session, "payment_intent"),
        expires_at=expires_at,
    )


def payment_link_from(link: Mapping[str, Any]) -> CheckoutSession:
    # The link's payment intent exists only once a customer pays: none to name yet.
    return CheckoutSession(
        reference=read.text(link, "id"),
        next_action=NextAction.redirect(read.text(link, "url")),
        kind=CheckoutKind.PAYMENT_LINK,
    )


def saved_method_from(method: Mapping[str, Any]) -> SavedMethod:
    """A PaymentMethod attached to a customer, masked: brand, last four, expiry."""
    card = read.object(method.get("card") or {}, "the payment method's card")
    try:
        return SavedMethod(
            gateway=NAME,
            token=read.text(method, "id"),
            customer_reference=read.text(method, "customer"),
            type=read.text(method, "type"),
            brand=read.optional_text(card, "brand"),
            last4=read.optional_text(card, "last4"),
            exp_month=_optional_integer(card, "exp_month"),
            exp_year=_optional_integer(card, "exp_year"),
        )
    except InvalidRequest as exc:
        raise read.error(f"the payment method is not as documented: {exc}") from None


# -- fields ------------------------------------------------------------------------------


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return read.object(body.get("metadata") or {}, "the metadata")


def paycore_transaction(body: Mapping[str, Any]) -> str | None:
    return read.optional_text(_metadata(body), "paycore_transaction_id")


def money(body: Mapping[str, Any], key: str) -> Money:
    try:
        return Money(read.integer(body, key), read.text(body, "currency"))
    except InvalidRequest as exc:
        raise read.error(f"the answer's {key!r} is not a valid amount: {exc}") from None


def _optional_integer(body: Mapping[str, Any], key: str) -> int | None:
    return None if body.get(key) is None else read.integer(body, key)
