"""A webhook's answer does not wait past the completion budget for voiding *another*
payment at a slow gateway: the event is committed, the reply goes, and the checkout's
completion (failing it, voiding the other card) goes on after it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from paycore.checkout import Cart, CartItem, CheckoutService, CheckoutStatus
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.money import Money
from paycore.sandbox.faults import FaultPlan
from paycore.transactions.model import PaymentMethod, PaymentStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.web import webhooks
from tests.web.support import WebApp, deliver, signed, wait_until

SLOW = 1.5
BUDGET = 0.3


def _split_checkout(services: PaymentTransactionServices, app: WebApp) -> tuple[Any, str, str, str]:
    shop = CheckoutService(services, return_base_url=app.url)
    cart = Cart(
        currency="USD",
        items=[CartItem(sku="tea", name="Tea", quantity=2, unit_price=Money(450, "USD"))],
    )
    checkout = shop.create(cart, owner="customer-42")
    a = shop.add_payment(
        checkout.id,
        Money(450, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_visa"),
    )
    b = shop.add_payment(
        checkout.id,
        Money(450, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_3ds"),
    )
    submission = shop.submit(checkout.id)
    assert submission.checkout.status is CheckoutStatus.SUBMITTED
    return shop, checkout.id, a.id, submission.next_actions[b.id].url


def test_a_stored_event_is_acknowledged_without_waiting_for_another_payment_s_void(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    web_log: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "COMPLETION_BUDGET", BUDGET)
    app = web_app(deliver=False)
    shop, checkout_id, a_id, page = _split_checkout(services, app)
    assert services.get_payment(a_id).status is PaymentStatus.AUTHORIZED
    assert http.post(page, data={"result": "decline"}).status_code == 303
    body = encode_json(dict(paycore_dummy_sandbox.events[-1]))
    # A's provider is slow to answer (the default read timeout is 30 s, total 60 s).
    paycore_dummy_sandbox.set_faults(FaultPlan(latency=SLOW))

    began = time.perf_counter()
    answer = deliver(http, app, body, signed(paycore_dummy_sandbox, body))
    seconds = time.perf_counter() - began

    assert answer.status_code == 200
    assert seconds < BUDGET + 0.5, f"the delivery was answered after {seconds:.2f} s"
    assert web_log()[-1]["late"] is True
    assert shop.get(checkout_id).status is CheckoutStatus.FAILED  # B's event was applied
    # The completion went on after the reply: A is released.
    wait_until(lambda: services.get_payment(a_id).status is PaymentStatus.VOIDED, timeout=10)
