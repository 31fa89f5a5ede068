"""An order paid by a gift card (the dummy provider, many captures) and a card at WooshPay
(one capture, which releases the rest): shipments, a partial cancel and returns spread
over both, and each provider's totals equal the ledger's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("paycore_wooshpay")

from paycore_wooshpay.gateway import WooshPayGateway
from paycore_wooshpay.sandbox import WooshPaySandbox

from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import Instruction, InstructionOutcome, OrderPayments
from paycore.testing.pytest_plugin import ServeSandbox
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

GIFT_CARD = PaymentMethod(type="gift_card", token="gc_test_100000")
VISA = PaymentMethod(type="card", token="pm_card_visa")


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


@pytest.fixture
def wooshpay(paycore_sandbox_server: ServeSandbox) -> tuple[WooshPaySandbox, WooshPayGateway]:
    sandbox = WooshPaySandbox(seed=3)
    server = paycore_sandbox_server(sandbox)
    return sandbox, WooshPayGateway.from_config(sandbox.gateway_config(server.url))


@pytest.fixture
def services(
    store: Store,
    paycore_dummy_gateway: DummyGateway,
    wooshpay: tuple[WooshPaySandbox, WooshPayGateway],
) -> Iterator[PaymentTransactionServices]:
    gateways = {"giftcards": paycore_dummy_gateway, "wooshpay": wooshpay[1]}
    services = PaymentTransactionServices(store, gateways, hooks=None)
    yield services
    services.close()


def test_shipments_a_partial_cancel_and_returns_agree_with_both_providers(
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    wooshpay: tuple[WooshPaySandbox, WooshPayGateway],
) -> None:
    gift = services.create_payment(
        usd(3000), gateway="giftcards", payment_method=GIFT_CARD, owner="ord-9"
    )
    card = services.create_payment(
        usd(5000), gateway="wooshpay", payment_method=VISA, owner="ord-9"
    )
    for payment in (gift, card):
        assert services.authorize(payment.id).succeeded
    oms = OrderPayments(services)

    steps = [
        Instruction(kind="capture", order_id="ord-9", reference="shp-1", amount=usd(1000)),
        Instruction(kind="capture", order_id="ord-9", reference="shp-2", amount=usd(1500)),
        Instruction(kind="cancel", order_id="ord-9", reference="cxl-1", amount=usd(500)),
        Instruction(
            kind="capture", order_id="ord-9", reference="shp-3", amount=usd(4000), final=True
        ),
        Instruction(kind="refund", order_id="ord-9", reference="ret-1", amount=usd(2000)),
        Instruction(kind="refund", order_id="ord-9", reference="ret-2", amount=usd(2500)),
    ]
    results = [oms.carry_out(step) for step in steps]

    assert [r.outcome for r in results] == [InstructionOutcome.SUCCEEDED] * len(steps)
    assert [(t.payment_id, t.type) for t in results[2].transactions] == [(gift.id, "void")]
    assert [(t.payment_id, t.amount) for t in results[5].transactions] == [
        (card.id, usd(2000)),
        (gift.id, usd(500)),
    ]
    gift_now, card_now = services.get_payment(gift.id), services.get_payment(card.id)
    assert (gift_now.captured, gift_now.refunded) == (usd(2500), usd(500))
    assert (card_now.captured, card_now.refunded) == (usd(4000), usd(4000))

    # The providers' own books.
    (at_dummy,) = [
        p
        for p in paycore_dummy_sandbox.snapshot()["payments"]
        if p["id"] == gift_now.gateway_reference
    ]
    assert (at_dummy["amount_captured"], at_dummy["amount_refunded"]) == (2500, 500)
    assert paycore_dummy_sandbox.snapshot()["gift_cards"]["gc_test_100000"]["balance"] == (
        100_000 - 2500 + 500
    )
    state = wooshpay[0].snapshot()
    (intent,) = [i for i in state["payment_intents"] if i["id"] == card_now.gateway_reference]
    refunded = sum(
        r["amount"]
        for r in state["refunds"]
        if r["payment_intent"] == intent["id"] and r["status"] == "succeeded"
    )
    assert (intent["amount_received"], refunded) == (4000, 4000)

    again = [oms.carry_out(step) for step in steps]
    assert {r.outcome for r in again} == {InstructionOutcome.SKIPPED}
    assert wooshpay[0].snapshot() == state
