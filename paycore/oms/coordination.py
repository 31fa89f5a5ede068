"""The OMS's logic, written once as generators of steps (DESIGN §7).

Like the checkout's (`paycore.checkout.coordination`), each operation yields database
steps and joins the payment services' own operations with ``yield from``;
`paycore.oms.order_payments.OrderPayments` carries them out in the calling thread,
`AsyncOrderPayments` on an event loop.

Every instruction first looks for what it did before: the transactions of the order's
payments carrying its key (``capture:shp_1``). Those are asked again under the same
key (the services replay a settled one, resolve an unknown one, send a failed one
again), and only what they do not cover is spread over the payments not yet touched.
So an instruction carried out twice, or again after a crash halfway through, does
each payment's part once, with the same amounts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

from attrs import evolve

from paycore.errors import (
    InvalidRequest,
    NotFound,
    PaymentBusy,
    StateError,
    UnsupportedOperation,
)
from paycore.gateways.base import Operation
from paycore.money import Money
from paycore.oms.allocation import Share, release, spread
from paycore.oms.model import (
    Instruction,
    InstructionKind,
    InstructionOutcome,
    InstructionResult,
)
from paycore.transactions.inputs import check_id
from paycore.transactions.model import PaymentMethod, TransactionStatus, TransactionType
from paycore.transactions.orchestration import DbStep, Orchestration, Steps
from paycore.transactions.records import UNRESOLVED, Payment, PaymentTransaction

__all__ = ["OmsCoordination"]

_TYPE_OF = {
    InstructionKind.CAPTURE: TransactionType.CAPTURE,
    InstructionKind.CANCEL: TransactionType.VOID,
    InstructionKind.REFUND: TransactionType.REFUND,
}
# A transaction's status, as an instruction's outcome.
_OUTCOME_OF = {
    TransactionStatus.SUCCEEDED: InstructionOutcome.SUCCEEDED,
    TransactionStatus.DECLINED: InstructionOutcome.DECLINED,
    TransactionStatus.FAILED: InstructionOutcome.FAILED,
}
_WORST_FIRST = list(InstructionOutcome)


class OmsCoordination:
    """The OMS's step generators, over payment services (sync or async)."""

    payments: Orchestration

    def _setup(self, payments: Orchestration) -> None:
        if not isinstance(payments, Orchestration):
            raise InvalidRequest("order payments need payment services to work with")
        self.payments = payments

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.payments.clock

    # -- instructions ---------------------------------------------------------------------

    def _carry_out(self, instruction: Instruction, *, dry_run: bool) -> Steps[InstructionResult]:
        if not isinstance(instruction, Instruction):
            raise InvalidRequest(f"expected an Instruction, not {type(instruction).__name__}")
        order, done = yield DbStep(partial(self._order_and_done, instruction))
        shares = self._shares(instruction, order, done)
        releases = self._final_releases(instruction, order, done, shares)
        held = self._held(instruction, order, done, shares)
        if _all_settled(done.values()) and not shares and not releases:
            return InstructionResult(
                instruction=instruction,
                outcome=InstructionOutcome.SKIPPED
                if all(t.status is TransactionStatus.SUCCEEDED for t in done.values())
                else _worst(done.values()),
                transactions=tuple(done.values()),
                message="done before: nothing was sent" if done else "nothing to do",
                held=held,
            )
        if dry_run:
            return InstructionResult(
                instruction=instruction,
                outcome=InstructionOutcome.SUCCEEDED,
                message=_plan_line(instruction, done, shares, releases),
                held=held,
            )
        made: list[PaymentTransaction] = []
        kind = _TYPE_OF[instruction.kind]
        for payment_id, before in done.items():
            # Asked again under its key: replayed, resolved, or sent again if it failed.
            made.append((yield from self._mutate(kind, payment_id, before.amount, instruction)))
        for share in shares:
            made.append(
                (yield from self._mutate(kind, share.payment_id, share.amount, instruction))
            )
        if any(t.status is not TransactionStatus.SUCCEEDED for t in made):
            # The final capture did not go through: what the others hold may still be
            # needed. Released when it does (the instruction run again).
            releases = []
        for payment_id in releases:
            made.append(
                (
                    yield from self.payments._mutate(
                        payment_id,
                        TransactionType.VOID,
                        None,
                        idempotency_key=f"{instruction.key}:release",
                    )
                )
            )
        outcome = _worst(made)
        failures = [t for t in made if t.status is not TransactionStatus.SUCCEEDED]
        message = _why(failures) if failures else None
        if message is None and held is not None and held.is_positive():
            message = (
                f"{held} stays authorized: an authorization is released only whole, and "
                "only where its gateway can void"
            )
        return InstructionResult(
            instruction=instruction,
            outcome=outcome,
            transactions=tuple(made),
            message=message,
            held=held,
        )

    def _mutate(
        self, kind: TransactionType, payment_id: str, amount: Money, instruction: Instruction
    ) -> Steps[PaymentTransaction]:
        if kind is TransactionType.VOID:
            return (
                yield from self.payments._mutate(
                    payment_id, kind, None, idempotency_key=instruction.key
                )
            )
        return (
            yield from self.payments._mutate(
                payment_id,
                kind,
                amount,
                idempotency_key=instruction.key,
                final=instruction.final and kind is TransactionType.CAPTURE,
            )
        )

    def _shares(
        self, instruction: Instruction, order: list[Payment], done: dict[str, PaymentTransaction]
    ) -> list[Share]:
        """What is left to do, spread over the payments this instruction has not touched."""
        fresh = [payment for payment in order if payment.id not in done]
        covered = sum((t.amount for t in done.values()), _zero(order))
        if instruction.kind is InstructionKind.CANCEL:
            # Only what its gateway can void is released; the rest is reported held.
            voidable = [p for p in fresh if self._can_void(p) and p.capturable.is_positive()]
            if instruction.amount is None:
                return [Share(p.id, p.capturable) for p in voidable]
            _same_currency(instruction.amount, order)
            remaining = instruction.amount - covered
            if not remaining.is_positive():
                return []
            shares, _ = release(remaining, [(p.id, p.capturable) for p in reversed(voidable)])
            return shares
        assert instruction.amount is not None
        _same_currency(instruction.amount, order)
        remaining = instruction.amount - covered
        if not remaining.is_positive():
            return []
        if instruction.kind is InstructionKind.CAPTURE:
            shares = spread(remaining, [(p.id, p.capturable) for p in fresh], doing="capture")
            self._check(shares, order, Operation.CAPTURE, "partial_capture", lambda p: p.capturable)
            return shares
        shares = spread(remaining, [(p.id, p.refundable) for p in reversed(fresh)], doing="refund")
        self._check(shares, order, Operation.REFUND, "partial_refund", lambda p: p.refundable)
        for share in shares:
            payment = _find(order, share.payment_id)
            capabilities = self.payments.gateways[payment.gateway].capabilities
            if payment.refunded.is_positive() and not capabilities.multiple_refund:
                raise StateError(
                    f"payment {payment.id} was refunded once already and gateway "
                    f"{payment.gateway!r} takes one refund per payment"
                )
        return shares

    def _check(
        self,
        shares: list[Share],
        order: list[Payment],
        operation: Operation,
        partial_flag: str,
        whole: Callable[[Payment], Money],
    ) -> None:
        """Refuse, before anything is sent, what a payment's gateway cannot do."""
        for share in shares:
            payment = _find(order, share.payment_id)
            capabilities = self.payments.gateways[payment.gateway].capabilities
            if not capabilities.supports(operation):
                raise UnsupportedOperation(payment.gateway, operation.value)
            if share.amount < whole(payment) and not getattr(capabilities, partial_flag):
                raise UnsupportedOperation(payment.gateway, f"{operation.value} of a part")

    def _final_releases(
        self,
        instruction: Instruction,
        order: list[Payment],
        done: dict[str, PaymentTransaction],
        shares: list[Share],
    ) -> list[str]:
        """A final capture releases what the payments it does not capture from still hold."""
        if not (instruction.kind is InstructionKind.CAPTURE and instruction.final):
            return []
        captured_from = {share.payment_id for share in shares} | set(done)
        return [
            p.id
            for p in order
            if p.id not in captured_from
            and p.capturable.is_positive()
            and self.payments.gateways[p.gateway].capabilities.supports(Operation.VOID)
        ]

    def _held(
        self,
        instruction: Instruction,
        order: list[Payment],
        done: dict[str, PaymentTransaction],
        shares: list[Share],
    ) -> Money | None:
        """What a cancel leaves authorized of what it asked to release: an authorization
        releases only whole, and one whose gateway cannot void not at all."""
        if instruction.kind is not InstructionKind.CANCEL:
            return None
        released = {s.payment_id for s in shares} | set(done)
        still = sum((p.capturable for p in order if p.id not in released), _zero(order))
        if instruction.amount is None:
            return still
        asked = instruction.amount - sum((t.amount for t in done.values()), _zero(order))
        left = asked - sum((s.amount for s in shares), _zero(order))
        return max(Money.zero(left.currency), min(left, still))

    def _can_void(self, payment: Payment) -> bool:
        return self.payments.gateways[payment.gateway].capabilities.supports(Operation.VOID)

    # -- reads -----------------------------------------------------------------------------

    def _order_and_done(
        self, instruction: Instruction
    ) -> tuple[list[Payment], dict[str, PaymentTransaction]]:
        """The order's payments, and what this instruction's key made on them before (by
        payment), read in one database transaction."""
        with self.payments.store.reading() as session:
            order = session.payments_of_owner(instruction.order_id)
            if not order:
                raise NotFound("order", instruction.order_id)
            made = session.transactions_by_key([p.id for p in order], instruction.key)
        by_payment = {transaction.payment_id: transaction for transaction in made}
        return order, {p.id: by_payment[p.id] for p in order if p.id in by_payment}

    # -- authorizations ----------------------------------------------------------------------

    def _expiring(self, within: timedelta, limit: int) -> Steps[tuple[Payment, ...]]:
        if not isinstance(within, timedelta) or within < timedelta(0):
            raise InvalidRequest("within must be a non-negative timedelta")
        before = self.clock() + within
        found: tuple[Payment, ...] = yield DbStep(
            lambda: self.payments.ledger.expiring_authorizations(before, limit=limit)
        )
        return found

    def _reauthorize(self, payment_id: str) -> Steps[PaymentTransaction]:
        """A new authorization of what ``payment_id`` still holds, with the same saved
        method (the customer is not there: off-session); once it succeeds, the old one
        is released. Keys derive from the payment, so it is safe to call again."""
        check_id(payment_id, "payment_id")
        old: Payment = yield DbStep(partial(self.payments.ledger.payment, payment_id))
        key = f"reauthorize:{old.id}"
        new: Payment | None = yield DbStep(partial(self.payments.ledger.payment_by_key, key))
        if new is None:
            transactions: tuple[PaymentTransaction, ...] = yield DbStep(
                partial(self.payments.ledger.transactions, old.id)
            )
            if any(t.status in UNRESOLVED for t in transactions):
                raise PaymentBusy(
                    f"payment {payment_id} has a transaction whose outcome is not known yet: "
                    "authorize it again once reconciliation has settled it"
                )
            method = old.payment_method
            capabilities = self.payments.gateways[old.gateway].capabilities
            if not old.capturable.is_positive():
                raise StateError(f"payment {payment_id} holds nothing to authorize again")
            if method is None or method.token is None:
                raise StateError(
                    f"payment {payment_id} was paid on the customer's page: only the customer "
                    "can authorize it again"
                )
            if not all(capabilities.supports(op) for op in (Operation.AUTHORIZE, Operation.VOID)):
                raise UnsupportedOperation(old.gateway, "reauthorize (authorize and void)")
            new = yield from self.payments._create_payment(
                amount=old.capturable,
                gateway=old.gateway,
                payment_method=_off_session(method),
                customer=old.customer,
                owner=old.owner,
                description=old.description,
                return_url=old.return_url,
                notification_url=old.notification_url,
                metadata={**old.metadata, "reauthorizes": old.id},
                idempotency_key=key,
            )
        authorization: PaymentTransaction = yield from self.payments._mutate(
            new.id, TransactionType.AUTHORIZE, None, idempotency_key=key
        )
        if authorization.status is TransactionStatus.SUCCEEDED:
            problem = None
            try:
                released: PaymentTransaction = yield from self.payments._mutate(
                    old.id, TransactionType.VOID, None, idempotency_key=f"reauthorized:{new.id}"
                )
                if released.status is not TransactionStatus.SUCCEEDED:
                    problem = f"its void is {released.status}"
            except (PaymentBusy, StateError) as error:
                problem = str(error)
            if problem is not None:
                raise StateError(
                    f"payment {new.id} authorizes {authorization.amount} again, but the old "
                    f"authorization of {old.id} is not released yet ({problem}): both are "
                    "held; call reauthorize again to release the old one"
                )
        return authorization


