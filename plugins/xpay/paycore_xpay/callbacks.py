"""XPAY's callbacks: read from the query string, confirmed by XPAY, answered as it expects.

XPAY calls the partner's CallBackURL with GET and the parameters in the query [DOC]:
``command`` (``pay``, ``error``, ``refund``; ``check`` in the two-step protocol),
``txn_id`` (XPAY's transaction; a repeated one is a duplicate [DOC]), ``txn_id_own``
(the partner's TransactionID [CODE]) and [PROPOSAL] ``terminal_id``,
``operation_id``, ``sum`` (kopecks), ``txn_date`` (``YYYYMMDDhhmmss``, UTC), ``order``,
``reason`` (of an ``error``) and ``parent_operation_id`` (of a ``refund``).

Callbacks are not signed, so none is believed: the gateway asks 20003 about the
operation and makes the event from that answer; a callback the answer contradicts is
refused (`WebhookSignatureError`) and nothing is applied [PROPOSAL, providers.md §2.6].
Event ids repeat when the callback does: ``pay:{txn_id}``, ``refund:{txn_id}``,
``error:{operation_id}``. The partner answers HTTP 200 with
``{"txn_id", "result": "10", "message": "Done", "txn_date"}`` [CODE]; XPAY retries
until it does.

``check`` asks, before the payment is taken, whether the partner accepts it; it is
answered at once, ``result`` "10" to accept or "21" to reject [PROPOSAL], and needs no
confirmation: the worst a forged one can do is be answered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from attrs import frozen

from paycore.errors import GatewayProtocolError, WebhookSignatureError
from paycore.gateways.json_codec import encode_json
from paycore.transactions.model import (
    GatewayEvent,
    PaymentCheck,
    TransactionType,
    WebhookReply,
    WebhookRequest,
)
from paycore_xpay.answers import OperationState
from paycore_xpay.messages import NAME, OperationType
from paycore_xpay.results import money, payment_result, refund_state_result
from paycore_xpay.statuses import DONE, FAILED

__all__ = [
    "CHECK",
    "COMMANDS",
    "Callback",
    "check_terminal",
    "confirmed_event",
    "not_found",
    "parse_callback",
    "payment_check",
    "reply",
]

PAY, ERROR, REFUND, CHECK = "pay", "error", "refund", "check"
COMMANDS = frozenset({PAY, ERROR, REFUND, CHECK})
TXN_DATE = "%Y%m%d%H%M%S"
ACCEPTED, REJECTED = "10", "21"

# The parameters each command must carry (the rest are optional).
REQUIRED = {
    PAY: ("txn_id", "txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"),
    ERROR: ("txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"),
    REFUND: (
        "txn_id",
        "txn_id_own",
        "terminal_id",
        "operation_id",
        "sum",
        "txn_date",
        "parent_operation_id",
    ),
    CHECK: ("txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"),
}
# command -> (the operation it is about, the status 20003 must confirm).
CONFIRMS = {
    PAY: (OperationType.CHECKOUT_LINK, DONE),
    ERROR: (OperationType.CHECKOUT_LINK, FAILED),
    REFUND: (OperationType.REFUND, DONE),
}

_IDENTIFIER = re.compile(r"[!-~]{1,255}")
_NUMBER = re.compile(r"[0-9]{1,18}")
_TXN_DATE = re.compile(r"[0-9]{14}")


@frozen(kw_only=True)
class Callback:
    """One callback's parameters, each checked for its form (not yet for its truth)."""

    command: str
    txn_id: str | None
    txn_id_own: str
    terminal_id: str
    operation_id: int
    sum: int
    txn_date: datetime
    order: str | None
    parent_operation_id: int | None


def parse_callback(delivery: WebhookRequest) -> Callback | None:
    """The callback ``delivery`` carries; None for a command paycore does not follow.

    Raises `WebhookSignatureError` for what XPAY does not send (another method than
    GET, a body), `GatewayProtocolError` naming a parameter that is missing or
    malformed (its value is never quoted).
    """
    if delivery.method.upper() != "GET" or delivery.body:
        raise WebhookSignatureError(
            "XPAY calls back with GET and no body: this delivery is not XPAY's", gateway=NAME
        )
    query = delivery.query
    command = query.get("command")
    if not command:
        raise _malformed("the callback has no 'command'")
    if command not in COMMANDS:
        return None
    for name in REQUIRED[command]:
        if not query.get(name):
            raise _malformed(f"the {command} callback has no {name!r}")
    parent = query.get("parent_operation_id")
    return Callback(
        command=command,
        txn_id=_optional_identifier(query, "txn_id"),
        txn_id_own=_identifier(query, "txn_id_own"),
        terminal_id=_identifier(query, "terminal_id"),
        operation_id=_number(query, "operation_id"),
        sum=_sum(query),
        txn_date=_txn_date(query),
        order=_optional_identifier(query, "order"),
        parent_operation_id=None if not parent else _number(query, "parent_operation_id"),
    )


def check_terminal(callback: Callback, terminal_id: str) -> None:
    """Refuse a callback about another terminal's transaction: its ``txn_id_own`` is not
    one of this gateway's."""
    if callback.terminal_id != terminal_id:
        raise WebhookSignatureError(
            f"the {callback.command} callback is for another terminal than this gateway's "
            "terminal_id",
            gateway=NAME,
        )


