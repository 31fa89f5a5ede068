"""The payment state machine and its amount invariants, as pure functions (DESIGN §5).

Nothing here reads the store or the network: the services call these inside their
short database transactions, and the tests call them directly.

A payment's status is derived from its totals (`status_of`), and the totals only
move through transactions that succeeded, each applied once (`apply_outcome`):

- ``authorized``: what the creating authorize or sale got;
- ``captured``: what was captured (a sale captures all it authorized);
- ``refunded``: what was refunded;
- ``capturable``: what the authorization still holds; a final capture, a void or an
  expired authorization sets it to zero.

Invariants (`problems`): Σ captures ≤ authorized, Σ refunds ≤ captured, capturable ≤
authorized − captured, totals non-negative and in the payment's currency, the status
equal to what the totals say, and the totals equal to a replay of the transactions.
`check_mutation` refuses what would break them before anything is written. Status
only moves forward (`moves_backwards`), so a late or duplicate event changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from attrs import evolve

from paycore.errors import CurrencyMismatch, InvalidAmount, StateError
from paycore.gateways.base import Capabilities
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction

__all__ = [
    "CREATING",
    "apply_outcome",
    "can_resolve",
    "check_mutation",
    "moves_backwards",
    "problems",
    "replay",
    "status_of",
]

# The transaction types that create the payment at the gateway.
CREATING = frozenset({TransactionType.AUTHORIZE, TransactionType.SALE})

# A payment's progress; a transition to a lower rank would be a step backwards.
# The terminal statuses share the top rank: none leads to another.
_RANK = {
    PaymentStatus.NEW: 0,
    PaymentStatus.REQUIRES_ACTION: 1,
    PaymentStatus.PROCESSING: 2,
    PaymentStatus.AUTHORIZED: 3,
    PaymentStatus.PARTIALLY_CAPTURED: 4,
    PaymentStatus.CAPTURED: 5,
    PaymentStatus.PARTIALLY_REFUNDED: 6,
    PaymentStatus.REFUNDED: 7,
    PaymentStatus.VOIDED: 8,
    PaymentStatus.FAILED: 8,
    PaymentStatus.EXPIRED: 8,
}
_TERMINAL = frozenset(
    {PaymentStatus.REFUNDED, PaymentStatus.VOIDED, PaymentStatus.FAILED, PaymentStatus.EXPIRED}
)

# The statuses of a payment before any money moved: the creating transaction's phase.
_BEFORE_MONEY = frozenset(
    {
        PaymentStatus.NEW,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.PROCESSING,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
    }
)

# Where an unsettled transaction may go next. Final statuses go nowhere.
_RESOLUTIONS = {
    TransactionStatus.PENDING: frozenset(TransactionStatus) - {TransactionStatus.PENDING},
    TransactionStatus.UNKNOWN: frozenset(TransactionStatus)
    - {TransactionStatus.PENDING, TransactionStatus.UNKNOWN},
    TransactionStatus.REQUIRES_ACTION: frozenset(
        {
            TransactionStatus.PROCESSING,
            TransactionStatus.SUCCEEDED,
            TransactionStatus.DECLINED,
            TransactionStatus.FAILED,
        }
    ),
    TransactionStatus.PROCESSING: frozenset(
        {TransactionStatus.SUCCEEDED, TransactionStatus.DECLINED, TransactionStatus.FAILED}
    ),
}


def check_mutation(
    payment: Payment,
    kind: TransactionType,
    amount: Money | None,
    *,
    capabilities: Capabilities,
    processing: Sequence[PaymentTransaction] = (),
) -> Money:
    """The amount a new ``kind`` transaction on ``payment`` will carry, or why not.

    ``amount`` ``None`` means "all there is": the payment's amount for an authorize or
    sale, what the authorization holds for a capture, what was captured and not
    refunded for a refund. ``processing`` are the payment's transactions the gateway
    accepted and has not settled: their amounts are held back. Raises
    `CurrencyMismatch` or `InvalidAmount` for a bad amount and `StateError` when the
    payment's state forbids the operation; nothing is written either way.
    """
    if amount is not None:
        _check_amount(payment, amount)
    if kind in CREATING:
        if payment.status is not PaymentStatus.NEW:
            raise StateError(
                f"payment {payment.id} is {payment.status}: only a new payment can be "
                f"authorized or sold; create a new payment to try again"
            )
        if amount is not None and amount != payment.amount:
            raise InvalidAmount(
                f"a {kind} is for the payment's whole amount ({payment.amount}), not {amount}"
            )
        return payment.amount
    if kind is TransactionType.CAPTURE:
        return _capture_amount(payment, amount, capabilities, _held(payment, processing, kind))
    if kind is TransactionType.VOID:
        if amount is not None:
            raise InvalidAmount("a void releases what the authorization holds; give no amount")
        if payment.capturable.is_zero():
            raise StateError(f"payment {payment.id} is {payment.status}: nothing to void")
        if _held(payment, processing, TransactionType.CAPTURE).is_positive():
            raise StateError(f"payment {payment.id} has a capture processing: void after it")
        return payment.capturable
    if kind is TransactionType.REFUND:
        return _refund_amount(payment, amount, capabilities, _held(payment, processing, kind))
    raise StateError(f"{kind} is not a mutation")


def _check_amount(payment: Payment, amount: Money) -> None:
    if not isinstance(amount, Money):
        raise InvalidAmount(f"amount must be Money, not {type(amount).__name__}")
    if amount.currency != payment.amount.currency:
        raise CurrencyMismatch(
            f"payment {payment.id} is in {payment.amount.currency}; the amount is in "
            f"{amount.currency}"
        )
    if not amount.is_positive():
        raise InvalidAmount(f"amount must be positive, got {amount}")


def _capture_amount(
    payment: Payment, amount: Money | None, capabilities: Capabilities, held: Money
) -> Money:
    if payment.capturable.is_zero():
        raise StateError(f"payment {payment.id} is {payment.status}: nothing to capture")
    return _portion(
        payment,
        amount,
        held,
        verb="capture",
        verbed="captured",
        once="captures an authorization once",
        whole=payment.capturable,
        whole_name="authorized",
        done=payment.captured,
        partial=capabilities.partial_capture,
        multiple=capabilities.multiple_capture,
    )


def _refund_amount(
    payment: Payment, amount: Money | None, capabilities: Capabilities, held: Money
) -> Money:
    if payment.captured.is_zero():
        raise StateError(f"payment {payment.id} is {payment.status}: nothing captured to refund")
    return _portion(
        payment,
        amount,
        held,
        verb="refund",
        verbed="refunded",
        once="refunds a payment once",
        whole=payment.refundable,
        whole_name="captured",
        done=payment.refunded,
        partial=capabilities.partial_refund,
        multiple=capabilities.multiple_refund,
    )


def _portion(
    payment: Payment,
    amount: Money | None,
    held: Money,
    *,
    verb: str,
    verbed: str,
    once: str,
    whole: Money,
    whole_name: str,
    done: Money,
    partial: bool,
    multiple: bool,
) -> Money:
    """How much of ``whole`` a capture or refund takes, within what the gateway allows.

    ``held`` is taken by operations still processing; ``done`` by those that succeeded.
    """
    if (done.is_positive() or held.is_positive()) and not multiple:
        raise StateError(f"payment {payment.id}: its gateway {once}")
    available = whole - held
    wanted = available if amount is None else amount
    if not available.is_positive() or wanted > available:
        being = f" ({held} is being {verbed})" if held.is_positive() else ""
        raise InvalidAmount(
            f"payment {payment.id} can {verb} at most {available}{being}; asked {wanted}"
        )
    if wanted != whole and not partial:
        raise InvalidAmount(
            f"payment {payment.id}: its gateway can {verb} only the whole amount "
            f"{whole_name} ({whole})"
        )
    return wanted


def _held(
    payment: Payment, processing: Iterable[PaymentTransaction], kind: TransactionType
) -> Money:
    """What ``kind`` transactions the gateway accepted and has not settled hold back."""
    total = Money.zero(payment.amount.currency)
    for transaction in processing:
        if transaction.type is kind and transaction.status is TransactionStatus.PROCESSING:
            total = total + transaction.amount
    return total


def can_resolve(current: TransactionStatus, new: TransactionStatus) -> bool:
    """Whether a transaction recorded as ``current`` may be recorded as ``new``."""
    return new in _RESOLUTIONS.get(current, frozenset())


def apply_outcome(
    payment: Payment,
    transaction: PaymentTransaction,
    status: TransactionStatus,
    *,
    processed: Money | None = None,
    decline_reason: DeclineReason | None = None,
) -> Payment:
    """``payment`` once ``transaction`` is recorded as ``status`` (totals and status).

    ``processed`` is what the gateway says it processed (a partial approval may be
    less than asked); it defaults to the transaction's amount. The caller applies
    each transaction's final status once: `can_resolve` guards that.
    """
    kind = transaction.type
    amount = transaction.amount if processed is None else processed
    authorized, captured = payment.authorized, payment.captured
    refunded, capturable = payment.refunded, payment.capturable
    phase = payment.status
    if status is TransactionStatus.SUCCEEDED:
        if kind is TransactionType.AUTHORIZE:
            authorized, capturable = amount, amount
        elif kind is TransactionType.SALE:
            authorized, captured, capturable = amount, amount, amount - amount
        elif kind is TransactionType.CAPTURE:
            captured = captured + amount
            capturable = capturable - min(amount, capturable)
            if transaction.final:
                capturable = capturable - capturable
        elif kind is TransactionType.VOID:
            capturable = capturable - capturable
        elif kind is TransactionType.REFUND:
            refunded = refunded + amount
    elif kind in CREATING:
        phase = _CREATING_PHASES.get(status, phase)
    elif (
        status is TransactionStatus.DECLINED
        and decline_reason is DeclineReason.AUTHORIZATION_EXPIRED
        and kind in {TransactionType.CAPTURE, TransactionType.VOID}
    ):
        # The authorization is gone: nothing is held any more.
        capturable = capturable - capturable
        if captured.is_zero():
            phase = PaymentStatus.EXPIRED
    updated = evolve(
        payment,
        authorized=authorized,
        captured=captured,
        refunded=refunded,
        capturable=capturable,
        status=phase,
    )
    return evolve(updated, status=status_of(updated))


_CREATING_PHASES = {
    TransactionStatus.PROCESSING: PaymentStatus.PROCESSING,
    TransactionStatus.REQUIRES_ACTION: PaymentStatus.REQUIRES_ACTION,
    TransactionStatus.DECLINED: PaymentStatus.FAILED,
}


def status_of(payment: Payment) -> PaymentStatus:
    """The status ``payment``'s totals say; before any money moved, its recorded phase."""
    if payment.status is PaymentStatus.EXPIRED and payment.captured.is_zero():
        return PaymentStatus.EXPIRED
    if payment.refunded.is_positive():
        if payment.refunded == payment.captured and payment.capturable.is_zero():
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if payment.captured.is_positive():
        if payment.capturable.is_zero():
            return PaymentStatus.CAPTURED
        return PaymentStatus.PARTIALLY_CAPTURED
    if payment.authorized.is_positive():
        if payment.capturable.is_positive():
            return PaymentStatus.AUTHORIZED
        return PaymentStatus.VOIDED
    return payment.status if payment.status in _BEFORE_MONEY else PaymentStatus.NEW