def _off_session(method: PaymentMethod) -> PaymentMethod:
    return evolve(method, off_session=True, save=False)


def _zero(order: list[Payment]) -> Money:
    return Money.zero(order[0].amount.currency)


def _same_currency(amount: Money, order: list[Payment]) -> None:
    from paycore.errors import CurrencyMismatch

    if amount.currency != order[0].amount.currency:
        raise CurrencyMismatch(
            f"the order is paid in {order[0].amount.currency}, not {amount.currency}"
        )


def _find(order: list[Payment], payment_id: str) -> Payment:
    return next(p for p in order if p.id == payment_id)


def _all_settled(transactions: Iterable[PaymentTransaction]) -> bool:
    return all(t.status.is_final and t.status is not TransactionStatus.FAILED for t in transactions)


def _worst(transactions: Iterable[PaymentTransaction]) -> InstructionOutcome:
    outcomes = [_OUTCOME_OF.get(t.status, InstructionOutcome.UNKNOWN) for t in transactions]
    if not outcomes:
        return InstructionOutcome.SUCCEEDED
    return min(outcomes, key=_WORST_FIRST.index)


def _why(failures: list[PaymentTransaction]) -> str:
    parts = []
    for t in failures:
        reason = t.decline_reason or t.failure or t.status
        parts.append(f"{t.type} of {t.amount} on {t.payment_id}: {reason}")
    return "; ".join(parts)


def _plan_line(
    instruction: Instruction,
    done: dict[str, PaymentTransaction],
    shares: list[Share],
    releases: list[str],
) -> str:
    parts = [f"{instruction.kind} {s.amount} on {s.payment_id}" for s in shares]
    parts += [f"ask again {t.type} {t.amount} on {pid}" for pid, t in done.items()]
    parts += [f"release the rest of {pid}" for pid in releases]
    return "would " + ("; ".join(parts) if parts else "do nothing")
