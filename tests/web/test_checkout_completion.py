"""A checkout completes from whichever comes first, the provider's webhook or the
customer's return, exactly once; a completion that fails is retried by the provider."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from paycore.checkout import CheckoutStatus
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.transactions.model import PaymentStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.web.support import WebApp, on_the_page, start_checkout, wait_until

LOG = Callable[[], list[dict[str, Any]]]


def order_in(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    (order,) = parse_qs(urlsplit(answer.headers["location"]).query)["order"]
    return order


def test_the_webhook_completes_the_checkout_before_the_customer_is_back(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app = web_app()
    started = start_checkout(services, app)

    back = on_the_page(http, started, "approve")  # the customer has not followed it yet
    assert paycore_dummy_sandbox.wait_for_webhooks()

    checkout = started.shop.get(started.checkout_id)
    assert checkout.status is CheckoutStatus.COMPLETED and checkout.order_id
    assert order_in(http.get(back)) == checkout.order_id
    assert [line["reason"] for line in web_log()] == ["applied", "completed"]


def test_the_customer_and_the_webhook_at_once_complete_the_checkout_once(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
) -> None:
    app = web_app()
    started = start_checkout(services, app)

    back = on_the_page(http, started, "approve")  # the webhook is on its way
    with ThreadPoolExecutor(4) as pool:
        orders = list(pool.map(lambda _: order_in(http.get(back)), range(4)))
    assert paycore_dummy_sandbox.wait_for_webhooks()

    checkout = started.shop.get(started.checkout_id)
    assert checkout.status is CheckoutStatus.COMPLETED
    assert orders == [checkout.order_id] * 4
    (payment_id,) = checkout.payment_ids
    payment = services.get_payment(payment_id)
    assert (payment.status, payment.owner) == (PaymentStatus.AUTHORIZED, checkout.order_id)
    assert [attempt.status_code for attempt in paycore_dummy_sandbox.webhook_attempts] == [200]


def test_a_checkout_that_cannot_complete_is_a_5xx_and_the_provider_s_retry_completes_it(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app = web_app()
    started = start_checkout(services, app)
    # The checkout's records are out of reach for a moment; the ledger's are not.
    with paycore_ledger.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE checkout_payments RENAME TO checkout_payments_x")

    on_the_page(http, started, "approve")
    refused = wait_until(web_log)[0]
    with paycore_ledger.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE checkout_payments_x RENAME TO checkout_payments")
    assert paycore_dummy_sandbox.wait_for_webhooks()

    assert (refused["status"], refused["reason"], refused["events"], refused["traceback"]) == (
        500,
        "failed",
        {"applied": 1},  # the event itself was stored: the retry is a duplicate
        True,
    )
    assert [a.status_code for a in paycore_dummy_sandbox.webhook_attempts] == [500, 200]
    assert [line["reason"] for line in web_log()] == ["failed", "duplicate"]
    assert started.shop.get(started.checkout_id).status is CheckoutStatus.COMPLETED
