"""XPAY's two-step protocol end to end: the sandbox asks the merchant (``check``) before
it takes the money; the merchant's endpoint answers through the gateway and
`PaymentTransactionServices.answer_check`, which a hook may overrule.

The merchant's endpoint here is a small Starlette app doing what a webhook route does:
the gateway reads the delivery; a question is answered by the services, events are
applied, and the gateway's reply goes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pluggy
import pytest
from paycore_xpay.gateway import XpayGateway
from paycore_xpay.sandbox import XpaySandbox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paycore.gateways.driver import GatewayDriver
from paycore.hookspecs import hookimpl
from paycore.money import Money
from paycore.plugins import new_hook_manager
from paycore.sandbox.browser import submit_form
from paycore.transactions.model import PaymentMethod, TransactionStatus, WebhookRequest
from paycore.transactions.services import PaymentTransactionServices

PAYING_CARD = "4242424242424242"


class Shop:
    """The merchant: its services, and the endpoint XPAY calls back."""

    def __init__(self, make_services: Callable[..., PaymentTransactionServices]) -> None:
        self.manager: pluggy.PluginManager = new_hook_manager(load_entry_points=False)
        self.make_services = make_services
        self.services: PaymentTransactionServices | None = None
        self.sandbox: XpaySandbox | None = None
        self.answered: list[bytes] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/callbacks", self.callback, methods=["GET"])])

    def callback(self, request: Request) -> Response:
        assert self.services is not None
        driver = self.services.drivers["xpay"]
        delivery = WebhookRequest(
            method=request.method, headers=dict(request.headers), query=dict(request.query_params)
        )
        handling = driver.run(driver.gateway.handle_webhook(delivery), operation="handle_webhook")
        if handling.check is not None:
            reply = self.services.answer_check("xpay", handling.check)
            self.answered.append(reply.body)
        else:
            for event in handling.events:
                self.services.apply_event("xpay", event)
            reply = handling.reply
        return Response(reply.body, reply.status_code, media_type=reply.media_type)


@pytest.fixture
def shop(paycore_services: Any, paycore_sandbox_server: Any, http: httpx.Client) -> Shop:
    shop = Shop(paycore_services)
    callbacks = paycore_sandbox_server(shop.app()).url + "/callbacks"
    sandbox = XpaySandbox(seed=0, two_step=True, webhook_url=callbacks, webhook_time_scale=0.01)
    server = paycore_sandbox_server(sandbox)
    gateway = XpayGateway.from_config(sandbox.gateway_config(server.url))
    driver = GatewayDriver(gateway, client=http, hooks=None)
    shop.services = paycore_services({"xpay": driver}, hooks=shop.manager.hook)
    shop.sandbox = sandbox
    return shop


@pytest.fixture
def http() -> Any:
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=20) as client:
        yield client


def pay_on_the_page(shop: Shop, http: httpx.Client) -> str:
    """A sale of 29.99 UAH, paid on XPAY's page; returns its transaction id."""
    assert shop.services is not None
    payment = shop.services.create_payment(
        Money(2999, "UAH"),
        gateway="xpay",
        payment_method=PaymentMethod(type="card"),
        return_url="https://shop.example/return",
    )
    sale = shop.services.sale(payment.id)
    assert sale.next_action is not None
    answer = submit_form(http, sale.next_action.url, "pay", {"card_number": PAYING_CARD})
    assert answer.status_code == 303, answer.text
    assert shop.sandbox is not None and shop.sandbox.wait_for_webhooks(10)
    return sale.id


def test_the_merchant_accepts_what_the_ledger_waits_for_and_the_money_is_taken(
    shop: Shop, http: httpx.Client
) -> None:
    sale_id = pay_on_the_page(shop, http)

    assert shop.services is not None and shop.sandbox is not None
    assert [b'"result":"10"' in body for body in shop.answered] == [True]
    assert shop.services.get_transaction(sale_id).status is TransactionStatus.SUCCEEDED
    (payment,) = shop.sandbox.snapshot()["operations"].values()
    assert (payment["status"], payment["sum"]) == ("10", 2999)


def test_a_hook_that_refuses_stops_xpay_taking_the_money(shop: Shop, http: httpx.Client) -> None:
    class SoldOut:
        @hookimpl
        def paycore_answer_payment_check(self, expected: bool) -> bool:
            assert expected  # the ledger would have said yes
            return False

    shop.manager.register(SoldOut())

    sale_id = pay_on_the_page(shop, http)

    assert shop.services is not None and shop.sandbox is not None
    assert [b'"result":"21"' in body for body in shop.answered] == [True]
    sale = shop.services.get_transaction(sale_id)
    assert sale.status is TransactionStatus.DECLINED
    (payment,) = shop.sandbox.snapshot()["operations"].values()
    assert (payment["status"], payment["reason"]) == ("21", "rejected_by_partner")
