"""`paycore demo`, second part: a checkout through paycore's web app, for each provider.

A merchant on loopback: paycore's web app (`paycore.web.create_app`) receiving the
providers' webhooks and the customers back from hosted pages, the dummy provider's
sandbox for gift cards, and the provider's sandbox. The tour:

1. the payment options for the cart (every configured gateway, asked at once);
2. split tender: 20.00 on a gift card (the dummy provider), the rest on the
   provider's hosted page;
3. submit: the gift card is authorized, the provider's page opened;
4. the customer (an HTTP client doing what a browser does) pays on the page and is
   sent back to the web app's ``/return/{gateway}``;
5. the provider's webhook and the customer's return reach the web app, in either
   order (the first provider's webhook comes first, the next one's return: its
   webhooks are held back): whichever is first completes the checkout, the other
   changes nothing; the customer lands on the merchant's success page with the order;
6. on the order: a partial capture of the provider's payment (where it authorizes) and
   a partial refund, each compared with the provider's own totals.

It runs for WooshPay, MilkyPay and XPAY; the plugins are found through their entry
points like any other, and one not installed is skipped with a note.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from attrs import frozen
from starlette.applications import Starlette
from starlette.routing import Mount

from paycore import plugins
from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.config import GatewaySettings, Settings, WebSettings
from paycore.errors import PluginError
from paycore.gateways.base import Gateway
from paycore.gateways.driver import AsyncGatewayDriver, GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.transport import AsyncShardedTransport
from paycore.money import Money
from paycore.sandbox.base import Sandbox
from paycore.sandbox.browser import submit_form
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import ReceivedWebhook
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from paycore.web import create_app

__all__ = [
    "CHECKOUT_GATEWAYS",
    "CheckoutGateway",
    "Step",
    "Tour",
    "available",
    "checkout_tour",
    "webhook_dispositions",
]

# The sandboxes' test card that pays without a challenge (sandbox only, never a real card).
TEST_CARD = "4242424242424242"
# The dummy sandbox's test gift card (sandbox only).
GIFT_CARD = "gc_test_100000"
SHOP = "https://shop.example"
SUCCESS_URL = f"{SHOP}/order/thanks"
FAILURE_URL = f"{SHOP}/cart?payment=failed"
TOTAL = 4999
GIFT_PART = 2000
# How long the return-first tour holds the provider's webhooks back.
HELD_BACK = 1.0


def _wooshpay_totals(state: Mapping[str, Any], reference: str, currency: str) -> tuple[int, int]:
    (intent,) = [i for i in state["payment_intents"] if i["id"] == reference]
    refunded = sum(
        refund["amount"]
        for refund in state["refunds"]
        if refund["payment_intent"] == reference and refund["status"] == "succeeded"
    )
    return intent["amount_received"], refunded


def _milkypay_totals(state: Mapping[str, Any], reference: str, currency: str) -> tuple[int, int]:
    # The platform keeps major units (exact decimals): the ledger's are minor units.
    invoice = state["invoices"][reference]
    return (
        Money.parse(Decimal(invoice["processed_amount"]), currency).minor_units,
        Money.parse(Decimal(invoice["refunded_amount"]), currency).minor_units,
    )


def _xpay_totals(state: Mapping[str, Any], reference: str, currency: str) -> tuple[int, int]:
    payment = state["operations"][reference]
    return (payment["sum"] if payment["status"] == "10" else 0), payment["refunded_sum"]


@frozen
class CheckoutGateway:
    """How the tour goes through one provider: ``totals`` reads what its sandbox
    captured and refunded; ``currency`` is the one it takes (None: the demo's);
    ``authorizes`` whether its page authorizes (a partial capture follows) or sells."""

    totals: Callable[[Mapping[str, Any], str, str], tuple[int, int]]
    currency: str | None = None
    authorizes: bool = True


# Each gateway the tour runs through.
CHECKOUT_GATEWAYS: dict[str, CheckoutGateway] = {
    "wooshpay": CheckoutGateway(_wooshpay_totals),
    "milkypay": CheckoutGateway(_milkypay_totals),
    "xpay": CheckoutGateway(_xpay_totals, currency="UAH", authorizes=False),
}


@frozen
class Step:
    label: str
    transaction: PaymentTransaction
    payment: Payment
    elapsed_ms: float


@frozen
class Tour:
    """What the checkout did: its steps, how it completed, and the providers' totals."""

    gateway: str
    display_name: str
    currency: str
    authorized: bool  # on the page: an authorization, captured in part; else a sale
    options: Mapping[str, tuple[str, ...]]  # gateway -> the method types it offered
    steps: list[Step]
    first: str  # "webhook" or "return": which one completed the checkout
    order_id: str
    landed_on: str  # where the customer's browser ended
    webhooks: Mapping[str, int]  # the web app's dispositions of the provider's events
    payment: Payment  # the provider's payment, in the end
    captured_at_provider: int
    refunded_at_provider: int
    gift_card: Payment
    gift_card_at_provider: int  # what the dummy holds for it (authorized, not captured)


def available(gateway: str) -> bool:
    try:
        plugins.gateway_class(gateway)
        plugins.sandbox_class(gateway)
    except PluginError:
        return False
    return True


def checkout_tour(
    gateway_name: str,
    database_url: str,
    loopback: httpx.Client,
    currency: str,
    *,
    return_first: bool = False,
) -> Tour:
    """Run the checkout through ``gateway_name``'s sandbox and paycore's web app, on the
    ledger at ``database_url``, in ``currency`` unless the provider takes only its own.
    ``return_first``: the customer's return reaches the web app before the webhook."""
    how = CHECKOUT_GATEWAYS[gateway_name]
    currency = how.currency or currency
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    gift_sandbox = DummySandbox(webhook_url=f"{app_url}/webhooks/dummy")
    held = FaultPlan(webhook_delay=HELD_BACK) if return_first else None
    sandbox: Sandbox = plugins.sandbox_class(gateway_name)(
        webhook_url=f"{app_url}/webhooks/{gateway_name}", faults=held
    )
    with (
        SandboxServer(gift_sandbox.app()) as gift_server,
        SandboxServer(sandbox.app()) as provider_server,
    ):
        configs = {
            "dummy": gift_sandbox.gateway_config(gift_server.url),
            gateway_name: sandbox.gateway_config(provider_server.url),
        }
        gateways: dict[str, Gateway] = {
            "dummy": DummyGateway.from_config(configs["dummy"]),
            gateway_name: plugins.gateway_class(gateway_name).from_config(configs[gateway_name]),
        }
        settings = _settings(database_url, app_url, gateway_name, configs)
        with (
            _web_app(settings, gateways, port),
            _services(database_url, gateways, loopback) as (services),
        ):
            shop = CheckoutService(services, return_base_url=app_url)
            run = _Run(shop, services, sandbox, gift_sandbox, loopback, gateway_name, currency)
            run.go(return_first=return_first, authorizes=how.authorizes)
            sandbox.wait_for_webhooks()
            gift_sandbox.wait_for_webhooks()
            sandbox.close()
            gift_sandbox.close()
            payment = services.get_payment(run.provider_payment)
            gift = services.get_payment(run.gift_payment)
            webhooks = _dispositions(services.store, gateway_name)
    captured, refunded = how.totals(sandbox.snapshot(), payment.gateway_reference or "", currency)
    (held_by_dummy,) = [
        p["amount_capturable"]
        for p in gift_sandbox.snapshot()["payments"]
        if p["id"] == gift.gateway_reference
    ]
    return Tour(
        gateway=gateway_name,
        display_name=gateways[gateway_name].display_name,
        currency=currency,
        authorized=how.authorizes,
        options=run.options,
        steps=run.steps,
        first=run.first,
        order_id=run.order_id,
        landed_on=run.landed_on,
        webhooks=webhooks,
        payment=payment,
        captured_at_provider=captured,
        refunded_at_provider=refunded,
        gift_card=gift,
        gift_card_at_provider=held_by_dummy,
    )


class _Run:
    """The customer's and the merchant's steps of one tour."""

    def __init__(
        self,
        shop: CheckoutService,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        gift_sandbox: DummySandbox,
        browser: httpx.Client,
        gateway: str,
        currency: str,
    ) -> None:
        self.shop, self.services, self.browser = shop, services, browser
        self.sandbox, self.gift_sandbox = sandbox, gift_sandbox
        self.gateway, self.currency = gateway, currency
        self.steps: list[Step] = []
        self.options: dict[str, tuple[str, ...]] = {}
        self.first = self.order_id = self.landed_on = ""
        self.gift_payment = self.provider_payment = ""

    def step(self, label: str, call: Callable[[], PaymentTransaction]) -> PaymentTransaction:
        started = time.perf_counter()
        transaction = call()
        return self.record(label, transaction, (time.perf_counter() - started) * 1000)

    def record(
        self, label: str, transaction: PaymentTransaction, elapsed_ms: float
    ) -> PaymentTransaction:
        payment = self.services.get_payment(transaction.payment_id)
        self.steps.append(Step(label, transaction, payment, elapsed_ms))
        return transaction

    def go(self, *, return_first: bool, authorizes: bool) -> None:
        from paycore.checkout import Cart, CartItem
        from paycore.transactions.model import PaymentMethod

        total = Money(TOTAL, self.currency)
        cart = Cart(
            currency=self.currency,
            items=[CartItem(sku="tea-1", name="Green tea", quantity=1, unit_price=total)],
        )
        options = self.shop.payment_options(cart, owner="customer-42")
        for option in options.methods:
            self.options[option.gateway] = (*self.options.get(option.gateway, ()), option.type)
        checkout = self.shop.create(cart, owner="customer-42")
        gift = self.shop.add_payment(
            checkout.id,
            Money(GIFT_PART, self.currency),
            gateway="dummy",
            payment_method=PaymentMethod(type="gift_card", token=GIFT_CARD),
        )
        card = self.shop.add_payment(
            checkout.id, Money(TOTAL - GIFT_PART, self.currency), gateway=self.gateway
        )
        self.gift_payment, self.provider_payment = gift.id, card.id

        started = time.perf_counter()
        submission = self.shop.submit(checkout.id)
        elapsed = (time.perf_counter() - started) * 1000
        (authorized,) = self.services.list_transactions(gift.id)
        (opened,) = self.services.list_transactions(card.id)
        self.record("submit: gift card", authorized, elapsed)
        self.record("submit: hosted page", opened, elapsed)
        page = submission.next_actions[card.id].url

        answer = submit_form(self.browser, page, "pay", {"card_number": TEST_CARD})
        if answer.status_code != 303:
            raise RuntimeError(f"the checkout page answered {answer.status_code}, not a redirect")
        back = answer.headers["location"]
        if return_first:
            label = "paid; the return first"
        else:
            label = "paid; the webhook first"
            self.sandbox.wait_for_webhooks()
        before = self.shop.get(checkout.id).status
        self.first = "webhook" if before is CheckoutStatus.COMPLETED else "return"
        started = time.perf_counter()
        landing = self.browser.get(back)  # the customer's browser follows the redirect
        elapsed = (time.perf_counter() - started) * 1000
        if landing.status_code != 303:
            raise RuntimeError(f"the web app's return answered {landing.status_code}")
        self.landed_on = landing.headers["location"]
        self.record(label, self.services.get_transaction(opened.id), elapsed)
        completed = self.shop.get(checkout.id)
        if completed.status is not CheckoutStatus.COMPLETED or completed.order_id is None:
            raise RuntimeError(f"checkout {checkout.id} is {completed.status}, not completed")
        self.order_id = completed.order_id
        (landed_order,) = parse_qs(urlsplit(self.landed_on).query).get("order", [""])
        if landed_order != self.order_id:
            raise RuntimeError("the customer landed on another order's page")

        if authorizes:
            self.step(
                "capture (partial)",
                lambda: self.services.capture(card.id, Money(1000, self.currency)),
            )
        self.step(
            "refund (partial)", lambda: self.services.refund(card.id, Money(500, self.currency))
        )


def _settings(
    database_url: str, app_url: str, gateway: str, configs: Mapping[str, Mapping[str, Any]]
) -> Settings:
    return Settings(
        database_url=database_url,
        webhook_base_url=app_url,
        gateways={
            name: GatewaySettings(name=name, plugin=name, config=config)
            for name, config in configs.items()
        },
        web=WebSettings(success_url=SUCCESS_URL, failure_url=FAILURE_URL),
    )


@contextlib.contextmanager
def _web_app(settings: Settings, gateways: Mapping[str, Gateway], port: int) -> Iterator[None]:
    """paycore's web app on ``port``, mounted in a host app that owns its services (as a
    merchant mounting it would): gateway clients that never use a proxy for loopback."""
    clients = {
        name: httpx.AsyncClient(trust_env=False, transport=AsyncShardedTransport())
        for name in gateways
    }
    services = AsyncPaymentTransactionServices(
        Store.connect(settings.database_url),
        {
            name: AsyncGatewayDriver(gateway, client=clients[name], hooks=None)
            for name, gateway in gateways.items()
        },
        hooks=None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await services.aclose()
            for client in clients.values():
                await client.aclose()

    host = Starlette(
        routes=[Mount("", app=create_app(settings, services=services))], lifespan=lifespan
    )
    with SandboxServer(host, port=port):
        yield


@contextlib.contextmanager
def _services(
    database_url: str, gateways: Mapping[str, Gateway], loopback: httpx.Client
) -> Iterator[PaymentTransactionServices]:
    drivers = {
        name: GatewayDriver(gateway, client=loopback, hooks=None)
        for name, gateway in gateways.items()
    }
    with PaymentTransactionServices(Store.connect(database_url), drivers, hooks=None) as services:
        yield services


def _dispositions(store: Store, gateway: str) -> dict[str, int]:
    """What the web app did with the provider's events, from the ledger's event table."""
    import sqlalchemy as sa

    from paycore.transactions.schema import webhook_events

    with store.reading() as session:
        rows = session.connection.execute(
            sa.select(webhook_events.c.disposition, sa.func.count())
            .where(webhook_events.c.gateway == gateway)
            .group_by(webhook_events.c.disposition)
        )
        return {str(row[0]): int(row[1]) for row in rows}


def webhook_dispositions(
    services: PaymentTransactionServices,
    name: str,
    driver: GatewayDriver,
    deliveries: tuple[ReceivedWebhook, ...],
) -> dict[str, int]:
    """Verify each delivery with the gateway and apply its events; count what they did."""
    dispositions: dict[str, int] = {}
    for delivery in deliveries:
        handling = driver.run(
            driver.gateway.handle_webhook(delivery.as_request()), operation="handle_webhook"
        )
        for event in handling.events:
            result = services.apply_event(name, event)
            dispositions[result.disposition] = dispositions.get(result.disposition, 0) + 1
    return dispositions


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
