"""The state machine and its amount invariants, as pure functions: no database, no network."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paycore.errors import CurrencyMismatch, InvalidAmount, PaycoreError, StateError
from paycore.gateways.base import Capabilities, Operation
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.states import (
    apply_outcome,
    can_resolve,
    check_mutation,
    moves_backwards,
    problems,
    replay,
    status_of,
)

S = TransactionStatus
T = TransactionType
P = PaymentStatus

EVERYTHING = Capabilities(
    operations=set(Operation),
    partial_capture=True,
    multiple_capture=True,
    partial_refund=True,
    multiple_refund=True,
)
ONCE_AND_WHOLE = Capabilities(operations=set(Operation))
START = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


def new_payment(amount: int = 1000) -> Payment:
    zero = usd(0)
    return Payment(
        id="pay_1",
        gateway="dummy",
        amount=usd(amount),
        status=P.NEW,
        authorized=zero,
        captured=zero,
        refunded=zero,
        capturable=zero,
        created_at=START,
        updated_at=START,
    )


def transaction(
    kind: TransactionType,
    amount: int | Money,
    status: TransactionStatus = S.SUCCEEDED,
    *,
    final: bool = False,
    decline_reason: DeclineReason | None = None,
) -> PaymentTransaction:
    number = next(_ids)
    at = START + timedelta(seconds=number)
    return PaymentTransaction(
        id=f"txn_{number:06d}",
        payment_id="pay_1",
        type=kind,
        status=status,
        amount=amount if isinstance(amount, Money) else usd(amount),
        idempotency_key=f"key_{number}",
        fingerprint="f",
        created_at=at,
        updated_at=at,
        final=final,
        decline_reason=decline_reason,
    )


def after(
    payment: Payment, *steps: tuple[TransactionType, int, TransactionStatus]
) -> tuple[Payment, list[PaymentTransaction]]:
    """``payment`` once each step (type, amount, status) is applied, and the transactions."""
    done = []
    for kind, amount, status in steps:
        record = transaction(kind, amount, status)
        payment = apply_outcome(payment, record, status)
        done.append(record)
    return payment, done


def authorized(amount: int = 1000) -> Payment:
    return after(new_payment(amount), (T.AUTHORIZE, amount, S.SUCCEEDED))[0]


def captured(amount: int = 1000) -> Payment:
    return after(new_payment(amount), (T.SALE, amount, S.SUCCEEDED))[0]


def processing(kind: TransactionType, amount: int) -> PaymentTransaction:
    return transaction(kind, amount, S.PROCESSING)


# -- creating a payment at the gateway ---------------------------------------------------


@pytest.mark.parametrize("kind", [T.AUTHORIZE, T.SALE])
def test_a_new_payment_is_authorized_or_sold_for_its_whole_amount(kind):
    payment = new_payment(1000)

    assert check_mutation(payment, kind, None, capabilities=EVERYTHING) == usd(1000)
    assert check_mutation(payment, kind, usd(1000), capabilities=EVERYTHING) == usd(1000)
    with pytest.raises(InvalidAmount, match="whole amount"):
        check_mutation(payment, kind, usd(999), capabilities=EVERYTHING)


@pytest.mark.parametrize("kind", [T.AUTHORIZE, T.SALE])
@pytest.mark.parametrize("payment", [authorized(), captured()], ids=["authorized", "captured"])
def test_only_a_new_payment_can_be_authorized_or_sold(kind, payment):
    with pytest.raises(StateError, match="only a new payment"):
        check_mutation(payment, kind, None, capabilities=EVERYTHING)


def test_a_declined_payment_cannot_be_tried_again():
    failed = apply_outcome(
        new_payment(),
        transaction(T.AUTHORIZE, 1000, S.DECLINED),
        S.DECLINED,
        decline_reason=DeclineReason.CARD_DECLINED,
    )

    assert failed.status is P.FAILED
    with pytest.raises(StateError, match="create a new payment"):
        check_mutation(failed, T.AUTHORIZE, None, capabilities=EVERYTHING)


# -- capture -----------------------------------------------------------------------------


def test_captures_never_add_up_to_more_than_was_authorized():
    payment, _ = after(authorized(1000), (T.CAPTURE, 600, S.SUCCEEDED))

    assert check_mutation(payment, T.CAPTURE, usd(400), capabilities=EVERYTHING) == usd(400)
    with pytest.raises(InvalidAmount, match=r"at most 4\.00 USD"):
        check_mutation(payment, T.CAPTURE, usd(401), capabilities=EVERYTHING)


def test_a_capture_without_an_amount_takes_what_the_authorization_still_holds():
    payment, _ = after(authorized(1000), (T.CAPTURE, 250, S.SUCCEEDED))

    assert check_mutation(payment, T.CAPTURE, None, capabilities=EVERYTHING) == usd(750)


@pytest.mark.parametrize(
    "payment",
    [new_payment(), captured(), after(authorized(), (T.VOID, 1000, S.SUCCEEDED))[0]],
    ids=["new", "sold", "voided"],
)
def test_nothing_is_captured_where_no_authorization_holds_money(payment):
    with pytest.raises(StateError, match="nothing to capture"):
        check_mutation(payment, T.CAPTURE, usd(1), capabilities=EVERYTHING)


def test_a_gateway_without_partial_capture_captures_only_the_whole_authorization():
    payment = authorized(1000)

    assert check_mutation(payment, T.CAPTURE, None, capabilities=ONCE_AND_WHOLE) == usd(1000)
    with pytest.raises(InvalidAmount, match="only the whole amount"):
        check_mutation(payment, T.CAPTURE, usd(400), capabilities=ONCE_AND_WHOLE)


def test_a_gateway_without_multiple_capture_refuses_a_second_capture():
    once = attrs.evolve(EVERYTHING, multiple_capture=False)
    payment, _ = after(authorized(1000), (T.CAPTURE, 400, S.SUCCEEDED))

    with pytest.raises(StateError, match="captures an authorization once"):
        check_mutation(payment, T.CAPTURE, usd(100), capabilities=once)
    assert check_mutation(payment, T.CAPTURE, usd(100), capabilities=EVERYTHING) == usd(100)


def test_a_processing_capture_holds_its_amount_back():
    payment = authorized(1000)
    held = [processing(T.CAPTURE, 600)]

    assert check_mutation(
        payment, T.CAPTURE, None, capabilities=EVERYTHING, processing=held
    ) == usd(400)
    with pytest.raises(InvalidAmount, match=r"6\.00 USD is being captured"):
        check_mutation(payment, T.CAPTURE, usd(401), capabilities=EVERYTHING, processing=held)


def test_only_processing_transactions_of_the_same_kind_hold_amounts_back():
    payment = authorized(1000)
    others = [
        processing(T.REFUND, 600),  # another kind
        transaction(T.CAPTURE, 600, S.DECLINED),  # settled
        transaction(T.CAPTURE, 600, S.FAILED),  # never done
    ]

    assert check_mutation(
        payment, T.CAPTURE, None, capabilities=EVERYTHING, processing=others
    ) == usd(1000)


# -- void --------------------------------------------------------------------------------


def test_a_void_releases_what_the_authorization_holds():
    payment = authorized(1000)

    assert check_mutation(payment, T.VOID, None, capabilities=EVERYTHING) == usd(1000)
    voided = apply_outcome(payment, transaction(T.VOID, 1000), S.SUCCEEDED)
    assert voided.status is P.VOIDED
    assert voided.totals() == {"authorized": 1000, "captured": 0, "refunded": 0, "capturable": 0}


def test_a_void_after_a_partial_capture_releases_the_rest_and_leaves_the_payment_captured():
    payment, _ = after(authorized(1000), (T.CAPTURE, 300, S.SUCCEEDED))

    assert check_mutation(payment, T.VOID, None, capabilities=EVERYTHING) == usd(700)
    released = apply_outcome(payment, transaction(T.VOID, 700), S.SUCCEEDED)
    assert released.status is P.CAPTURED
    assert released.totals() == {
        "authorized": 1000,
        "captured": 300,
        "refunded": 0,
        "capturable": 0,
    }


@pytest.mark.parametrize(
    "payment",
    [
        new_payment(),
        captured(),
        after(authorized(), (T.CAPTURE, 1000, S.SUCCEEDED))[0],
        after(authorized(), (T.VOID, 1000, S.SUCCEEDED))[0],
    ],
    ids=["new", "sold", "fully-captured", "voided"],
)
def test_a_void_is_refused_unless_an_authorization_still_holds_money(payment):
    with pytest.raises(StateError, match="nothing to void"):
        check_mutation(payment, T.VOID, None, capabilities=EVERYTHING)


def test_a_void_takes_no_amount():
    with pytest.raises(InvalidAmount, match="give no amount"):
        check_mutation(authorized(), T.VOID, usd(100), capabilities=EVERYTHING)


def test_a_void_waits_for_a_processing_capture():
    with pytest.raises(StateError, match="capture processing"):
        check_mutation(
            authorized(),
            T.VOID,
            None,
            capabilities=EVERYTHING,
            processing=[processing(T.CAPTURE, 300)],
        )


# -- refund ------------------------------------------------------------------------------


def test_refunds_never_add_up_to_more_than_was_captured():
    payment, _ = after(
        authorized(1000), (T.CAPTURE, 500, S.SUCCEEDED), (T.REFUND, 300, S.SUCCEEDED)
    )

    assert check_mutation(payment, T.REFUND, None, capabilities=EVERYTHING) == usd(200)
    with pytest.raises(InvalidAmount, match=r"at most 2\.00 USD"):
        check_mutation(payment, T.REFUND, usd(201), capabilities=EVERYTHING)


@pytest.mark.parametrize(
    "payment",
    [new_payment(), authorized(), after(authorized(), (T.VOID, 1000, S.SUCCEEDED))[0]],
    ids=["new", "authorized", "voided"],
)
def test_nothing_is_refunded_before_something_was_captured(payment):
    with pytest.raises(StateError, match="nothing captured to refund"):
        check_mutation(payment, T.REFUND, usd(1), capabilities=EVERYTHING)


def test_a_fully_refunded_payment_has_nothing_left_to_refund():
    payment, _ = after(captured(1000), (T.REFUND, 1000, S.SUCCEEDED))

    assert payment.status is P.REFUNDED
    with pytest.raises(InvalidAmount, match=r"at most 0\.00 USD"):
        check_mutation(payment, T.REFUND, None, capabilities=EVERYTHING)


def test_a_gateway_without_partial_refund_refunds_only_everything_captured():
    payment = captured(1000)

    assert check_mutation(payment, T.REFUND, None, capabilities=ONCE_AND_WHOLE) == usd(1000)
    with pytest.raises(InvalidAmount, match="only the whole amount captured"):
        check_mutation(payment, T.REFUND, usd(300), capabilities=ONCE_AND_WHOLE)


def test_a_gateway_without_multiple_refund_refuses_a_second_refund():
    once = attrs.evolve(EVERYTHING, multiple_refund=False)
    payment, _ = after(captured(1000), (T.REFUND, 300, S.SUCCEEDED))

    with pytest.raises(StateError, match="refunds a payment once"):
        check_mutation(payment, T.REFUND, usd(100), capabilities=once)


@pytest.mark.parametrize(
    ("kind", "payment", "capabilities"),
    [
        (T.REFUND, captured(1000), attrs.evolve(EVERYTHING, multiple_refund=False)),
        (T.CAPTURE, authorized(1000), attrs.evolve(EVERYTHING, multiple_capture=False)),
    ],
    ids=["refund", "capture"],
)
def test_a_processing_operation_counts_as_the_one_a_gateway_allows(kind, payment, capabilities):
    with pytest.raises(StateError, match="once"):
        check_mutation(
            payment, kind, usd(200), capabilities=capabilities, processing=[processing(kind, 300)]
        )


def test_a_processing_refund_holds_its_amount_back():
    payment = captured(1000)
    held = [processing(T.REFUND, 700)]

    assert check_mutation(payment, T.REFUND, None, capabilities=EVERYTHING, processing=held) == usd(
        300
    )
    with pytest.raises(InvalidAmount, match=r"7\.00 USD is being refunded"):
        check_mutation(payment, T.REFUND, usd(301), capabilities=EVERYTHING, processing=held)


def test_everything_held_back_leaves_nothing_to_capture_or_refund():
    with pytest.raises(InvalidAmount, match=r"at most 0\.00 USD"):
        check_mutation(
            authorized(1000),
            T.CAPTURE,
            None,
            capabilities=EVERYTHING,
            processing=[processing(T.CAPTURE, 1000)],
        )
    with pytest.raises(InvalidAmount, match=r"at most 0\.00 USD"):
        check_mutation(
            captured(1000),
            T.REFUND,
            None,
            capabilities=EVERYTHING,
            processing=[processing(T.REFUND, 1000)],
        )


# -- amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payment"),
    [(T.CAPTURE, authorized()), (T.REFUND, captured()), (T.AUTHORIZE, new_payment())],
)
def test_an_amount_in_another_currency_is_a_currency_mismatch(kind, payment):
    with pytest.raises(CurrencyMismatch, match="is in USD; the amount is in EUR"):
        check_mutation(payment, kind, Money(100, "EUR"), capabilities=EVERYTHING)


@pytest.mark.parametrize("minor_units", [0, -1])
@pytest.mark.parametrize(("kind", "payment"), [(T.CAPTURE, authorized()), (T.REFUND, captured())])
def test_an_amount_must_be_positive(kind, payment, minor_units):
    with pytest.raises(InvalidAmount, match="must be positive"):
        check_mutation(payment, kind, usd(minor_units), capabilities=EVERYTHING)


def test_an_amount_must_be_money():
    with pytest.raises(InvalidAmount, match="must be Money"):
        check_mutation(authorized(), T.CAPTURE, 100, capabilities=EVERYTHING)  # type: ignore[arg-type]


def test_fetch_status_is_not_a_mutation():
    with pytest.raises(StateError, match="not a mutation"):
        check_mutation(authorized(), T.FETCH_STATUS, None, capabilities=EVERYTHING)


# -- outcomes ----------------------------------------------------------------------------


def _totals(authorized: int, captured: int, refunded: int, capturable: int) -> dict[str, int]:
    return {
        "authorized": authorized,
        "captured": captured,
        "refunded": refunded,
        "capturable": capturable,
    }


# (starting point, type, amount, outcome, expected status, expected totals)
OUTCOMES: list[tuple[str, TransactionType, int, TransactionStatus, PaymentStatus, dict[str, int]]]
OUTCOMES = [
    ("new", T.AUTHORIZE, 1000, S.SUCCEEDED, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("new", T.AUTHORIZE, 1000, S.PROCESSING, P.PROCESSING, _totals(0, 0, 0, 0)),
    ("new", T.AUTHORIZE, 1000, S.REQUIRES_ACTION, P.REQUIRES_ACTION, _totals(0, 0, 0, 0)),
    ("new", T.AUTHORIZE, 1000, S.DECLINED, P.FAILED, _totals(0, 0, 0, 0)),
    ("new", T.AUTHORIZE, 1000, S.FAILED, P.NEW, _totals(0, 0, 0, 0)),
    ("new", T.AUTHORIZE, 1000, S.UNKNOWN, P.NEW, _totals(0, 0, 0, 0)),
    ("new", T.SALE, 1000, S.SUCCEEDED, P.CAPTURED, _totals(1000, 1000, 0, 0)),
    ("new", T.SALE, 1000, S.PROCESSING, P.PROCESSING, _totals(0, 0, 0, 0)),
    ("new", T.SALE, 1000, S.REQUIRES_ACTION, P.REQUIRES_ACTION, _totals(0, 0, 0, 0)),
    ("new", T.SALE, 1000, S.DECLINED, P.FAILED, _totals(0, 0, 0, 0)),
    ("new", T.SALE, 1000, S.FAILED, P.NEW, _totals(0, 0, 0, 0)),
    ("authorized", T.CAPTURE, 400, S.SUCCEEDED, P.PARTIALLY_CAPTURED, _totals(1000, 400, 0, 600)),
    ("authorized", T.CAPTURE, 1000, S.SUCCEEDED, P.CAPTURED, _totals(1000, 1000, 0, 0)),
    ("authorized", T.CAPTURE, 400, S.DECLINED, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("authorized", T.CAPTURE, 400, S.PROCESSING, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("authorized", T.CAPTURE, 400, S.FAILED, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("authorized", T.CAPTURE, 400, S.UNKNOWN, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("authorized", T.VOID, 1000, S.SUCCEEDED, P.VOIDED, _totals(1000, 0, 0, 0)),
    ("authorized", T.VOID, 1000, S.DECLINED, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("authorized", T.VOID, 1000, S.FAILED, P.AUTHORIZED, _totals(1000, 0, 0, 1000)),
    ("captured", T.REFUND, 400, S.SUCCEEDED, P.PARTIALLY_REFUNDED, _totals(1000, 1000, 400, 0)),
    ("captured", T.REFUND, 1000, S.SUCCEEDED, P.REFUNDED, _totals(1000, 1000, 1000, 0)),
    ("captured", T.REFUND, 400, S.PROCESSING, P.CAPTURED, _totals(1000, 1000, 0, 0)),
    ("captured", T.REFUND, 400, S.DECLINED, P.CAPTURED, _totals(1000, 1000, 0, 0)),
    ("captured", T.REFUND, 400, S.FAILED, P.CAPTURED, _totals(1000, 1000, 0, 0)),
]
STARTS = {"new": new_payment, "authorized": authorized, "captured": captured}


@pytest.mark.parametrize(
    ("start", "kind", "amount", "status", "expected_status", "expected_totals"),
    OUTCOMES,
    ids=[f"{start}-{kind}-{amount}-{status}" for start, kind, amount, status, *_ in OUTCOMES],
)
def test_an_outcome_moves_the_totals_and_the_status(
    start, kind, amount, status, expected_status, expected_totals
):
    payment = STARTS[start]()
    decline = DeclineReason.CARD_DECLINED if status is S.DECLINED else None

    updated = apply_outcome(payment, transaction(kind, amount), status, decline_reason=decline)

    assert updated.status is expected_status
    assert updated.totals() == expected_totals
    assert problems(updated) == []


def test_a_partial_approval_counts_what_the_gateway_processed():
    updated = apply_outcome(
        new_payment(1000), transaction(T.AUTHORIZE, 1000), S.SUCCEEDED, processed=usd(600)
    )

    assert updated.status is P.AUTHORIZED
    assert updated.totals() == _totals(600, 0, 0, 600)


def test_a_final_capture_releases_what_stays_uncaptured():
    final = transaction(T.CAPTURE, 300, final=True)

    updated = apply_outcome(authorized(1000), final, S.SUCCEEDED)

    assert updated.status is P.CAPTURED
    assert updated.totals() == _totals(1000, 300, 0, 0)


def test_an_authorization_expired_decline_on_a_capture_empties_what_is_capturable():
    payment, _ = after(authorized(1000), (T.CAPTURE, 300, S.SUCCEEDED))
    late = transaction(T.CAPTURE, 700, S.DECLINED)

    updated = apply_outcome(
        payment, late, S.DECLINED, decline_reason=DeclineReason.AUTHORIZATION_EXPIRED
    )

    assert updated.totals() == _totals(1000, 300, 0, 0)
    assert updated.status is P.CAPTURED
    with pytest.raises(StateError):
        check_mutation(updated, T.CAPTURE, None, capabilities=EVERYTHING)
    with pytest.raises(StateError):
        check_mutation(updated, T.VOID, None, capabilities=EVERYTHING)


@pytest.mark.parametrize("kind", [T.CAPTURE, T.VOID])
def test_an_authorization_that_expired_before_any_capture_leaves_the_payment_expired(kind):
    expired = apply_outcome(
        authorized(1000),
        transaction(kind, 1000, S.DECLINED),
        S.DECLINED,
        decline_reason=DeclineReason.AUTHORIZATION_EXPIRED,
    )

    assert expired.status is P.EXPIRED
    assert expired.totals() == _totals(1000, 0, 0, 0)
    assert problems(expired) == []


def test_another_decline_on_a_capture_keeps_the_authorization():
    declined = apply_outcome(
        authorized(1000),
        transaction(T.CAPTURE, 400, S.DECLINED),
        S.DECLINED,
        decline_reason=DeclineReason.NOT_PERMITTED,
    )

    assert declined.status is P.AUTHORIZED
    assert declined.capturable == usd(1000)


# -- status ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "recorded", "expected"),
    [
        (_totals(0, 0, 0, 0), P.NEW, P.NEW),
        (_totals(0, 0, 0, 0), P.REQUIRES_ACTION, P.REQUIRES_ACTION),
        (_totals(0, 0, 0, 0), P.PROCESSING, P.PROCESSING),
        (_totals(0, 0, 0, 0), P.FAILED, P.FAILED),
        (_totals(1000, 0, 0, 1000), P.NEW, P.AUTHORIZED),
        (_totals(1000, 0, 0, 0), P.AUTHORIZED, P.VOIDED),
        (_totals(1000, 0, 0, 0), P.EXPIRED, P.EXPIRED),
        (_totals(1000, 400, 0, 600), P.AUTHORIZED, P.PARTIALLY_CAPTURED),
        (_totals(1000, 400, 0, 0), P.PARTIALLY_CAPTURED, P.CAPTURED),
        (_totals(1000, 400, 0, 0), P.EXPIRED, P.CAPTURED),
        (_totals(1000, 1000, 0, 0), P.AUTHORIZED, P.CAPTURED),
        (_totals(1000, 1000, 400, 0), P.CAPTURED, P.PARTIALLY_REFUNDED),
        (_totals(1000, 1000, 1000, 0), P.PARTIALLY_REFUNDED, P.REFUNDED),
        # Everything captured so far was refunded, but more may still be captured.
        (_totals(1000, 400, 400, 600), P.PARTIALLY_CAPTURED, P.PARTIALLY_REFUNDED),
    ],
)
def test_the_status_is_what_the_totals_say(totals, recorded, expected):
    payment = attrs.evolve(
        new_payment(1000), status=recorded, **{name: usd(v) for name, v in totals.items()}
    )

    assert status_of(payment) is expected


FORWARD = [
    P.NEW,
    P.REQUIRES_ACTION,
    P.PROCESSING,
    P.AUTHORIZED,
    P.PARTIALLY_CAPTURED,
    P.CAPTURED,
    P.PARTIALLY_REFUNDED,
    P.REFUNDED,
]
TERMINAL = [P.REFUNDED, P.VOIDED, P.FAILED, P.EXPIRED]


def test_a_payment_moves_forward_along_its_life():
    for earlier, later in itertools.combinations(FORWARD, 2):
        assert not moves_backwards(earlier, later), (earlier, later)
        assert moves_backwards(later, earlier), (later, earlier)


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_staying_put_is_not_moving_backwards(status):
    assert not moves_backwards(status, status)


@pytest.mark.parametrize("terminal", TERMINAL)
def test_nothing_leaves_a_terminal_status(terminal):
    for other in PaymentStatus:
        if other is not terminal:
            assert moves_backwards(terminal, other), other


@pytest.mark.parametrize("before", [P.NEW, P.REQUIRES_ACTION, P.PROCESSING])
def test_a_payment_may_fail_before_money_moved(before):
    assert not moves_backwards(before, P.FAILED)


def test_an_authorization_may_be_voided_or_expire_and_a_partial_capture_voided():
    for before in (P.AUTHORIZED, P.PARTIALLY_CAPTURED):
        assert not moves_backwards(before, P.EXPIRED)
    assert not moves_backwards(P.AUTHORIZED, P.VOIDED)
    assert not moves_backwards(P.PARTIALLY_CAPTURED, P.CAPTURED)


def test_a_settled_transaction_is_never_settled_again():
    for final in (S.SUCCEEDED, S.DECLINED, S.FAILED):
        assert not any(can_resolve(final, new) for new in TransactionStatus)
    assert not can_resolve(S.PROCESSING, S.REQUIRES_ACTION)
    assert not can_resolve(S.PROCESSING, S.PROCESSING)
    assert can_resolve(S.UNKNOWN, S.SUCCEEDED)
    assert can_resolve(S.REQUIRES_ACTION, S.SUCCEEDED)
    assert not can_resolve(S.UNKNOWN, S.PENDING)


# -- replay and problems -----------------------------------------------------------------


def test_a_replay_of_the_transactions_rebuilds_the_totals_and_the_status():
    payment, done = after(
        new_payment(1000),
        (T.AUTHORIZE, 1000, S.SUCCEEDED),
        (T.CAPTURE, 300, S.SUCCEEDED),
        (T.CAPTURE, 200, S.FAILED),  # never done: skipped
        (T.CAPTURE, 200, S.SUCCEEDED),
        (T.REFUND, 100, S.DECLINED),
        (T.REFUND, 150, S.SUCCEEDED),
        (T.VOID, 500, S.SUCCEEDED),
    )
    unsettled = transaction(T.REFUND, 50, S.UNKNOWN)  # not applied until settled

    rebuilt = replay(payment, [*reversed(done), unsettled])  # in any order

    assert rebuilt.totals() == payment.totals() == _totals(1000, 500, 150, 0)
    assert rebuilt.status is payment.status is P.PARTIALLY_REFUNDED
    assert problems(payment, [*done, unsettled]) == []


def test_a_replay_counts_partial_approvals_and_expiries():
    approved = transaction(T.AUTHORIZE, 600)  # the ledger records what was processed
    expired = transaction(
        T.CAPTURE, 600, S.DECLINED, decline_reason=DeclineReason.AUTHORIZATION_EXPIRED
    )
    payment = apply_outcome(new_payment(1000), approved, S.SUCCEEDED)
    payment = apply_outcome(
        payment, expired, S.DECLINED, decline_reason=DeclineReason.AUTHORIZATION_EXPIRED
    )

    rebuilt = replay(payment, [approved, expired])

    assert rebuilt.totals() == payment.totals() == _totals(600, 0, 0, 0)
    assert rebuilt.status is P.EXPIRED
    assert problems(payment, [approved, expired]) == []


def _broken(**changes: Any) -> Payment:
    payment, _ = after(
        authorized(1000), (T.CAPTURE, 500, S.SUCCEEDED), (T.REFUND, 200, S.SUCCEEDED)
    )
    assert problems(payment) == []
    return attrs.evolve(payment, **changes)


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({"captured": usd(1100)}, "captured 11.00 USD exceeds authorized 10.00 USD"),
        ({"refunded": usd(600)}, "refunded 6.00 USD exceeds captured 5.00 USD"),
        ({"capturable": usd(600)}, "capturable 6.00 USD exceeds authorized 10.00 USD minus"),
        ({"authorized": usd(1200)}, "authorized 12.00 USD exceeds the amount 10.00 USD"),
        ({"refunded": usd(-1)}, "refunded is negative"),
        ({"capturable": Money(500, "EUR")}, "capturable is in EUR, the payment in USD"),
        ({"status": P.CAPTURED}, "status captured but the totals say partially_refunded"),
    ],
    ids=["captures", "refunds", "capturable", "authorized", "negative", "currency", "status"],
)
def test_problems_names_each_broken_invariant(changes, found):
    assert any(found in problem for problem in problems(_broken(**changes))), problems(
        _broken(**changes)
    )


def test_problems_finds_totals_the_transactions_do_not_support():
    payment, done = after(
        new_payment(1000), (T.AUTHORIZE, 1000, S.SUCCEEDED), (T.CAPTURE, 500, S.SUCCEEDED)
    )
    # A capture recorded twice in the totals, but once among the transactions.
    doubled = attrs.evolve(payment, captured=usd(1000), capturable=usd(0), status=P.CAPTURED)

    assert problems(doubled) == []  # consistent on its own
    assert problems(doubled, done) == [
        "totals {'authorized': 1000, 'captured': 1000, 'refunded': 0, 'capturable': 0} but "
        "the transactions say {'authorized': 1000, 'captured': 500, 'refunded': 0, "
        "'capturable': 500}"
    ]


def test_problems_finds_a_status_that_no_money_supports():
    assert problems(attrs.evolve(new_payment(), status=P.CAPTURED)) != []


# -- properties --------------------------------------------------------------------------

# One step of a random life: the operation, how much of what is available (in
# hundredths; 100 or more: everything), how it ended (None: declined because the
# authorization expired), and whether a capture is final.
STEPS = st.tuples(
    st.sampled_from([T.CAPTURE, T.REFUND, T.VOID]),
    st.integers(min_value=1, max_value=120),
    st.sampled_from([S.SUCCEEDED, S.SUCCEEDED, S.SUCCEEDED, S.DECLINED, S.FAILED, None]),
    st.booleans(),
)


def _available(payment: Payment, kind: TransactionType) -> Money:
    return payment.capturable if kind is T.CAPTURE else payment.refundable


def _live(
    amount: int,
    sale: bool,
    steps: Sequence[tuple[TransactionType, int, TransactionStatus | None, bool]],
) -> tuple[list[Payment], list[PaymentTransaction]]:
    """A payment through ``steps``, each refused one skipped as the services would: the
    payment after each recorded transaction, and the transactions."""
    first = transaction(T.SALE if sale else T.AUTHORIZE, amount)
    history = [apply_outcome(new_payment(amount), first, S.SUCCEEDED)]
    done = [first]
    for kind, share, status, final in steps:
        payment = history[-1]
        wanted = None
        if kind is not T.VOID and share < 100:
            wanted = usd(max(1, _available(payment, kind).minor_units * share // 100))
        try:
            carried = check_mutation(payment, kind, wanted, capabilities=EVERYTHING)
        except PaycoreError:
            continue
        expired = DeclineReason.AUTHORIZATION_EXPIRED if status is None else None
        record = transaction(
            kind,
            carried,
            S.DECLINED if status is None else status,
            final=final and kind is T.CAPTURE,
            decline_reason=expired,
        )
        history.append(
            apply_outcome(payment, record, record.status, decline_reason=record.decline_reason)
        )
        done.append(record)
    return history, done


@settings(max_examples=150, deadline=None)
@given(
    amount=st.integers(min_value=1, max_value=10**9),
    sale=st.booleans(),
    steps=st.lists(STEPS, max_size=12),
)
def test_any_sequence_of_allowed_operations_keeps_every_invariant(amount, sale, steps):
    history, done = _live(amount, sale, steps)
    payment = history[-1]

    assert problems(payment, done) == []
    for before, after_it in itertools.pairwise(history):
        assert not moves_backwards(before.status, after_it.status)
    succeeded = [t for t in done if t.status is S.SUCCEEDED]
    captures = sum(t.amount.minor_units for t in succeeded if t.type in (T.CAPTURE, T.SALE))
    refunds = sum(t.amount.minor_units for t in succeeded if t.type is T.REFUND)
    assert payment.captured.minor_units == captures <= payment.authorized.minor_units
    assert payment.refunded.minor_units == refunds <= captures


@settings(max_examples=100, deadline=None)
@given(sale=st.booleans(), steps=st.lists(STEPS, max_size=12))
def test_a_replay_equals_the_totals_kept_step_by_step(sale, steps):
    history, done = _live(10_000, sale, steps)

    for count, payment in enumerate(history, start=1):
        assert replay(payment, done[:count]) == payment
