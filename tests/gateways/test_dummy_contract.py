"""The dummy gateway against the gateway contract, over HTTP to its sandbox."""

from __future__ import annotations

from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import DeclineReason, PaymentMethod


class TestDummyContract(GatewayContract):
    gateway_name = "dummy"
    currency = "USD"
    amount = 10_000
    approved = PaymentMethod(type="card", token="tok_visa")
    declined = PaymentMethod(type="card", token="tok_declined")
    declined_reason = DeclineReason.CARD_DECLINED
    insufficient_funds = PaymentMethod(type="card", token="tok_insufficient_funds")
    challenge = PaymentMethod(type="card", token="tok_3ds")

    def provider_totals(self, sandbox: DummySandbox, gateway_reference: str) -> ProviderTotals:
        payment = sandbox.ledger.get(gateway_reference)
        succeeded = [op["type"] for op in payment["operations"] if op["status"] == "succeeded"]
        return ProviderTotals(
            captured=payment["amount_captured"],
            refunded=payment["amount_refunded"],
            captures=succeeded.count("capture"),
            refunds=succeeded.count("refund"),
        )
