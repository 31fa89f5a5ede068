"""XPAY's answers turned into paycore's results: pages, payments, refunds, refusals.

A payment is one 10005 operation: its answer is the hosted page (the customer has not
paid yet: action required), and 20003 later says where it stands. A refund is one
30203 operation of its own. ``gateway_reference`` is always the payment's OperationID;
a refund's ``transaction_reference`` is its own OperationID, a payment's is XPAY's
TxnID once paid. A refused request (a 4xx code) is a decline, or `GatewayRefused`
for an operation with no result to carry one.
"""

from __future__ import annotations

from attrs import evolve

from paycore.errors import GatewayRefused
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    DeclineReason,
    GatewayResult,
    NextAction,
    Outcome,
)
from paycore_xpay.answers import CheckoutLink, OperationState, RefundAnswer, read
from paycore_xpay.messages import NAME, Answer
from paycore_xpay.payloads import CURRENCY
from paycore_xpay.statuses import CREATED, DONE, FAILED, decline_reason

__all__ = [
    "checkout_session",
    "declined",
    "link_result",
    "money",
    "not_refundable",
    "payment_result",
    "refund_result",
    "refund_state_result",
    "refused",
]

# [PROPOSAL] A refused request's code -> the normalised reason (others: invalid request).
CODE_REASONS = {"404": DeclineReason.NOT_FOUND, "422": DeclineReason.NOT_PERMITTED}


def money(kopecks: int) -> Money:
    return Money(kopecks, CURRENCY)


# -- payments ----------------------------------------------------------------------------


def link_result(link: CheckoutLink) -> GatewayResult:
    """A sale's 10005 answer: the customer is sent to the hosted page (status "10":
    the link was made), or XPAY failed to make one ("21")."""
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=str(link.operation_id),
        provider_status=link.status,
    )
    if link.status == FAILED:
        return _failed(result, link.reason, DeclineReason.PROCESSING_ERROR)
    return evolve(result, outcome=Outcome.ACTION_REQUIRED, next_action=_page(link))


def checkout_session(link: CheckoutLink, kind: CheckoutKind) -> CheckoutSession:
    """A hosted page or payment link: both are 10005's page, made for the payment."""
    if link.status == FAILED:
        raise GatewayRefused(
            f"XPAY did not make the {kind.value.replace('_', ' ')} (reason "
            f"{link.reason or 'not given'})",
            gateway=NAME,
            code=link.reason,
        )
    reference = str(link.operation_id)
    return CheckoutSession(
        reference=reference, next_action=_page(link), kind=kind, gateway_reference=reference
    )


def _page(link: CheckoutLink) -> NextAction:
    if link.status != DONE or link.uri is None:
        raise read.error(
            f"the checkout link's answer has status {link.status[:16]!r} and "
            f"{'a' if link.uri else 'no'} URI"
        )
    return NextAction.redirect(link.uri)


def payment_result(state: OperationState) -> GatewayResult:
    """What 20003 says about a payment (a 10005 operation).

    "1": the customer has not paid yet (redirect to the page while XPAY gives it);
    "10": paid; "21": failed, with its Reason; anything else: not decided yet.
    """
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=str(state.operation_id),
        provider_status=state.status,
    )
    if state.status == DONE:
        return evolve(
            result,
            outcome=Outcome.APPROVED,
            amount=money(state.sum),
            transaction_reference=state.txn_id,
        )
    if state.status == FAILED:
        return _failed(result, state.reason, DeclineReason.CARD_DECLINED)
    if state.status == CREATED and state.uri is not None:
        return evolve(
            result, outcome=Outcome.ACTION_REQUIRED, next_action=NextAction.redirect(state.uri)
        )
    return result


# -- refunds -----------------------------------------------------------------------------


def refund_result(answer: RefundAnswer, *, payment: int) -> GatewayResult:
    """A 30203 answer refunding the ``payment`` operation: "10" refunded, "21" declined
    with its Reason."""
    return _refund(answer.operation_id, answer.status, answer.sum, payment, answer.reason)


def refund_state_result(state: OperationState) -> GatewayResult:
    """What 20003 says about a refund (a 30203 operation)."""
    return _refund(
        state.operation_id, state.status, state.sum, state.parent_operation_id, state.reason
    )


def _refund(
    operation_id: int, status: str, kopecks: int | None, parent: int | None, reason: str | None
) -> GatewayResult:
    result = GatewayResult(
        outcome=Outcome.PROCESSING,
        gateway_reference=None if parent is None else str(parent),
        transaction_reference=str(operation_id),
        provider_status=status,
    )
    if status == DONE:
        if kopecks is None:
            raise read.error("the refund is done but its answer has no 'Sum'")
        return evolve(result, outcome=Outcome.APPROVED, amount=money(kopecks))
    if status == FAILED:
        return _failed(result, reason, DeclineReason.PROCESSING_ERROR)
    return result


def not_refundable(payment: OperationState, kopecks: int) -> GatewayResult | None:
    """The decline of a refund of ``kopecks`` that ``payment``, as 20003 read it, cannot
    take (nothing is sent then); None when it can."""
    result = GatewayResult(
        outcome=Outcome.DECLINED,
        gateway_reference=str(payment.operation_id),
        decline_reason=DeclineReason.NOT_PERMITTED,
        provider_status=payment.status,
    )
    if payment.status != DONE or payment.txn_id is None:
        return evolve(
            result,
            decline_code="not_paid",
            message=f"the payment's XPAY status is {payment.status[:16]}: it was not paid",
        )
    if kopecks > payment.refundable:
        return evolve(
            result,
            decline_reason=DeclineReason.AMOUNT_INVALID,
            decline_code="over_refundable",
            message=f"{money(payment.refundable)} of the payment is left to refund",
        )
    return None


# -- refusals ----------------------------------------------------------------------------


def declined(answer: Answer, gateway_reference: str | None = None) -> GatewayResult:
    """A refused payment operation (a 4xx code): declined, nothing happened."""
    return GatewayResult(
        outcome=Outcome.DECLINED,
        gateway_reference=gateway_reference,
        decline_reason=CODE_REASONS.get(answer.code, DeclineReason.INVALID_REQUEST),
        decline_code=answer.code,
        message=answer.message,
    )


def refused(answer: Answer, what: str) -> GatewayRefused:
    """The error for a refusal of ``what``, an operation with no result to carry a
    decline. The code is quoted, XPAY's message is not (it may echo what was sent)."""
    return GatewayRefused(
        f"XPAY refused {what} (code {answer.code})",
        gateway=NAME,
        http_status=answer.http_status,
        code=answer.code,
    )


def _failed(result: GatewayResult, reason: str | None, default: DeclineReason) -> GatewayResult:
    return evolve(
        result,
        outcome=Outcome.DECLINED,
        decline_reason=decline_reason(reason, default=default),
        decline_code=reason or FAILED,
    )
