"""OrderPayments over the dummy sandbox: captures per shipment spread over an order's
payments in order, partial cancels, refunds per return last first; each instruction done
once however often it is carried out; the ledger's totals equal the provider's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from paycore.errors import CurrencyMismatch, InvalidAmount, NotFound, StateError
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import Instruction, InstructionKind, InstructionOutcome, OrderPayments
from paycore.transactions.model import PaymentMethod, PaymentStatus, TransactionStatus
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")


def eur(minor_units: int) -> Money:
    return Money(minor_units, "EUR")


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    services = PaymentTransactionServices(store, {"dummy": paycore_dummy_gateway}, hooks=None)
    yield services
    services.close()


@pytest.fixture
def oms(services: PaymentTransactionServices) -> OrderPayments:
    return OrderPayments(services)


def order(services: PaymentTransactionServices, *amounts: int, owner: str = "ord-1") -> list[str]:
    """An order paid by one authorized card payment per amount, in that order."""
    ids = []
    for amount in amounts:
        payment = services.create_payment(
            eur(amount), gateway="dummy", payment_method=CARD, owner=owner
        )
        assert services.authorize(payment.id).succeeded
        ids.append(payment.id)
    return ids


def at_sandbox(sandbox: DummySandbox, payment: Payment) -> dict[str, Any]:
    (found,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == payment.gateway_reference]
    return found


def totals(
    services: PaymentTransactionServices, sandbox: DummySandbox, payment_id: str
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(captured, refunded, still authorized) in the ledger, and at the provider."""
    payment = services.get_payment(payment_id)
    theirs = at_sandbox(sandbox, payment)
    return (
        (
            payment.captured.minor_units,
            payment.refunded.minor_units,
            payment.capturable.minor_units,
        ),
        (theirs["amount_captured"], theirs["amount_refunded"], theirs["amount_capturable"]),
    )