def moves_backwards(previous: PaymentStatus, new: PaymentStatus) -> bool:
    """Whether going from ``previous`` to ``new`` would undo progress."""
    if previous == new:
        return False
    return previous in _TERMINAL or _RANK[new] < _RANK[previous]


def replay(payment: Payment, transactions: Sequence[PaymentTransaction]) -> Payment:
    """``payment`` rebuilt from scratch by applying its ``transactions`` in order.

    Only the totals and status are rebuilt; the denormalised totals the ledger keeps
    must equal what this returns (`problems` checks it).
    """
    zero = Money.zero(payment.amount.currency)
    rebuilt = evolve(
        payment,
        status=PaymentStatus.NEW,
        authorized=zero,
        captured=zero,
        refunded=zero,
        capturable=zero,
    )
    for transaction in sorted(transactions, key=lambda t: (t.created_at, t.id)):
        if transaction.status in {TransactionStatus.PENDING, TransactionStatus.UNKNOWN}:
            continue
        if transaction.status is TransactionStatus.FAILED:
            continue
        rebuilt = apply_outcome(
            rebuilt,
            transaction,
            transaction.status,
            decline_reason=transaction.decline_reason,
        )
    return rebuilt


def problems(payment: Payment, transactions: Sequence[PaymentTransaction] = ()) -> list[str]:
    """Every broken invariant of ``payment`` (empty when all hold).

    With ``transactions`` (all of the payment's), also checks the totals against a
    replay of them.
    """
    found: list[str] = []
    currency = payment.amount.currency
    totals = {
        "authorized": payment.authorized,
        "captured": payment.captured,
        "refunded": payment.refunded,
        "capturable": payment.capturable,
    }
    for name, total in totals.items():
        if total.currency != currency:
            found.append(f"{name} is in {total.currency}, the payment in {currency}")
            return found
        if total.minor_units < 0:
            found.append(f"{name} is negative ({total})")
    if payment.authorized > payment.amount:
        found.append(f"authorized {payment.authorized} exceeds the amount {payment.amount}")
    if payment.captured > payment.authorized:
        found.append(f"captured {payment.captured} exceeds authorized {payment.authorized}")
    if payment.refunded > payment.captured:
        found.append(f"refunded {payment.refunded} exceeds captured {payment.captured}")
    if payment.capturable > payment.authorized - payment.captured:
        found.append(
            f"capturable {payment.capturable} exceeds authorized {payment.authorized} "
            f"minus captured {payment.captured}"
        )
    if payment.status != status_of(payment):
        found.append(f"status {payment.status} but the totals say {status_of(payment)}")
    if transactions:
        rebuilt = replay(payment, transactions)
        if rebuilt.totals() != payment.totals():
            found.append(f"totals {payment.totals()} but the transactions say {rebuilt.totals()}")
    return found
