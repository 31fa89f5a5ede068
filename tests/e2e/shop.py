"""Merchants on loopback that send their customers to a provider's hosted page.

A `Shop` holds what a real merchant's server would: paycore's services on a ledger,
one provider plugin's gateway (talking to that provider's sandbox), the endpoint the
provider's webhooks reach, and the order page the provider sends the customer back to
(a tiny Starlette app showing "Order page", which notes every visit). The browser does
the customer's part; the shop does the merchant's, applying the webhooks itself.

A `CheckoutShop` is a merchant built on paycore's checkout and web app instead: one
checkout paid in part by a gift card (the dummy provider) and the rest on the
provider's page; the web app takes both providers' webhooks and the customer coming
back, completes the checkout and sends the customer to the merchant's page for the
outcome ("Thank you", "Payment failed", "Payment pending": `OutcomePages`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from paycore import plugins
from paycore.checkout import Cart, CartItem, CheckoutService
from paycore.config import CheckoutSettings, GatewaySettings, Settings, WebSettings
from paycore.demo_checkout import webhook_dispositions
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.base import Sandbox
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.transactions.model import TransactionStatus
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.web import create_app
from tests.web.support import free_port

if TYPE_CHECKING:
    from paycore.testing.pytest_plugin import MakeServices, ServeSandbox

# Retry a refused webhook within seconds (providers wait minutes): a test lasts seconds.
QUICK_RETRIES = (0, 0.2, 0.5, 1, 2)

ORDER_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Order {order}</title></head>
<body><h1>Order page</h1><p>Order {order}</p></body>
</html>
"""

OUTCOME_TITLES = {
    "/thanks": "Thank you",
    "/failed": "Payment failed",
    "/pending": "Payment pending",
}
OUTCOME_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<p>Order: <output id="order">{order}</output></p>
<p>Checkout: <output id="checkout">{checkout}</output></p></body>
</html>
"""

# How each sandbox's state lists its payments, by the reference paycore keeps.
PROVIDER_RECORDS: dict[str, Callable[[dict[str, Any]], dict[str, dict[str, Any]]]] = {
    "dummy": lambda state: {payment["id"]: payment for payment in state["payments"]},
    "wooshpay": lambda state: {intent["id"]: intent for intent in state["payment_intents"]},
    "milkypay": lambda state: dict(state["invoices"]),
    "xpay": lambda state: dict(state["operations"]),
}


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
        self._note(request)
        order = request.path_params["order"]
        return HTMLResponse(ORDER_PAGE.format(order=escape(order)))

    def _note(self, request: Request) -> None:
        arrival = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        with self._lock:
            self._visits.append(arrival)


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


class OutcomePages(OrderPages):
    """The merchant's pages for a checkout's outcome, where paycore's web app sends the
    customer back: ``GET /thanks`` ("Thank you"), ``/failed`` ("Payment failed"),
    ``/pending`` ("Payment pending"), each showing the query's ``order`` and ``checkout``
    (as the app adds them). `visits` lists each arrival, as for the order pages."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route(path, self._outcome, methods=["GET"]) for path in OUTCOME_TITLES]
        )

    async def _outcome(self, request: Request) -> Response:
        self._note(request)
        page = OUTCOME_PAGE.format(
            title=OUTCOME_TITLES[request.url.path],
            order=escape(request.query_params.get("order", "")),
            checkout=escape(request.query_params.get("checkout", "")),
        )
        return HTMLResponse(page)


