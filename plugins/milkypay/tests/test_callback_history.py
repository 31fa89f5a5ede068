"""MilkyPay's callbacks through paycore's web app: each one carries the invoice's whole
history (every refund so far), so what was stored before must cost a read, not a write.

The sandbox delivers to a recording endpoint; the test posts the recorded deliveries to
the web app served on loopback over the test's ledger, as the platform would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from paycore_milkypay.gateway import MilkyPayGateway
from paycore_milkypay.sandbox import MilkyPaySandbox

from paycore.config import GatewaySettings, Settings
from paycore.money import Money
from paycore.sandbox.webhook_receiver import ReceivedWebhook, WebhookReceiver
from paycore.testing.pytest_plugin import MakeServices, ServeSandbox
from paycore.transactions.model import (
    GatewayEvent,
    PaymentMethod,
    TransactionStatus,
    WebhookHandling,
)
from paycore.transactions.store import Store
from paycore.web import create_app

REFUNDS = 12
PAID_BY_THE_TEST_SERVICE = PaymentMethod(
    type="test_usd", fields={"test_details_success_rate": "100"}
)


@pytest.fixture
def writes() -> Iterator[list[str]]:
    """Every INSERT, UPDATE or DELETE any engine of this process executes meanwhile."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def test_a_callback_repeating_the_invoices_history_applies_only_what_is_new(
    paycore_ledger: Store,
    paycore_services: MakeServices,
    paycore_sandbox_server: ServeSandbox,
    paycore_webhook_receiver: WebhookReceiver,
    writes: list[str],
) -> None:
    sandbox = MilkyPaySandbox(
        seed=0, webhook_url=paycore_webhook_receiver.url, webhook_time_scale=0.01
    )
    config = sandbox.gateway_config(paycore_sandbox_server(sandbox).url)
    gateway = MilkyPayGateway.from_config(config)
    services = paycore_services({"milkypay": gateway})
    payment = services.create_payment(
        Money(10_000, "USD"), gateway="milkypay", payment_method=PAID_BY_THE_TEST_SERVICE
    )
    assert services.sale(payment.id).status is TransactionStatus.SUCCEEDED
    for number in range(REFUNDS):
        refund = services.refund(payment.id, Money(100, "USD"), idempotency_key=f"r{number}")
        assert refund.status is TransactionStatus.SUCCEEDED
    deliveries = wait_for_every_refund(paycore_webhook_receiver, gateway)

    url = paycore_ledger.engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(
            database_url=url,
            webhook_base_url="http://127.0.0.1",
            gateways={
                "milkypay": GatewaySettings(name="milkypay", plugin="milkypay", config=config)
            },
        )
    )
    webhook_url = paycore_sandbox_server(app).url + "/webhooks/milkypay"
    with httpx.Client(trust_env=False) as http:
        for delivery in deliveries:
            assert post(http, webhook_url, delivery).status_code == 200
        writes.clear()
        again = post(http, webhook_url, deliveries[-1])

    assert again.status_code == 200
    assert len(events_in(gateway, deliveries[-1])) > REFUNDS
    assert writes == [], "a callback holding only stored events wrote to the ledger"
    after = services.get_payment(payment.id)
    assert after.totals()["refunded"] == 100 * REFUNDS


def wait_for_every_refund(
    receiver: WebhookReceiver, gateway: MilkyPayGateway
) -> tuple[ReceivedWebhook, ...]:
    """The deliveries so far, once one carries the sale and every refund."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        received = receiver.wait_for(len(receiver.received) + 1, timeout=0.2)
        if received and len(events_in(gateway, received[-1])) > REFUNDS:
            return received
    raise AssertionError(f"none of {len(receiver.received)} callbacks carried every refund")


def events_in(gateway: MilkyPayGateway, delivery: ReceivedWebhook) -> tuple[GatewayEvent, ...]:
    """The events the plugin reads in ``delivery`` (it asks the platform nothing)."""
    exchange = gateway.handle_webhook(delivery.as_request())
    try:
        next(exchange)
    except StopIteration as done:
        handling: WebhookHandling = done.value
        return tuple(handling.events)
    raise AssertionError("reading a MilkyPay callback sent a request")


def post(http: httpx.Client, url: str, delivery: ReceivedWebhook) -> httpx.Response:
    headers = {k: v for k, v in delivery.headers.items() if k not in {"host", "content-length"}}
    return http.post(url, content=delivery.body, headers=headers)
