"""What the XPAY sandbox calls the partner with: the ``pay``, ``error`` and ``refund``
callbacks, and the two-step ``check`` (providers.md §2.6).

Every callback is ``GET CallBackURL?<query>``, unsigned [DOC], all values strings:
``command``; ``txn_id`` (XPAY's, of the operation; never for ``check``);
``txn_id_own`` (the partner's ``TransactionID`` of the operation); ``terminal_id``;
``operation_id``; ``sum`` (kopecks); ``txn_date`` (``YYYYMMDDhhmmss``, UTC);
``order`` (the [10005] ``Order``; ``pay``, ``error``, ``check``); ``reason``
(``error``); ``parent_operation_id`` (``refund``) [CODE + PROPOSAL beyond ``command``
and ``txn_id``]. ``pay``/``error``/``refund`` are retried until the partner answers
HTTP 200: three times 20 s apart, then every 10 minutes [DOC], for a day [PROPOSAL].

``check`` is asked once, before a two-step payment is taken, and waited for
(`ask_partner`): HTTP 200 with JSON ``result`` "10" accepts, "21" rejects; anything
else, or nothing within the timeout, is no answer [PROPOSAL: the answer's form].
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from paycore.gateways.json_codec import decode_json
from paycore_xpay.sandbox_operations import Payment, Refund

__all__ = [
    "CHECK_TIMEOUT",
    "RETRY_SCHEDULE",
    "CheckAnswer",
    "ask_partner",
    "check_query",
    "event_id",
    "refund_query",
    "result_query",
    "txn_date",
]

DAY = 24 * 3600
# Seconds from the first attempt: 0, 20, 40, 60, then every 10 minutes up to a day.
RETRY_SCHEDULE: tuple[float, ...] = (
    0.0,
    20.0,
    40.0,
    60.0,
    *(60.0 + 600.0 * k for k in range(1, (DAY - 60) // 600 + 1)),
)
CHECK_TIMEOUT = 10.0  # seconds the two-step check is waited for [PROPOSAL]


class CheckAnswer(enum.StrEnum):
    """How the partner answered a ``check``."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNANSWERED = "unanswered"


def txn_date(seconds: int) -> str:
    """``YYYYMMDDhhmmss`` in UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d%H%M%S")


def result_query(payment: Payment) -> dict[str, str]:
    """The ``pay`` or ``error`` callback of an ended payment."""
    # No ``order`` here [PROPOSAL]: 20003 does not answer it, so a partner could not
    # confirm it; the check (before payment) carries it.
    query = {"command": "pay" if payment.reason is None else "error", **_common(payment)}
    if payment.reason is not None:
        query["reason"] = payment.reason
    return query


def refund_query(refund: Refund) -> dict[str, str]:
    """The ``refund`` callback of a refund done."""
    return {
        "command": "refund",
        **_common(refund),
        "parent_operation_id": str(refund.parent_operation_id),
    }


def check_query(payment: Payment, now: int) -> dict[str, str]:
    """The two-step ``check`` of a payment about to be taken (no ``txn_id`` yet)."""
    query = {
        "command": "check",
        "txn_id_own": payment.pair.transaction_id,
        "terminal_id": payment.pair.terminal_id,
        "operation_id": str(payment.operation_id),
        "sum": str(payment.sum),
        "txn_date": txn_date(now),
    }
    if payment.order is not None:
        query["order"] = payment.order
    return query


def event_id(query: Mapping[str, str]) -> str:
    """What a delivery is known by: ``pay:<txn_id>``, ``refund:<txn_id>``,
    ``error:<operation_id>`` (as the gateway names the events)."""
    if query["command"] == "error":
        return f"error:{query['operation_id']}"
    return f"{query['command']}:{query['txn_id']}"


async def ask_partner(url: str, query: Mapping[str, str], *, timeout: float) -> CheckAnswer:
    """Send a ``check`` and read the partner's verdict; no redirect is followed."""
    target = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, trust_env=False) as client,
        ):
            response = await client.get(target)
    except (httpx.HTTPError, TimeoutError):
        return CheckAnswer.UNANSWERED
    if response.status_code != 200:
        return CheckAnswer.UNANSWERED
    try:
        body = decode_json(response.content)
    except ValueError:
        return CheckAnswer.UNANSWERED
    result = body.get("result") if isinstance(body, Mapping) else None
    if result == "10":
        return CheckAnswer.ACCEPTED
    if result == "21":
        return CheckAnswer.REJECTED
    return CheckAnswer.UNANSWERED


def _common(operation: Payment | Refund) -> dict[str, str]:
    assert operation.txn_id is not None  # an ended operation has one
    return {
        "txn_id": operation.txn_id,
        "txn_id_own": operation.pair.transaction_id,
        "terminal_id": operation.pair.terminal_id,
        "operation_id": str(operation.operation_id),
        "sum": str(operation.sum),
        "txn_date": txn_date(operation.changed),
    }
