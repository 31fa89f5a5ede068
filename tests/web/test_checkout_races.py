"""The customer's return and the provider's webhooks, in every order, through the web
app: the payment ends right and the checkout finishes once ("checkout finished" is
delivered once, the order id set once).

- the webhook first, the return later; the return first (the webhook held back), the
  webhook later; both at once (`test_checkout_completion`);
- the same delivery five times at once;
- out of order: the success, then a late ``processing`` (an older state) for the same
  payment.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from paycore.checkout import Checkout, CheckoutStatus
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.hookspecs import hookimpl
from paycore.sandbox.faults import FaultPlan
from paycore.transactions.model import PaymentStatus
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import (
    Started,
    WebApp,
    deliver,
    on_the_page,
    registered,
    signed,
    start_checkout,
    wait_until,
)


class _Finished:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    @hookimpl
    def paycore_checkout_finished(self, checkout: Checkout) -> None:
        self.seen.append((checkout.id, str(checkout.status), checkout.order_id))


@pytest.fixture
def finished() -> Iterator[list[tuple[str, str, str | None]]]:
    """Each "checkout finished" the web app delivers (it uses the installed hooks)."""
    recorder = _Finished()
    with registered(recorder):
        yield recorder.seen


def _order(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    (order,) = parse_qs(urlsplit(answer.headers["location"]).query)["order"]
    return order


def _payment_of(services: PaymentTransactionServices, started: Started) -> str:
    (payment_id,) = started.shop.get(started.checkout_id).payment_ids
    return payment_id


def test_the_webhook_first_then_the_return(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    finished: list[Any],
) -> None:
    app = web_app()
    started = start_checkout(services, app)
    back = on_the_page(http, started, "approve")
    assert paycore_dummy_sandbox.wait_for_webhooks()
    completed = wait_until(lambda: finished)

    assert _order(http.get(back)) == started.shop.get(started.checkout_id).order_id
    assert _order(http.get(back)) == completed[0][2]  # a reload: the same order
    assert finished == [(started.checkout_id, "completed", completed[0][2])]


def test_the_return_first_then_the_held_back_webhook(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    finished: list[Any],
) -> None:
    paycore_dummy_sandbox.set_faults(FaultPlan(webhook_delay=0.5))
    app = web_app()
    started = start_checkout(services, app)
    back = on_the_page(http, started, "approve")

    order = _order(http.get(back))  # confirmed with the provider: no webhook yet
    returned_at = time.time()
    assert finished == [(started.checkout_id, "completed", order)]
    assert paycore_dummy_sandbox.wait_for_webhooks()

    success = paycore_dummy_sandbox.events[-1]["id"]
    delivered = [
        a for a in paycore_dummy_sandbox.webhook_attempts if a.delivered and a.event_id == success
    ]
    assert delivered and all(a.at >= returned_at for a in delivered)
    assert started.shop.get(started.checkout_id).order_id == order
    assert finished == [(started.checkout_id, "completed", order)]
    payment = services.get_payment(_payment_of(services, started))
    assert payment.status is PaymentStatus.AUTHORIZED


def test_the_same_delivery_five_times_at_once_finishes_the_checkout_once(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    finished: list[Any],
) -> None:
    app = web_app(deliver=False)
    started = start_checkout(services, app)
    on_the_page(http, started, "approve")
    body = encode_json(dict(paycore_dummy_sandbox.events[-1]))

    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(
                lambda _: deliver(http, app, body, signed(paycore_dummy_sandbox, body)), range(5)
            )
        )

    assert [a.status_code for a in answers] == [200] * 5
    checkout = started.shop.get(started.checkout_id)
    assert checkout.status is CheckoutStatus.COMPLETED
    assert finished == [(started.checkout_id, "completed", checkout.order_id)]
    transactions = services.list_transactions(_payment_of(services, started))
    assert [t.status for t in transactions] == ["succeeded"]


def test_a_late_processing_after_the_success_changes_nothing(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    finished: list[Any],
) -> None:
    app = web_app(deliver=False)
    started = start_checkout(services, app)
    on_the_page(http, started, "approve")
    success = dict(paycore_dummy_sandbox.events[-1])
    late = copy.deepcopy(success)
    late["id"], late["type"] = "evt_late_processing", "payment.processing"
    late["created"] -= 60
    late["data"]["operation"]["status"] = "processing"
    late["data"]["payment"]["status"] = "processing"

    for event in (success, late):
        body = encode_json(event)
        assert deliver(http, app, body, signed(paycore_dummy_sandbox, body)).status_code == 200

    payment = services.get_payment(_payment_of(services, started))
    assert payment.status is PaymentStatus.AUTHORIZED
    checkout = started.shop.get(started.checkout_id)
    assert checkout.status is CheckoutStatus.COMPLETED
    assert finished == [(started.checkout_id, "completed", checkout.order_id)]