class CheckoutShop:
    """A merchant taking checkouts through paycore's web app; build it with `open`.

    All on loopback, on the test's ledger: paycore's web app (``create_app``) at
    `app_url`; the provider's sandbox and the dummy sandbox (gift cards, `giftcards`),
    both delivering their webhooks to the app; the merchant's outcome pages (`pages`),
    where the app sends returning customers; and the merchant's own `checkout` service
    over `services`. The app and the merchant's services are two engines on one database.
    """

    def __init__(
        self,
        *,
        gateway: str,
        currency: str,
        provider: Sandbox,
        giftcards: DummySandbox,
        services: PaymentTransactionServices,
        checkout: CheckoutService,
        app_url: str,
        pages: OutcomePages,
        pages_url: str,
    ) -> None:
        self.gateway = gateway
        self.currency = currency
        self.provider = provider
        self.giftcards = giftcards
        self.services = services
        self.checkout = checkout
        self.app_url = app_url
        self.pages = pages
        self.pages_url = pages_url

    @classmethod
    def open(
        cls,
        gateway: str,
        *,
        currency: str,
        capture: Literal["authorize", "sale"],
        ledger: str,
        serve: ServeSandbox,
        serve_app: ServeApp,
        make_services: MakeServices,
        client: httpx.Client,
        **sandbox_options: Any,
    ) -> CheckoutShop:
        """Serve the sandboxes, the outcome pages and the web app on ``ledger`` (a database
        URL), checkouts authorizing or selling as ``capture`` says; ``sandbox_options`` go
        to the provider's sandbox."""
        port = free_port()
        app_url = f"http://127.0.0.1:{port}"
        sandbox_options.setdefault("webhook_schedule", QUICK_RETRIES)
        provider = plugins.sandbox_class(gateway)(
            webhook_url=f"{app_url}/webhooks/{gateway}", **sandbox_options
        )
        giftcards = DummySandbox(
            seed=0, webhook_url=f"{app_url}/webhooks/dummy", webhook_schedule=QUICK_RETRIES
        )
        configs = {
            "dummy": giftcards.gateway_config(serve(giftcards).url),
            gateway: provider.gateway_config(serve(provider).url),
        }
        pages = OutcomePages()
        pages_url = serve(pages.app()).url
        settings = Settings(
            database_url=ledger,
            webhook_base_url=app_url,
            gateways={
                name: GatewaySettings(name=name, plugin=name, config=config)
                for name, config in configs.items()
            },
            web=WebSettings(
                success_url=f"{pages_url}/thanks",
                failure_url=f"{pages_url}/failed",
                pending_url=f"{pages_url}/pending",
            ),
            checkout=CheckoutSettings(capture=capture),
        )
        serve_app(create_app(settings), port)
        drivers = {
            name: GatewayDriver(
                plugins.gateway_class(name).from_config(config), client=client, hooks=None
            )
            for name, config in configs.items()
        }
        services = make_services(drivers)
        return cls(
            gateway=gateway,
            currency=currency,
            provider=provider,
            giftcards=giftcards,
            services=services,
            checkout=CheckoutService(services, capture=capture, return_base_url=app_url),
            app_url=app_url,
            pages=pages,
            pages_url=pages_url,
        )

    def cart(self, total: int) -> Cart:
        """A one-line cart of ``total`` minor units in the shop's currency."""
        price = Money(total, self.currency)
        return Cart(
            currency=self.currency,
            items=[CartItem(sku="tea", name="Green tea", quantity=1, unit_price=price)],
        )

    def outcome_url(self, outcome: str) -> str:
        """The address of the outcome page ``outcome`` (``thanks``, ``failed``, ``pending``)."""
        return f"{self.pages_url}/{outcome}"

    def gift_card(self, number: str) -> dict[str, Any]:
        """The gift card ``number`` at the dummy provider: ``balance`` and ``held``."""
        card: dict[str, Any] = self.giftcards.snapshot()["gift_cards"][number]
        return card

    def settle(self) -> list[str]:
        """Wait until both sandboxes are done delivering their webhooks to the app; the
        events the app never accepted (after the retries), as ``url#event``."""
        assert self.provider.wait_for_webhooks(), "the provider's webhooks were not delivered"
        assert self.giftcards.wait_for_webhooks(), "the gift cards' webhooks were not delivered"
        attempts = [*self.provider.webhook_attempts, *self.giftcards.webhook_attempts]
        accepted = {(a.url, a.event_id) for a in attempts if a.delivered}
        return sorted(
            f"{a.url}#{a.event_id}" for a in attempts if (a.url, a.event_id) not in accepted
        )

    def at_provider(self, payment: Payment) -> dict[str, Any]:
        """The provider's own record of ``payment``, from its sandbox's state: the dummy's
        payment, WooshPay's payment intent, MilkyPay's invoice, XPAY's operation."""
        sandbox = self.giftcards if payment.gateway == "dummy" else self.provider
        records = PROVIDER_RECORDS[payment.gateway](sandbox.snapshot())
        assert payment.gateway_reference in records, f"{payment.gateway} has no such payment"
        return records[payment.gateway_reference]

    def payment(self, payment_id: str) -> Payment:
        """The payment as the ledger has it now."""
        return self.services.get_payment(payment_id)


# What `tests.e2e.conftest`'s ``shop`` fixture gives.
OpenShop = Callable[..., Shop]
# What its ``checkout_shop`` fixture gives: ``checkout_shop(gateway) -> CheckoutShop``.
OpenCheckoutShop = Callable[..., CheckoutShop]
# Serve an ASGI app on a loopback port chosen beforehand (its address is in its settings).
ServeApp = Callable[[ASGIApp, int], SandboxServer]
