"""WooshPay's webhook events read into paycore's `GatewayEvent`s.

Followed: ``payment_intent.amount_capturable_updated`` (authorized),
``payment_intent.succeeded`` (a manual intent's capture, or an automatic one's sale),
``payment_intent.payment_failed``, ``payment_intent.canceled`` (a void once authorized,
else the authorization or sale declined) and ``charge.refund.updated`` (a refund's
status). Other types are acknowledged and dropped: ``payment_intent.created`` and
``requires_action`` change no transaction, and the checkout session events repeat what
their intent's events say. ``data.object`` is the resource as it is when the event is
sent; ``created`` is in seconds. An event names paycore's transaction (its
``metadata.paycore_transaction_id``) only when it reports that very transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paycore.transactions.model import GatewayEvent, Outcome, TransactionType
from paycore_wooshpay.answers import (
    NAME,
    cancellation_of,
    decline_code_from,
    decline_reason_from,
    from_checkout,
    money,
    paycore_transaction,
    read,
    refund_result,
)

__all__ = ["EVENT_TYPES", "event_from"]


def event_from(body: Mapping[str, Any]) -> GatewayEvent | None:
    """A normalised event, or None for a type paycore does not follow."""
    event_type = read.text(body, "type")
    reader = EVENT_TYPES.get(event_type)
    event_id = read.text(body, "id")
    if reader is None:
        return None
    data = read.object(body.get("data"), "the event's data")
    fields = reader(read.object(data.get("object"), "the event's object"))
    if fields is None:
        return None
    return GatewayEvent(
        gateway=NAME,
        event_id=event_id,
        event_type=event_type,
        occurred_at=read.timestamp(body, "created", unit="auto"),
        **fields,
    )


EventFields = dict[str, Any]


def _authorized_event(intent: Mapping[str, Any]) -> EventFields:
    return _intent_event(intent, TransactionType.AUTHORIZE, Outcome.APPROVED, "amount")


def _succeeded_event(intent: Mapping[str, Any]) -> EventFields:
    kind = TransactionType.CAPTURE if _manual(intent) else TransactionType.SALE
    return _intent_event(intent, kind, Outcome.APPROVED, "amount_received")


def _failed_event(intent: Mapping[str, Any]) -> EventFields | None:
    if from_checkout(intent):
        return None  # the customer may try again on the page
    failure = read.object(
        intent.get("last_payment_error") or {"type": "card_error"}, "the last_payment_error"
    )
    return {
        **_intent_event(intent, _creating_kind(intent), Outcome.DECLINED),
        "decline_reason": decline_reason_from(failure),
        "decline_code": decline_code_from(failure),
    }


def _canceled_event(intent: Mapping[str, Any]) -> EventFields:
    if read.optional_text(intent, "latest_charge") is not None:
        return _intent_event(intent, TransactionType.VOID, Outcome.APPROVED, "amount")
    reason, code = cancellation_of(intent)
    return {
        **_intent_event(intent, _creating_kind(intent), Outcome.DECLINED),
        "decline_reason": reason,
        "decline_code": code,
    }


def _refund_event(refund: Mapping[str, Any]) -> EventFields:
    result = refund_result(refund)
    return {
        "transaction_type": TransactionType.REFUND,
        "outcome": result.outcome,
        "gateway_reference": result.gateway_reference,
        "transaction_reference": result.transaction_reference,
        "transaction_id": paycore_transaction(refund),
        "amount": result.amount,
        "decline_reason": result.decline_reason,
        "decline_code": result.decline_code,
        "provider_status": result.provider_status,
    }


EVENT_TYPES: Mapping[str, Callable[[Mapping[str, Any]], EventFields | None]] = {
    "payment_intent.amount_capturable_updated": _authorized_event,
    "payment_intent.succeeded": _succeeded_event,
    "payment_intent.payment_failed": _failed_event,
    "payment_intent.canceled": _canceled_event,
    "charge.refund.updated": _refund_event,
}


def _intent_event(
    intent: Mapping[str, Any], kind: TransactionType, outcome: Outcome, amount: str | None = None
) -> EventFields:
    # The intent's metadata names the transaction that created it, no other.
    creating = kind in (TransactionType.AUTHORIZE, TransactionType.SALE)
    return {
        "transaction_type": kind,
        "outcome": outcome,
        "gateway_reference": read.text(intent, "id"),
        "transaction_reference": read.optional_text(intent, "latest_charge"),
        "transaction_id": paycore_transaction(intent) if creating else None,
        "amount": None if amount is None else money(intent, amount),
        "provider_status": read.text(intent, "status"),
    }


def _creating_kind(intent: Mapping[str, Any]) -> TransactionType:
    return TransactionType.AUTHORIZE if _manual(intent) else TransactionType.SALE


def _manual(intent: Mapping[str, Any]) -> bool:
    return read.text(intent, "capture_method") == "manual"
