"""MilkyPay (and Paytone, the same platform) against the gateway contract, over HTTP to
the sandbox.

Payments that need no customer use the sandbox's test service with its documented
``test_details_success_rate`` field (100: paid, 0: declined); the challenge is a card on
the hosted page that asks for 3-D Secure.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
from paycore_milkypay.sandbox import MilkyPaySandbox

from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import CheckoutSession, DeclineReason, NextAction, PaymentMethod

# The sandbox's test cards (sandbox only, not the platform's).
PAYING_CARD = "4242424242424242"
CHALLENGE_CARD = "4000000000003220"
PAID = {"processed", "partially_processed", "refunding", "refund_pending", "partially_refunded"}
PAID |= {"refunded", "refund_error", "refund_failed", "charged_back", "partially_charged_back"}


def service_method(currency: str, success_rate: int) -> PaymentMethod:
    return PaymentMethod(
        type=f"test_{currency.lower()}",
        fields={"test_details_success_rate": str(success_rate)},
    )


class TestMilkyPayContract(GatewayContract):
    gateway_name = "milkypay"
    currency = "USD"
    amount = 10_055  # 100.55: a major-unit amount a float would not keep exact
    approved = service_method("USD", 100)
    declined = service_method("USD", 0)
    declined_reason = DeclineReason.CARD_DECLINED
    challenge = PaymentMethod(type="payment_card_usd_hpp")

    def provider_totals(self, sandbox: MilkyPaySandbox, gateway_reference: str) -> ProviderTotals:
        state = sandbox.snapshot()
        invoice = state["invoices"][gateway_reference]
        refunds = [
            refund
            for refund in state["refunds"].values()
            if refund["invoice_id"] == gateway_reference and refund["status"] == "processed"
        ]
        captured = invoice["processed_amount"] if invoice["status"] in PAID else Decimal(0)
        return ProviderTotals(
            captured=self._minor(captured),
            refunded=self._minor(invoice["refunded_amount"]),
            captures=1 if captured else 0,
            refunds=len(refunds),
        )

    def complete_action(
        self, http: httpx.Client, next_action: NextAction, *, approve: bool
    ) -> None:
        # The hosted page first: a card that asks for 3-D Secure, then the challenge.
        answer = submit_form(http, next_action.url, "pay", {"card_number": CHALLENGE_CARD})
        assert answer.status_code == 303, answer.text
        challenge = httpx.URL(next_action.url).join(answer.headers["location"])
        submit_form(http, str(challenge), "approve" if approve else "decline")

    def pay_checkout(self, http: httpx.Client, session: CheckoutSession) -> None:
        answer = submit_form(http, session.next_action.url, "pay", {"card_number": PAYING_CARD})
        assert answer.status_code == 303, answer.text

    def _minor(self, amount: Decimal | int) -> int:
        return Money.parse(Decimal(amount), self.currency).minor_units


class TestPaytoneContract(TestMilkyPayContract):
    """Paytone is a white label of the same platform: its own entry points, its own
    config, the same behaviour."""

    gateway_name = "paytone"
    currency = "UAH"
    amount = 2_999
    approved = service_method("UAH", 100)
    declined = service_method("UAH", 0)
    challenge = PaymentMethod(type="payment_card_uah_hpp")