def test_two_payments_three_shipments_a_partial_cancel_and_two_returns(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second = order(services, 6000, 4000)
    steps = [
        Instruction(kind="capture", order_id="ord-1", reference="shp-1", amount=eur(2000)),
        Instruction(kind="capture", order_id="ord-1", reference="shp-2", amount=eur(3000)),
        Instruction(kind="cancel", order_id="ord-1", reference="cxl-1", amount=eur(4000)),
        Instruction(
            kind="capture", order_id="ord-1", reference="shp-3", amount=eur(1000), final=True
        ),
        Instruction(kind="refund", order_id="ord-1", reference="ret-1", amount=eur(1500)),
        Instruction(kind="refund", order_id="ord-1", reference="ret-2", amount=eur(2500)),
    ]

    results = [oms.carry_out(step) for step in steps]

    assert [r.outcome for r in results] == [InstructionOutcome.SUCCEEDED] * len(steps)
    # Shipments take from the first payment while it holds enough …
    assert [(t.payment_id, t.amount) for t in results[0].transactions] == [(first, eur(2000))]
    assert [(t.payment_id, t.amount) for t in results[1].transactions] == [(first, eur(3000))]
    # … the cancel releases the last authorization whole …
    assert [(t.payment_id, t.type) for t in results[2].transactions] == [(second, "void")]
    assert results[2].held == eur(0)
    # … and returns give back last first, from what was captured.
    assert [(t.payment_id, t.amount) for t in results[4].transactions] == [(first, eur(1500))]
    assert totals(services, paycore_dummy_sandbox, first) == ((6000, 4000, 0), (6000, 4000, 0))
    assert totals(services, paycore_dummy_sandbox, second) == ((0, 0, 0), (0, 0, 0))
    assert services.get_payment(second).status is PaymentStatus.VOIDED

    # Carried out again (a job re-run): nothing is sent twice.
    operations = len(at_sandbox(paycore_dummy_sandbox, services.get_payment(first))["operations"])
    again = [oms.carry_out(step) for step in steps]
    assert [r.outcome for r in again] == [InstructionOutcome.SKIPPED] * len(steps)
    assert len(at_sandbox(paycore_dummy_sandbox, services.get_payment(first))["operations"]) == (
        operations
    )


def test_a_capture_spreads_over_payments_and_a_final_one_releases_the_rest(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second, third = order(services, 1000, 1000, 1000)

    spread = oms.capture_for_fulfillment("ord-1", "shp-1", eur(1500))
    final = oms.capture_for_fulfillment("ord-1", "shp-2", eur(200), final=True)

    assert [(t.payment_id, t.amount) for t in spread.transactions] == [
        (first, eur(1000)),
        (second, eur(500)),
    ]
    # The final capture takes 2.00 from the second and releases its rest and the third.
    assert [(t.payment_id, t.type, t.amount) for t in final.transactions] == [
        (second, "capture", eur(200)),
        (third, "void", eur(1000)),
    ]
    assert totals(services, paycore_dummy_sandbox, second) == ((700, 0, 0), (700, 0, 0))
    assert totals(services, paycore_dummy_sandbox, third) == ((0, 0, 0), (0, 0, 0))


def test_a_partial_cancel_releases_only_whole_authorizations_and_says_what_stays_held(
    oms: OrderPayments, services: PaymentTransactionServices
) -> None:
    first, second = order(services, 6000, 4000)

    result = oms.cancel("ord-1", eur(5000), cancellation_id="cxl-1")

    assert [t.payment_id for t in result.transactions] == [second]
    assert result.held == eur(1000)
    assert services.get_payment(first).capturable == eur(6000)
    everything = oms.cancel("ord-1")
    assert [t.payment_id for t in everything.transactions] == [first]
    assert services.get_payment(first).status is PaymentStatus.VOIDED


def test_what_cannot_be_done_is_refused_before_anything_is_sent(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second = order(services, 1000, 1000)
    before = paycore_dummy_sandbox.snapshot()

    with pytest.raises(InvalidAmount, match=r"cannot capture 20\.01 EUR.*20\.00 EUR"):
        oms.capture_for_fulfillment("ord-1", "shp-1", eur(2001))
    with pytest.raises(InvalidAmount, match="cannot refund"):
        oms.refund_for_return("ord-1", "ret-1", eur(100))
    with pytest.raises(CurrencyMismatch):
        oms.capture_for_fulfillment("ord-1", "shp-1", Money(100, "USD"))
    with pytest.raises(NotFound):
        oms.capture_for_fulfillment("ord-unknown", "shp-1", eur(100))

    assert paycore_dummy_sandbox.snapshot() == before
    assert [len(services.list_transactions(p)) for p in (first, second)] == [1, 1]


def test_a_capture_whose_answer_was_lost_is_resolved_not_resent_when_run_again(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second = order(services, 1000, 1000)
    paycore_dummy_sandbox.queue_faults("drop", "drop", "drop")  # every retry of it is cut too

    lost = oms.capture_for_fulfillment("ord-1", "shp-1", eur(1500))
    assert lost.outcome is InstructionOutcome.UNKNOWN
    again = oms.capture_for_fulfillment("ord-1", "shp-1", eur(1500))

    assert again.outcome in (InstructionOutcome.SUCCEEDED, InstructionOutcome.SKIPPED)
    for payment_id, captured in ((first, 1000), (second, 500)):
        payment = services.get_payment(payment_id)
        operations = at_sandbox(paycore_dummy_sandbox, payment)["operations"]
        assert [op["type"] for op in operations].count("capture") == 1
        assert payment.captured == eur(captured)


def test_a_plan_says_what_would_be_done_and_sends_nothing(
    oms: OrderPayments, services: PaymentTransactionServices
) -> None:
    (payment_id,) = order(services, 1000)
    instruction = Instruction(
        kind=InstructionKind.CAPTURE, order_id="ord-1", reference="shp-1", amount=eur(400)
    )

    plan = oms.plan(instruction)

    assert plan.transactions == ()
    assert plan.message == f"would capture 4.00 EUR on {payment_id}"
    assert len(services.list_transactions(payment_id)) == 1
    oms.carry_out(instruction)
    assert oms.plan(instruction).outcome is InstructionOutcome.SKIPPED


def test_authorizations_record_when_they_expire_and_can_be_renewed(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second = order(services, 1000, 2000)
    payment = services.get_payment(first)
    assert payment.authorization_expires_at is not None

    soon = oms.expiring(timedelta(days=8))
    assert [p.id for p in soon] == [first, second]
    assert oms.expiring(timedelta(days=1)) == ()

    renewed = oms.reauthorize(first)

    assert renewed.status is TransactionStatus.SUCCEEDED and renewed.amount == eur(1000)
    assert services.get_payment(first).status is PaymentStatus.VOIDED
    assert oms.reauthorize(first) == renewed  # again: the same, nothing sent twice
    # The order's captures now take from the renewed authorization.
    capture = oms.capture_for_fulfillment("ord-1", "shp-1", eur(3000))
    assert {t.payment_id for t in capture.transactions} == {second, renewed.payment_id}
    with pytest.raises(StateError, match="holds nothing"):
        oms.reauthorize(second)  # captured in full


def test_an_authorization_the_provider_gives_no_expiry_for_expires_after_the_gateways_window(
    services: PaymentTransactionServices,
) -> None:
    from paycore.transactions.ledger import Settlement
    from paycore.transactions.model import TransactionType

    payment = services.create_payment(eur(1000), gateway="dummy", payment_method=CARD)
    begun = services.ledger.begin(payment.id, TransactionType.AUTHORIZE, None, idempotency_key="a1")
    services.ledger.record(begun.transaction.id, Settlement(status=TransactionStatus.SUCCEEDED))

    expires = services.get_payment(payment.id).authorization_expires_at
    window = services.gateways["dummy"].capabilities.authorization_window
    assert expires is not None
    assert abs((expires - services.clock()) - window) < timedelta(minutes=1)


def test_a_partial_cancel_beyond_what_is_authorized_reports_nothing_held(
    oms: OrderPayments, services: PaymentTransactionServices
) -> None:
    first, second = order(services, 2000, 1000)

    result = oms.cancel("ord-1", eur(5000), cancellation_id="c1")

    assert {t.payment_id for t in result.transactions} == {first, second}
    assert result.held == eur(0)


def test_a_partial_cancel_needs_its_own_id(oms: OrderPayments) -> None:
    from paycore.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="needs a cancellation_id"):
        oms.cancel("ord-1", eur(1000))


def test_a_final_capture_that_does_not_go_through_releases_nothing_else(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    first, second = order(services, 1000, 1000)
    paycore_dummy_sandbox.queue_faults("drop", "drop", "drop")  # the capture's answer is lost

    lost = oms.capture_for_fulfillment("ord-1", "shp-1", eur(500), final=True)

    assert lost.outcome is InstructionOutcome.UNKNOWN
    assert services.get_payment(second).capturable == eur(1000)  # not released
    done = oms.capture_for_fulfillment("ord-1", "shp-1", eur(500), final=True)
    assert done.outcome is InstructionOutcome.SUCCEEDED
    assert services.get_payment(second).status is PaymentStatus.VOIDED
    assert services.get_payment(first).captured == eur(500)
