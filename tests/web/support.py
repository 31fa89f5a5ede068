"""What the web app's tests share beside their fixtures."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from attrs import frozen

from paycore.checkout import Cart, CartItem, CheckoutService, CheckoutStatus
from paycore.config import Settings
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.plugins import hook_manager
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store, payments, transactions, webhook_events

SUCCESS_URL = "https://shop.example/thanks?lang=en"
FAILURE_URL = "https://shop.example/cart?payment=failed"
PENDING_URL = "https://shop.example/waiting"


@frozen
class WebApp:
    """The app as served: ``url`` is its base (``http://127.0.0.1:PORT``)."""

    url: str
    settings: Settings

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/dummy"


def deliver(
    http: httpx.Client, app: WebApp, body: bytes, headers: Mapping[str, str]
) -> httpx.Response:
    """Post a webhook delivery to the app, as the provider does."""
    return http.post(
        app.webhook_url, content=body, headers={"content-type": "application/json", **headers}
    )


def signed(sandbox: DummySandbox, body: bytes) -> dict[str, str]:
    """The dummy provider's signature headers for ``body``."""
    return dict(sandbox.sign_webhook(body))


@contextmanager
def registered(plugin: object) -> Iterator[None]:
    """``plugin``'s hook implementations registered with the installed hooks (which the
    web app built from settings calls) for the block."""
    manager = hook_manager()
    manager.register(plugin)
    try:
        yield
    finally:
        manager.unregister(plugin)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ledger_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def ledger_rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of the payments, transactions and webhook_events tables."""
    with store.reading() as session:
        return {
            table.name: [
                dict(row._mapping)
                for row in session.connection.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (payments, transactions, webhook_events)
        }


def wait_until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``condition`` until it is truthy; its value, or an assertion error."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.005)
    return value


@frozen
class Started:
    """A submitted checkout whose card payment waits on the 3-D Secure page."""

    shop: CheckoutService
    checkout_id: str
    page: str


def start_checkout(services: PaymentTransactionServices, app: WebApp) -> Started:
    shop = CheckoutService(services, return_base_url=app.url)
    cart = Cart(
        currency="USD",
        items=[CartItem(sku="tea", name="Tea", quantity=2, unit_price=Money(450, "USD"))],
    )
    checkout = shop.create(cart, owner="customer-42")
    payment = shop.add_payment(
        checkout.id,
        Money(900, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_3ds"),
    )
    submission = shop.submit(checkout.id)
    assert submission.checkout.status is CheckoutStatus.SUBMITTED
    return Started(shop, checkout.id, submission.next_actions[payment.id].url)


def on_the_page(http: httpx.Client, started: Started, result: str) -> str:
    """The customer answers the 3-D Secure page; where the sandbox sends them back."""
    answer = http.post(started.page, data={"result": result})
    assert answer.status_code == 303
    return str(answer.headers["location"])
