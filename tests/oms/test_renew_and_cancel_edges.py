"""Edges of renewing and cancelling: a renewal waits while an outcome is unknown, and a
cancel over a gateway that cannot void releases the others and reports the rest held."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import pytest

from paycore.errors import PaymentBusy
from paycore.gateways.base import Capabilities, Gateway, Operation
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import InstructionOutcome, OrderPayments
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")


def eur(minor_units: int) -> Money:
    return Money(minor_units, "EUR")


class NoVoidGateway(DummyGateway):
    """The dummy provider, declaring no void (as a gift-card provider might)."""

    capabilities: ClassVar[Capabilities] = attrs.evolve(
        DummyGateway.capabilities,
        operations=DummyGateway.capabilities.operations - {Operation.VOID},
    )
    void = Gateway.void


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    novoid = NoVoidGateway(paycore_dummy_gateway.config)
    services = PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway, "novoid": novoid}, hooks=None
    )
    yield services
    services.close()


@pytest.fixture
def oms(services: PaymentTransactionServices) -> OrderPayments:
    return OrderPayments(services)


def pay(services: PaymentTransactionServices, amount: int, gateway: str = "dummy") -> str:
    payment = services.create_payment(
        eur(amount), gateway=gateway, payment_method=CARD, owner="ord-1"
    )
    assert services.authorize(payment.id).succeeded
    return payment.id


def holds(sandbox: DummySandbox) -> dict[str, Any]:
    return {p["id"]: p["amount_capturable"] for p in sandbox.snapshot()["payments"]}


def test_reauthorize_waits_while_a_capture_s_outcome_is_unknown(
    oms: OrderPayments, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    old = pay(services, 1000)
    paycore_dummy_sandbox.queue_faults("drop", "drop", "drop")
    lost = oms.capture_for_fulfillment("ord-1", "shp-1", eur(400))
    assert lost.outcome is InstructionOutcome.UNKNOWN  # captured at the provider, answer lost

    with pytest.raises(PaymentBusy, match="not known yet"):
        oms.reauthorize(old)

    # Nothing more was authorized: the provider holds only what the old one still does.
    assert sum(holds(paycore_dummy_sandbox).values()) <= 1000
    assert len(services.payments_of("ord-1")) == 1


def test_a_cancel_releases_what_can_be_voided_and_reports_the_rest_held(
    oms: OrderPayments, services: PaymentTransactionServices
) -> None:
    card = pay(services, 2000)
    gift = pay(services, 1000, "novoid")

    result = oms.cancel("ord-1")

    assert result.outcome is InstructionOutcome.SUCCEEDED
    assert [t.payment_id for t in result.transactions] == [card]
    assert result.held == eur(1000)
    assert services.get_payment(card).capturable.is_zero()
    assert services.get_payment(gift).capturable == eur(1000)
