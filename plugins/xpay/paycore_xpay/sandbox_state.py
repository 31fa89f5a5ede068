"""The XPAY sandbox's state: its operations, their status machine, the pair's
idempotency and the callbacks every ending sends. Every change happens here, under
the one lock.

A checkout payment [10005] is created "1" with its page; the customer pays ("10") or
fails ("21", ``Reason`` the card's decline, or ``declined`` for the page's Fail, or
``rejected_by_partner``/``check_failed`` in two steps), or the page's lifetime passes
("21" ``page_expired``, noticed on the next call of any kind). An ended operation gets
XPAY's ``TxnID`` [PROPOSAL: a failed one too, so its ``error`` callback carries one]
and sends its callback. A refund [30203] of a paid payment is done at once ("10"),
whole or in part, until nothing is left; its ``refund`` callback goes to the
payment's callback URL.

Idempotency [inferred from DOC]: a ``TransactionID`` + ``TerminalID`` pair names one
operation. Sent again with the same data (``Transaction.DateTime`` aside), the first
answer is answered again and nothing is done; with other data, 409. A refused request
(400, 404, 422) makes no operation, so its pair stays free [PROPOSAL].
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from attrs import evolve, frozen

from paycore.sandbox.state import SandboxState, locked
from paycore_xpay.sandbox_callbacks import (
    CheckAnswer,
    check_query,
    event_id,
    refund_query,
    result_query,
)
from paycore_xpay.sandbox_envelope import failure
from paycore_xpay.sandbox_fields import CheckoutSpec, Pair, RefundSpec, StatusQuery
from paycore_xpay.sandbox_operations import (
    DONE,
    FAILED,
    REFUND,
    Operation,
    Payment,
    Refund,
)

__all__ = ["CHECK_REASONS", "DEFAULT_PAGE_TTL", "PageStart", "XpayState"]

DEFAULT_PAGE_TTL = 15  # minutes a page lives unless TTL says otherwise [DOC]
FIRST_OPERATION_ID = 245786  # as in XPAY's example redirect [DOC]; then counted up
FIRST_TXN_ID = 12633661  # as in XPAY's example refund [DOC]; then counted up
PAGE_EXPIRED = "page_expired"
# A two-step payment the partner's check stopped [PROPOSAL].
CHECK_REASONS = {
    CheckAnswer.REJECTED: "rejected_by_partner",
    CheckAnswer.UNANSWERED: "check_failed",
}

Emit = Callable[[dict[str, str], str], None]  # (callback query, delivery id)
Connect = Callable[[str], None]  # a CallBackURL to deliver to


@frozen
class PageStart:
    """A payment the customer has just submitted, and its ``check`` query if asked."""

    payment: Payment
    check: dict[str, str] | None


class XpayState(SandboxState):
    """The operations of one partner terminal."""

    def __init__(
        self,
        *,
        emit: Emit,
        connect: Connect,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        page_ttl: int = DEFAULT_PAGE_TTL,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self._emit, self._connect = emit, connect
        self.page_ttl = page_ttl
        self.operations: dict[int, Operation] = {}
        self.callbacks: list[dict[str, str]] = []
        self.checks: list[dict[str, Any]] = []
        self._pairs: dict[Pair, int] = {}
        self._txns: dict[str, int] = {}
        self._pages: dict[str, int] = {}  # a page's uuid -> its payment
        self._expiries: list[tuple[int, int]] = []
        self._operation_ids = itertools.count(FIRST_OPERATION_ID)
        self._txn_ids = itertools.count(FIRST_TXN_ID)
        self._uuids = random.Random(seed)

    # -- reads ---------------------------------------------------------------------------

    @locked
    def snapshot(self) -> dict[str, Any]:
        return {
            "operations": {str(op_id): op.as_json() for op_id, op in self.operations.items()},
            "callbacks": [dict(query) for query in self.callbacks],
            "checks": [dict(check) for check in self.checks],
        }

    def callback_url_of(self, operation_id: int) -> str | None:
        """Where the operation's callbacks go: its payment's ``CallBackURL``.

        Not `locked`: called while a callback is being sent, it must not sweep again.
        """
        with self.lock:
            operation = self.operations.get(operation_id)
            if isinstance(operation, Refund):
                operation = self.operations.get(operation.parent_operation_id)
            return operation.callback_url if isinstance(operation, Payment) else None

    @locked
    def status(self, query: StatusQuery) -> dict[str, Any]:
        """The [20003] answer about the operation asked for."""
        if query.operation_id is not None:
            found = self.operations.get(query.operation_id)
            if found is None:
                raise failure(404, "there is no operation of this OperationID")
        else:
            assert query.pair is not None  # one or the other: read_status checks it
            op_id = self._pairs.get(query.pair)
            if op_id is None:
                raise failure(404, "there is no operation of this TransactionID and TerminalID")
            found = self.operations[op_id]
        return found.status_data()

    @locked
    def page(self, page_id: str) -> Payment | None:
        """A copy of the payment whose page is ``page_id``, if there is one."""
        op_id = self._pages.get(page_id)
        return None if op_id is None else evolve(self._payment(op_id))

    # -- [10005] and [30203] ---------------------------------------------------------------

    @locked
    def checkout(self, spec: CheckoutSpec, *, fingerprint: str, base_url: str) -> dict[str, Any]:
        """A checkout link (or the first answer again); the answer's ``Data``."""
        replayed = self._replay(spec.pair, fingerprint)
        if replayed is not None:
            return replayed
        now = self.now()
        op_id = next(self._operation_ids)
        page_id = str(uuid.UUID(int=self._uuids.getrandbits(128), version=4))
        uri = f"{base_url}/checkout/{page_id}"
        answer = {"OperationID": op_id, "OperationStatus": DONE, "URI": uri, "uuid": page_id}
        payment = Payment.open(
            spec,
            operation_id=op_id,
            changed=now,
            fingerprint=fingerprint,
            answer=answer,
            uuid=page_id,
            uri=uri,
            expires=now + 60 * (spec.ttl or self.page_ttl),
        )
        self._add(payment)
        self._pages[page_id] = op_id
        heapq.heappush(self._expiries, (payment.expires, op_id))
        if spec.callback_url:
            self._connect(spec.callback_url)
        return dict(answer)

    @locked
    def refund(self, spec: RefundSpec, *, fingerprint: str) -> dict[str, Any]:
        """A refund of the payment ``spec.txn_id`` names (or the first answer again)."""
        replayed = self._replay(spec.pair, fingerprint)
        if replayed is not None:
            return replayed
        op_id = self._txns.get(spec.txn_id)
        if op_id is None:
            raise failure(404, "there is no payment of this TxnID")
        payment = self.operations[op_id]
        if not isinstance(payment, Payment):
            raise failure(422, "TxnID names a refund, not a payment")
        if payment.status != DONE:
            raise failure(422, f"the payment is not paid (OperationStatus {payment.status})")
        left = payment.refundable
        if left <= 0:
            raise failure(422, "nothing is left to refund of this payment")
        amount = left if spec.sum is None else spec.sum
        if amount > left:
            raise failure(422, f"Sum exceeds the {left} kopecks left to refund")
        refund_id = next(self._operation_ids)
        txn_id = self._new_txn_id()
        answer = {
            "OperationID": refund_id,
            "OperationStatus": DONE,
            "Sum": amount,
            "TxnID": txn_id,
            "ParentOperationID": payment.operation_id,
        }
        refund = Refund(
            operation_type=REFUND,
            operation_id=refund_id,
            pair=spec.pair,
            sum=amount,
            status=DONE,
            changed=self.now(),
            fingerprint=fingerprint,
            answer=answer,
            txn_id=txn_id,
            parent_operation_id=payment.operation_id,
        )
        self._add(refund)
        self._txns[txn_id] = refund_id
        payment.refunded_sum += amount
        payment.refunds.append(refund_id)
        self._callback(refund_query(refund))
        return dict(answer)

    # -- the hosted page -----------------------------------------------------------------

    @locked
    def start(self, page_id: str, *, two_step: bool) -> PageStart:
        """The customer submitted the page: the payment is being taken.

        In two steps, the ``check`` to ask is returned (and recorded once answered).
        """
        op_id = self._pages.get(page_id)
        if op_id is None:
            raise failure(404, "there is no such payment page")
        payment = self._payment(op_id)
        if not payment.payable:
            raise failure(409, "the payment is not waiting for the customer")
        payment.in_progress = True
        check = check_query(payment, self.now()) if two_step else None
        return PageStart(evolve(payment), check)

    @locked
    def checked(self, query: dict[str, str], answer: CheckAnswer) -> None:
        """Record how the partner answered a ``check``."""
        self.checks.append({"query": dict(query), "answer": answer.value})

    @locked
    def finish(self, operation_id: int, reason: str | None) -> Payment:
        """The payment started on its page ends: paid (``reason`` None) or failed."""
        payment = self._payment(operation_id)
        if not payment.in_progress:
            raise failure(409, "the payment is not being taken")
        payment.in_progress = False
        self._end(payment, reason)
        return evolve(payment)

    @locked
    def expire(self, operation_id: int) -> dict[str, Any]:
        """The payment's page expires now (a control route)."""
        payment = self.operations.get(operation_id)
        if not isinstance(payment, Payment):
            raise failure(404, "there is no payment of this OperationID")
        if not payment.payable:
            raise failure(409, "the payment is not waiting for the customer")
        self._end(payment, PAGE_EXPIRED)
        return payment.status_data()

    # -- transitions -----------------------------------------------------------------------

    def _end(self, payment: Payment, reason: str | None) -> None:
        payment.status = DONE if reason is None else FAILED
        payment.reason = reason
        payment.changed = self.now()
        payment.txn_id = self._new_txn_id()
        self._txns[payment.txn_id] = payment.operation_id
        self._callback(result_query(payment))

    def _callback(self, query: dict[str, str]) -> None:
        self.callbacks.append(query)
        self._emit(dict(query), event_id(query))

    def _sweep(self) -> None:
        now = self.now()
        while self._expiries and self._expiries[0][0] <= now:
            _, op_id = heapq.heappop(self._expiries)
            payment = self._payment(op_id)
            if payment.payable:
                self._end(payment, PAGE_EXPIRED)

    # -- helpers ---------------------------------------------------------------------------

    def _replay(self, pair: Pair, fingerprint: str) -> dict[str, Any] | None:
        op_id = self._pairs.get(pair)
        if op_id is None:
            return None
        operation = self.operations[op_id]
        if operation.fingerprint != fingerprint:
            raise failure(
                409, "Transaction.TransactionID is already used on this terminal with other data"
            )
        return dict(operation.answer)

    def _add(self, operation: Operation) -> None:
        self.operations[operation.operation_id] = operation
        self._pairs[operation.pair] = operation.operation_id

    def _payment(self, operation_id: int) -> Payment:
        payment = self.operations[operation_id]
        assert isinstance(payment, Payment)
        return payment

    def _new_txn_id(self) -> str:
        return str(next(self._txn_ids))
