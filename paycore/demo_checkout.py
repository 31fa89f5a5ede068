"""`paycore demo`, second part: a hosted checkout through WooshPay's sandbox.

The payment is authorized on the provider's own page: the services record the
authorization ``requires_action`` with the page as its next action; a customer (here an
HTTP client doing what a browser does) opens the page and pays with a test card; the
provider's signed webhook, verified by the gateway, settles the authorization in the
ledger. Then a partial capture (WooshPay captures once: the rest is released) and a
partial refund, each compared with the provider's own totals.

The plugin is found through its entry points like any other; without it installed,
this part is skipped with a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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

__all__ = ["CHECKOUT_GATEWAY", "Step", "Tour", "available", "checkout_tour", "webhook_dispositions"]

CHECKOUT_GATEWAY = "wooshpay"
# The sandbox's test card that pays without a challenge (sandbox only, never a real card).
TEST_CARD = "4242424242424242"
RETURN_URL = "https://shop.example/checkout/return"


@frozen
class Step:
    label: str
    transaction: PaymentTransaction
    payment: Payment
    elapsed_ms: float


@frozen
class Tour:
    """What the checkout part did: its steps, the webhooks, the provider's totals."""

    steps: list[Step]
    sent: int
    delivered: int
    dispositions: dict[str, int]
    provider: dict[str, Any]  # the payment intent, as the sandbox keeps it
    refunded_at_provider: int


def available() -> bool:
    try:
        plugins.gateway_class(CHECKOUT_GATEWAY)
        plugins.sandbox_class(CHECKOUT_GATEWAY)
    except PluginError:
        return False
    return True


def checkout_tour(database_url: str, loopback: httpx.Client, currency: str) -> Tour:
    """Run the hosted checkout against a fresh sandbox, on the ledger at ``database_url``."""
    receiver = WebhookReceiver()
    with SandboxServer(receiver.app()) as hooks_server:
        receiver.base_url = hooks_server.url
        sandbox: Sandbox = plugins.sandbox_class(CHECKOUT_GATEWAY)(webhook_url=receiver.url)
        with SandboxServer(sandbox.app()) as server:
            gateway = plugins.gateway_class(CHECKOUT_GATEWAY).from_config(
                sandbox.gateway_config(server.url)
            )
            driver = GatewayDriver(gateway, client=loopback, hooks=None)
            with PaymentTransactionServices(
                Store.connect(database_url), {CHECKOUT_GATEWAY: driver}, hooks=None
            ) as services:
                webhooks = _Webhooks(services, receiver)
                steps = _steps(services, sandbox, webhooks, loopback, currency)
                sandbox.wait_for_webhooks()
                webhooks.apply()
                sandbox.close()
            payment = steps[-1].payment
            state = sandbox.snapshot()
            (intent,) = [
                i for i in state["payment_intents"] if i["id"] == payment.gateway_reference
            ]
            refunded = sum(
                refund["amount"]
                for refund in state["refunds"]
                if refund["payment_intent"] == intent["id"] and refund["status"] == "succeeded"
            )
            return Tour(
                steps=steps,
                sent=len(sandbox.events),
                delivered=len(receiver.received),
                dispositions=webhooks.dispositions,
                provider=intent,
                refunded_at_provider=refunded,
            )


def _steps(
    services: PaymentTransactionServices,
    sandbox: Sandbox,
    webhooks: _Webhooks,
    browser: httpx.Client,
    currency: str,
) -> list[Step]:
    steps: list[Step] = []

    def step(label: str, call: Callable[[], PaymentTransaction]) -> PaymentTransaction:
        started = time.perf_counter()
        transaction = call()
        elapsed = (time.perf_counter() - started) * 1000
        payment = services.get_payment(transaction.payment_id)
        steps.append(Step(label, transaction, payment, elapsed))
        return transaction

    payment = services.create_payment(
        Money(4999, currency), gateway=CHECKOUT_GATEWAY, return_url=RETURN_URL
    )
    opened = step(
        "hosted page opened",
        lambda: services.authorize(payment.id, checkout="hosted_page"),
    )
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
    step("capture (partial)", lambda: services.capture(payment.id, Money(3000, currency)))
    step("refund (partial)", lambda: services.refund(payment.id, Money(1000, currency)))
    return steps


class _Webhooks:
    """The deliveries the merchant's endpoint received, each verified and applied once."""

    def __init__(self, services: PaymentTransactionServices, receiver: WebhookReceiver) -> None:
        self.services = services
        self.receiver = receiver
        self.dispositions: dict[str, int] = {}
        self._applied = 0

    def apply(self) -> None:
        deliveries = self.receiver.received[self._applied :]
        self._applied += len(deliveries)
        driver = self.services.drivers[CHECKOUT_GATEWAY]
        for name, count in webhook_dispositions(
            self.services, CHECKOUT_GATEWAY, driver, deliveries
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
