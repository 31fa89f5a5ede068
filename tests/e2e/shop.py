"""A merchant on loopback that sends its customers to a provider's hosted page.

A `Shop` holds what a real merchant's server would: paycore's services on a ledger,
one provider plugin's gateway (talking to that provider's sandbox), the endpoint the
provider's webhooks reach, and the order page the provider sends the customer back to
(a tiny Starlette app showing "Order page", which notes every visit). The browser does
the customer's part; the shop does the merchant's, as paycore's own web app will.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from paycore import plugins
from paycore.demo_checkout import webhook_dispositions
from paycore.gateways.driver import GatewayDriver
from paycore.money import Money
from paycore.sandbox.base import Sandbox
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.transactions.model import TransactionStatus
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices

if TYPE_CHECKING:
    from paycore.testing.pytest_plugin import MakeServices, ServeSandbox

ORDER_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Order {order}</title></head>
<body><h1>Order page</h1><p>Order {order}</p></body>
</html>
"""


class OrderPages:
    """The merchant's order pages, ``GET /orders/{order}``; `visits` lists each arrival
    as path and query string, as the server received them."""

    def __init__(self) -> None:
        self._visits: list[str] = []
        self._lock = threading.Lock()

    @property
    def visits(self) -> list[str]:
        with self._lock:
            return list(self._visits)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/orders/{order}", self._show, methods=["GET"])])

    async def _show(self, request: Request) -> Response:
        arrival = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        with self._lock:
            self._visits.append(arrival)
        order = request.path_params["order"]
        return HTMLResponse(ORDER_PAGE.format(order=escape(order)))


class Shop:
    """One provider's payments, taken on its hosted page; build it with `open`."""

    def __init__(
        self,
        *,
        gateway: str,
        sandbox: Sandbox,
        services: PaymentTransactionServices,
        receiver: WebhookReceiver,
        orders: OrderPages,
        url: str,
    ) -> None:
        self.gateway = gateway
        self.sandbox = sandbox
        self.services = services
        self.receiver = receiver
        self.orders = orders
        self.url = url
        self._applied = 0

    @classmethod
    def open(
        cls,
        gateway: str,
        *,
        serve: ServeSandbox,
        make_services: MakeServices,
        client: httpx.Client,
        **sandbox_options: Any,
    ) -> Shop:
        """Serve ``gateway``'s sandbox, a webhook endpoint and the order pages on loopback;
        ``sandbox_options`` go to the sandbox."""
        receiver = WebhookReceiver()
        receiver.base_url = serve(receiver.app()).url
        sandbox = plugins.sandbox_class(gateway)(webhook_url=receiver.url, **sandbox_options)
        provider = serve(sandbox)
        configured = plugins.gateway_class(gateway).from_config(
            sandbox.gateway_config(provider.url)
        )
        driver = GatewayDriver(configured, client=client, hooks=None)
        orders = OrderPages()
        return cls(
            gateway=gateway,
            sandbox=sandbox,
            services=make_services({gateway: driver}),
            receiver=receiver,
            orders=orders,
            url=serve(orders.app()).url,
        )

    def order_url(self, order: str) -> str:
        return f"{self.url}/orders/{order}"

    def send_to_hosted_page(
        self, amount: Money, *, order: str, sale: bool = False
    ) -> PaymentTransaction:
        """A payment for ``order`` authorized (or, with ``sale``, sold) on the provider's
        page: the transaction waits for the customer, its next action the page."""
        payment = self.services.create_payment(
            amount, gateway=self.gateway, owner=order, return_url=self.order_url(order)
        )
        start = self.services.sale if sale else self.services.authorize
        transaction = start(payment.id, checkout="hosted_page")
        assert transaction.status is TransactionStatus.REQUIRES_ACTION, transaction
        assert transaction.next_action is not None, "the hosted page has no address"
        return transaction

    def settle(self) -> dict[str, int]:
        """Wait for the webhooks sent so far; verify and apply those not applied yet, as
        the merchant's webhook endpoint does. What they did, by disposition."""
        assert self.sandbox.wait_for_webhooks(), "the provider's webhooks were not delivered"
        deliveries = self.receiver.received[self._applied :]
        self._applied += len(deliveries)
        driver = self.services.drivers[self.gateway]
        return webhook_dispositions(self.services, self.gateway, driver, deliveries)

    def transaction(self, transaction: PaymentTransaction) -> PaymentTransaction:
        """``transaction`` as the ledger has it now."""
        return self.services.get_transaction(transaction.id)

    def payment(self, transaction: PaymentTransaction) -> Payment:
        """``transaction``'s payment as the ledger has it now."""
        return self.services.get_payment(transaction.payment_id)


# What `tests.e2e.conftest`'s ``shop`` fixture gives.
OpenShop = Callable[..., Shop]
