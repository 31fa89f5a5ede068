"""``/webhooks/xpay``: a plugin whose callbacks are unsigned GETs, believed only once the
gateway has asked XPAY, and whose two-step protocol asks the merchant first.

The XPAY sandbox calls the app back; the customer pays on its page. What the dummy
gateway cannot show is here: a question (``check``) answered by the ledger, and a
callback the gateway cannot confirm because XPAY does not answer, which is a 503 so
that XPAY calls again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from paycore.config import GatewaySettings
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod, TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import WebApp, free_port

pytest.importorskip("paycore_xpay")

from paycore_xpay.gateway import XpayGateway
from paycore_xpay.sandbox import XpaySandbox

LOG = Callable[[], list[dict[str, Any]]]
PAYING_CARD = "4242424242424242"  # the sandbox's test card (sandbox only)


class Xpay:
    """The XPAY sandbox calling the app back, and the merchant's services over it."""

    def __init__(self, sandbox: XpaySandbox, app: WebApp, shop: PaymentTransactionServices):
        self.sandbox = sandbox
        self.app = app
        self.shop = shop

    def pay_on_the_page(self, http: httpx.Client) -> str:
        """A sale of 29.99 UAH, paid on XPAY's page; its transaction id."""
        payment = self.shop.create_payment(
            Money(2999, "UAH"), gateway="xpay", payment_method=PaymentMethod(type="card")
        )
        sale = self.shop.sale(payment.id)
        assert sale.next_action is not None
        answer = submit_form(http, sale.next_action.url, "pay", {"card_number": PAYING_CARD})
        assert answer.status_code in (200, 303), answer.text
        assert self.sandbox.wait_for_webhooks(10)
        return sale.id


@pytest.fixture
def xpay(
    web_app: Callable[..., WebApp],
    paycore_sandbox_server: Callable[..., SandboxServer],
    paycore_services: Callable[..., PaymentTransactionServices],
) -> Xpay:
    port = free_port()
    sandbox = XpaySandbox(
        seed=0,
        two_step=True,
        webhook_url=f"http://127.0.0.1:{port}/webhooks/xpay",
        webhook_time_scale=0.01,
    )
    config = sandbox.gateway_config(paycore_sandbox_server(sandbox).url)
    app = web_app(
        port=port,
        deliver=False,
        gateways={"xpay": GatewaySettings(name="xpay", plugin="xpay", config=config)},
    )
    shop = paycore_services({"xpay": XpayGateway.from_config(config)})
    return Xpay(sandbox, app, shop)


def test_the_ledger_answers_xpay_s_question_and_its_callback_is_applied(
    xpay: Xpay, http: httpx.Client, web_log: LOG
) -> None:
    sale_id = xpay.pay_on_the_page(http)

    assert xpay.shop.get_transaction(sale_id).status is TransactionStatus.SUCCEEDED
    assert [(line["reason"], line["status"]) for line in web_log()] == [
        ("check_accepted", 200),
        ("applied", 200),
    ]


def test_a_question_about_a_transaction_the_ledger_does_not_know_is_refused(
    xpay: Xpay, http: httpx.Client, web_log: LOG
) -> None:
    query = {
        "command": "check",
        "txn_id_own": "txn_unknown",
        "terminal_id": xpay.sandbox.terminal_id,
        "operation_id": "77",
        "sum": "2999",
        "txn_date": "20260101120000",
    }

    answer = http.get(f"{xpay.app.url}/webhooks/xpay", params=query)

    assert (answer.status_code, answer.json()["result"]) == (200, "21")
    assert [line["reason"] for line in web_log()] == ["check_rejected"]


def test_a_callback_xpay_cannot_confirm_now_is_503_and_passes_once_it_can(
    xpay: Xpay, http: httpx.Client, web_log: LOG
) -> None:
    xpay.pay_on_the_page(http)
    (pay,) = [event for event in xpay.sandbox.events if event["command"] == "pay"]
    callback = f"{xpay.app.url}/webhooks/xpay?{urlencode(pay)}"
    xpay.sandbox.queue_faults("error", "error", "error")  # every try to ask XPAY fails

    unconfirmed = http.get(callback)
    again = http.get(callback)  # XPAY calls again, and answers this time

    assert unconfirmed.status_code == 503
    assert again.status_code == 200
    refused, repeated = web_log()[-2:]
    assert (refused["reason"], refused["level"]) == ("gateway_error", "ERROR")
    assert refused["error"] in ("GatewayUnavailable", "OutcomeUnknown", "GatewayProtocolError")
    assert repeated["reason"] == "duplicate"


def test_a_callback_without_a_command_is_malformed(xpay: Xpay, http: httpx.Client) -> None:
    answer = http.get(f"{xpay.app.url}/webhooks/xpay", params={"txn_id": "1"})

    assert (answer.status_code, answer.text) == (400, "malformed payload\n")


def test_xpay_s_callbacks_with_a_body_are_not_xpay_s(xpay: Xpay, http: httpx.Client) -> None:
    answer = http.post(f"{xpay.app.url}/webhooks/xpay", content=b"command=pay")

    assert (answer.status_code, answer.text) == (400, "signature verification failed\n")
