"""WooshPay against the gateway contract, over HTTP to its sandbox."""

from __future__ import annotations

import httpx
from paycore_wooshpay.sandbox import WooshPaySandbox

from paycore.sandbox.browser import submit_form
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import CheckoutSession, DeclineReason, PaymentMethod

# The sandbox's ready-made payment methods (sandbox only, not WooshPay's).
VISA = PaymentMethod(type="card", token="pm_card_visa")
PAYING_CARD = "4242424242424242"


class TestWooshPayContract(GatewayContract):
    gateway_name = "wooshpay"
    currency = "USD"
    amount = 10_000
    approved = VISA
    declined = PaymentMethod(type="card", token="pm_card_declined")
    declined_reason = DeclineReason.CARD_DECLINED
    insufficient_funds = PaymentMethod(type="card", token="pm_card_insufficient_funds")
    challenge = PaymentMethod(type="card", token="pm_card_3ds")
    vault_method = VISA

    def provider_totals(self, sandbox: WooshPaySandbox, gateway_reference: str) -> ProviderTotals:
        state = sandbox.snapshot()
        (intent,) = [pi for pi in state["payment_intents"] if pi["id"] == gateway_reference]
        refunds = [
            refund
            for refund in state["refunds"]
            if refund["payment_intent"] == gateway_reference and refund["status"] == "succeeded"
        ]
        captured = intent["amount_received"] if intent["status"] == "succeeded" else 0
        return ProviderTotals(
            captured=captured,
            refunded=sum(refund["amount"] for refund in refunds),
            refunds=len(refunds),
        )

    def pay_checkout(self, http: httpx.Client, session: CheckoutSession) -> None:
        answer = submit_form(http, session.next_action.url, "pay", {"card_number": PAYING_CARD})
        assert answer.status_code == 303, answer.text
