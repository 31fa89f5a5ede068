"""`paycore demo`, second part: a hosted checkout through each provider plugin's sandbox.

The payment is authorized (or, where the provider only sells, paid) on the provider's
own page: the services record the transaction ``requires_action`` with the page as its
next action; a customer (here an HTTP client doing what a browser does) opens the page
and pays with a test card; the provider's webhook (a signed callback on the Corefy
platform; on XPAY an unsigned one the gateway confirms by asking XPAY), verified by the
gateway, settles it in the ledger. Then a partial capture of an authorization (each
provider captures once: the rest is released) and a partial refund, each compared with
the provider's own totals. It runs for WooshPay, MilkyPay and XPAY.

The plugins are found through their entry points like any other; one not installed is
skipped with a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx
from attrs import frozen

from paycore import plugins
from paycore.errors import PluginError
from paycore.gateways.driver import GatewayDriver
from paycore.money import Money
from paycore.sandbox.base import Sandbox
from paycore.sandbox.browser import submit_form
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import ReceivedWebhook, WebhookReceiver
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

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
RETURN_URL = "https://shop.example/checkout/return"


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
    """What the checkout part did: its steps, the webhooks, the provider's totals."""

    gateway: str
    display_name: str
    currency: str
    authorized: bool  # on the page: an authorization, captured in part; else a sale
    steps: list[Step]
    sent: int
    delivered: int
    dispositions: dict[str, int]
    captured_at_provider: int
    refunded_at_provider: int


def available(gateway: str) -> bool:
    try:
        plugins.gateway_class(gateway)
        plugins.sandbox_class(gateway)
    except PluginError:
        return False
    return True


def checkout_tour(
    gateway_name: str, database_url: str, loopback: httpx.Client, currency: str
) -> Tour:
    """Run the hosted checkout against a fresh sandbox of ``gateway_name``, on the ledger
    at ``database_url``, in ``currency`` unless the provider takes only its own."""
    how = CHECKOUT_GATEWAYS[gateway_name]
    currency = how.currency or currency
    receiver = WebhookReceiver()
    with SandboxServer(receiver.app()) as hooks_server:
        receiver.base_url = hooks_server.url
        sandbox: Sandbox = plugins.sandbox_class(gateway_name)(webhook_url=receiver.url)
        with SandboxServer(sandbox.app()) as server:
            gateway = plugins.gateway_class(gateway_name).from_config(
                sandbox.gateway_config(server.url)
            )
            driver = GatewayDriver(gateway, client=loopback, hooks=None)
            with PaymentTransactionServices(
                Store.connect(database_url), {gateway_name: driver}, hooks=None
            ) as services:
                webhooks = _Webhooks(services, gateway_name, receiver)
                steps = _steps(
                    services, gateway_name, sandbox, webhooks, loopback, currency, how.authorizes
                )
                sandbox.wait_for_webhooks()
                webhooks.apply()
                sandbox.close()
            reference = steps[-1].payment.gateway_reference or ""
            captured, refunded = how.totals(sandbox.snapshot(), reference, currency)
            return Tour(
                gateway=gateway_name,
                display_name=gateway.display_name,
                currency=currency,
                authorized=how.authorizes,
                steps=steps,
                sent=len(sandbox.events),
                delivered=len(receiver.received),
                dispositions=webhooks.dispositions,
                captured_at_provider=captured,
                refunded_at_provider=refunded,
            )


def _steps(
    services: PaymentTransactionServices,
    gateway: str,
    sandbox: Sandbox,
    webhooks: _Webhooks,
    browser: httpx.Client,
    currency: str,
    authorizes: bool,
) -> list[Step]:
    steps: list[Step] = []

    def step(label: str, call: Callable[[], PaymentTransaction]) -> PaymentTransaction:
        started = time.perf_counter()
        transaction = call()
        elapsed = (time.perf_counter() - started) * 1000
        payment = services.get_payment(transaction.payment_id)
        steps.append(Step(label, transaction, payment, elapsed))
        return transaction

    payment = services.create_payment(Money(4999, currency), gateway=gateway, return_url=RETURN_URL)
    open_page = services.authorize if authorizes else services.sale
    opened = step("hosted page opened", lambda: open_page(payment.id, checkout="hosted_page"))
    assert opened.next_action is not None, "the checkout page has no address"
    page = opened.next_action.url

    def pay_on_the_page() -> PaymentTransaction:
        answer = submit_form(browser, page, "pay", {"card_number": TEST_CARD})
        if answer.status_code != 303 or not answer.headers["location"].startswith(RETURN_URL):
            raise RuntimeError(f"the checkout page answered {answer.status_code}, not a redirect")
        # The provider tells the merchant by webhook: apply what has arrived so far.
        sandbox.wait_for_webhooks()
        webhooks.apply()
        return services.get_transaction(opened.id)

    step("customer paid, webhook", pay_on_the_page)
    if authorizes:
        step("capture (partial)", lambda: services.capture(payment.id, Money(3000, currency)))
    step("refund (partial)", lambda: services.refund(payment.id, Money(1000, currency)))
    return steps


class _Webhooks:
    """The deliveries the merchant's endpoint received, each verified and applied once."""

    def __init__(
        self, services: PaymentTransactionServices, gateway: str, receiver: WebhookReceiver
    ) -> None:
        self.services = services
        self.gateway = gateway
        self.receiver = receiver
        self.dispositions: dict[str, int] = {}
        self._applied = 0

    def apply(self) -> None:
        deliveries = self.receiver.received[self._applied :]
        self._applied += len(deliveries)
        driver = self.services.drivers[self.gateway]
        for name, count in webhook_dispositions(
            self.services, self.gateway, driver, deliveries
        ).items():
            self.dispositions[name] = self.dispositions.get(name, 0) + count


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
