"""XPAY against the gateway contract, over HTTP to the sandbox.

XPAY takes every payment on its own page: a sale waits for the customer, who pays (or
fails) there with one of the sandbox's test cards; the contract then asks XPAY for the
outcome. The keys are made once for the module: RSA generation is slow.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from paycore_xpay.keys import generate_private_key, private_pem, public_pem
from paycore_xpay.sandbox import XpaySandbox

from paycore.sandbox.browser import submit_form
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import CheckoutSession, DeclineReason, NextAction, PaymentMethod

# The sandbox's test cards (sandbox only, not XPAY's).
CARDS = {
    "approved": "4242424242424242",
    "declined": "4000000000000002",
    "insufficient_funds": "4000000000009995",
}
DONE = "10"

_partner, _xpay = generate_private_key(), generate_private_key()
KEYS = {
    "partner_private_key": private_pem(_partner),
    "partner_public_key": public_pem(_partner.public_key()),
    "xpay_private_key": private_pem(_xpay),
}


def card(scenario: str) -> PaymentMethod:
    """A card the customer will type on the page; ``scenario`` names which."""
    return PaymentMethod(type="card", fields={"scenario": scenario})


class TestXpayContract(GatewayContract):
    gateway_name = "xpay"
    currency = "UAH"
    amount = 2_999
    pays_on_page = True
    approved = card("approved")
    declined = card("declined")
    insufficient_funds = card("insufficient_funds")
    declined_reason = DeclineReason.CARD_DECLINED
    sandbox_options: ClassVar[dict[str, Any]] = KEYS

    def provider_totals(self, sandbox: XpaySandbox, gateway_reference: str) -> ProviderTotals:
        operations = sandbox.snapshot()["operations"]
        payment = operations[gateway_reference]
        refunds = [
            operation
            for operation in operations.values()
            if operation.get("parent_operation_id") == int(gateway_reference)
            and operation["status"] == DONE
        ]
        captured = payment["sum"] if payment["status"] == DONE else 0
        return ProviderTotals(
            captured=captured,
            refunded=payment["refunded_sum"],
            captures=1 if captured else 0,
            refunds=len(refunds),
        )

    def pay_on_page(
        self, http: httpx.Client, next_action: NextAction, method: PaymentMethod
    ) -> None:
        scenario = method.fields.get("scenario", "approved")
        answer = submit_form(http, next_action.url, "pay", {"card_number": CARDS[scenario]})
        assert answer.status_code == 303, answer.text

    def pay_checkout(self, http: httpx.Client, session: CheckoutSession) -> None:
        self.pay_on_page(http, session.next_action, self.approved)