def confirmed_event(callback: Callback, state: OperationState) -> GatewayEvent:
    """The event of a ``pay``, ``error`` or ``refund`` callback, made from what 20003
    answered about its operation (``state``).

    Raises `WebhookSignatureError` saying what 20003 contradicts.
    """
    operation_type, status = CONFIRMS[callback.command]
    contradictions = []
    if state.operation_id != callback.operation_id:
        contradictions.append("XPAY answered about another operation")
    if state.operation_type != operation_type:
        what = "payment" if operation_type is OperationType.CHECKOUT_LINK else "refund"
        contradictions.append(f"the operation is not a {what}")
    if state.status != status:
        contradictions.append(f"its status is {state.status!r}, not {status!r}")
    if state.sum != callback.sum:
        contradictions.append("its sum is another")
    if (state.transaction_id, state.terminal_id) != (callback.txn_id_own, callback.terminal_id):
        contradictions.append("it is another transaction (txn_id_own, terminal_id)")
    # A failed payment may have no TxnID at XPAY; any other TxnID must be the callback's.
    unpaid = callback.command == ERROR and state.txn_id is None
    if callback.txn_id is not None and state.txn_id != callback.txn_id and not unpaid:
        contradictions.append("its TxnID is another")
    if callback.command == REFUND and state.parent_operation_id != callback.parent_operation_id:
        contradictions.append("it refunds another payment")
    if state.changed_at is not None and state.changed_at != callback.txn_date:
        contradictions.append("it happened at another time")
    if contradictions:
        raise WebhookSignatureError(
            f"the {callback.command} callback is not confirmed by XPAY: "
            + "; ".join(contradictions),
            gateway=NAME,
        )
    if callback.command == REFUND:
        kind, result = TransactionType.REFUND, refund_state_result(state)
        event_id = f"{REFUND}:{callback.txn_id}"
    else:
        kind, result = TransactionType.SALE, payment_result(state)
        event_id = (
            f"{ERROR}:{callback.operation_id}"
            if callback.command == ERROR
            else f"{PAY}:{callback.txn_id}"
        )
    return GatewayEvent(
        gateway=NAME,
        event_id=event_id,
        event_type=callback.command,
        occurred_at=state.changed_at or callback.txn_date,
        transaction_type=kind,
        outcome=result.outcome,
        gateway_reference=result.gateway_reference,
        transaction_reference=result.transaction_reference,
        transaction_id=state.transaction_id,
        amount=money(state.sum),
        decline_reason=result.decline_reason,
        decline_code=result.decline_code,
        provider_status=state.status,
    )


def not_found(callback: Callback) -> WebhookSignatureError:
    """A callback about an operation XPAY does not know (20003 answered 404)."""
    return WebhookSignatureError(
        f"the {callback.command} callback is not confirmed by XPAY: it has no such operation",
        gateway=NAME,
    )


def payment_check(callback: Callback, *, at: datetime) -> PaymentCheck:
    """A ``check``: the payment XPAY is about to take, and the two possible answers."""
    return PaymentCheck(
        transaction_id=callback.txn_id_own,
        amount=money(callback.sum),
        payment_id=callback.order,
        accept=reply(callback.txn_id, at=at, result=ACCEPTED, message="Accepted"),
        reject=reply(callback.txn_id, at=at, result=REJECTED, message="Rejected"),
    )


def reply(
    txn_id: str | None, *, at: datetime, result: str = ACCEPTED, message: str = "Done"
) -> WebhookReply:
    """The answer XPAY expects: HTTP 200 and JSON naming the callback's ``txn_id`` [CODE]."""
    body = {
        "txn_id": txn_id or "",
        "result": result,
        "message": message,
        "txn_date": at.astimezone(UTC).strftime(TXN_DATE),
    }
    return WebhookReply(status_code=200, body=encode_json(body), media_type="application/json")


# -- parameters --------------------------------------------------------------------------


def _malformed(message: str) -> GatewayProtocolError:
    return GatewayProtocolError(message, gateway=NAME)


def _identifier(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "")
    if not _IDENTIFIER.fullmatch(value):
        raise _malformed(f"the callback's {name!r} is not an identifier")
    return value


def _optional_identifier(query: Mapping[str, str], name: str) -> str | None:
    return _identifier(query, name) if query.get(name) else None


def _number(query: Mapping[str, str], name: str) -> int:
    value = query.get(name, "")
    if not _NUMBER.fullmatch(value):
        raise _malformed(f"the callback's {name!r} is not a whole number")
    return int(value)


def _sum(query: Mapping[str, str]) -> int:
    kopecks = _number(query, "sum")
    if kopecks == 0:
        raise _malformed("the callback's 'sum' is zero")
    return kopecks


def _txn_date(query: Mapping[str, str]) -> datetime:
    value = query.get("txn_date", "")
    try:
        if not _TXN_DATE.fullmatch(value):
            raise ValueError
        return datetime.strptime(value, TXN_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise _malformed("the callback's 'txn_date' is not a YYYYMMDDhhmmss time") from None
