"""The MilkyPay sandbox's callbacks over real HTTP: one per status change after creation,
signed ``base64(sha1(secret + body + secret))`` (checked here independently), sent to
the invoice's ``callback_url`` or the sandbox's ``webhook_url``, and retried."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from paycore_milkypay.sandbox import RETRY_SCHEDULE

from paycore.sandbox import FaultPlan, WebhookReceiver
from paycore.sandbox.browser import submit_form
from plugins.milkypay.tests.sandbox_client import (
    RETURN_URLS,
    Merchant,
    body_of,
    by_test_service,
    callback,
    callbacks,
    serve,
    signature_of,
)

SECRET = "sk_test_callbacks"


def statuses(bodies: list[dict[str, Any]]) -> list[str]:
    return [body["data"]["attributes"]["status"] for body in bodies]


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


def served_receiver(paycore_sandbox_server, **options: Any) -> WebhookReceiver:
    receiver = WebhookReceiver(**options)
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock, receiver) -> Merchant:
    return serve(
        paycore_sandbox_server,
        http,
        clock=clock,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_time_scale=0.001,
    )


def test_a_test_service_payment_calls_back_processing_then_processed(merchant, receiver):
    paid = merchant.paid(Decimal("100.55"))

    bodies = callbacks(receiver, 2, SECRET)

    assert statuses(bodies) == ["processing", "processed"]
    assert all(set(body) == {"data", "included"} for body in bodies)
    assert bodies[1]["data"] == paid
    assert b'"amount":100.55' in receiver.received[1].body
    assert b'"processed_amount":100.55' in receiver.received[1].body
    assert merchant.sandbox.wait_for_webhooks(5)
    assert len(receiver.received) == 2


def test_the_signature_is_sha1_of_the_secret_around_the_raw_body(merchant, receiver):
    merchant.paid()

    delivery = receiver.wait_for(1)[0]

    header = delivery.headers["x-signature"]
    assert header == signature_of(delivery.body, SECRET) and len(header) == 28
    assert header != signature_of(delivery.body, "sk_test_other")
    assert header != signature_of(delivery.body + b" ", SECRET)


def test_an_invoice_on_the_hosted_page_calls_back_only_once_paid(merchant, receiver, http):
    invoice = merchant.invoice(return_urls=RETURN_URLS)
    assert merchant.sandbox.wait_for_webhooks(5) and receiver.received == ()

    submit_form(
        http,
        invoice["attributes"]["flow_data"]["action"],
        "pay",
        {"card_number": "4242424242424242"},
    )

    bodies = callbacks(receiver, 2, SECRET)
    assert statuses(bodies) == ["processing", "processed"]
    assert bodies[1]["data"]["attributes"]["service"] == "payment_card_usd_hpp"


def test_a_delayed_charge_calls_back_the_hold_then_the_capture(merchant, receiver):
    held = merchant.held(Decimal("100.00"))
    merchant.process(held["id"], "capture", Decimal("60.00"))

    bodies = callbacks(receiver, 3, SECRET)

    assert statuses(bodies) == ["processing", "processing", "processed"]
    reserved = [b["data"]["attributes"]["reserved_amount"] for b in bodies]
    assert reserved == [0, Decimal("100.00"), 0]
    assert bodies[2]["data"]["attributes"]["processed_amount"] == Decimal("60.00")


def test_a_void_and_a_decline_are_called_back(merchant, receiver):
    held = merchant.held()
    merchant.process(held["id"], "void")
    merchant.invoice(**by_test_service(0))

    bodies = callbacks(receiver, 5, SECRET)

    assert statuses(bodies) == [
        "processing",
        "processing",
        "terminated",
        "processing",
        "process_failed",
    ]
    assert bodies[2]["data"]["attributes"]["resolution"] == "voided"
    assert bodies[4]["data"]["attributes"]["resolution"] == "declined"


def test_each_refund_is_called_back_with_the_refunds_included(merchant, receiver):
    paid = merchant.paid(Decimal("10.00"))
    first = body_of(merchant.refund(paid["id"], Decimal("4.00")), 201)["data"]
    second = body_of(merchant.refund(paid["id"], Decimal("6.00")), 201)["data"]

    bodies = callbacks(receiver, 4, SECRET)[2:]

    assert statuses(bodies) == ["partially_refunded", "refunded"]
    assert [r["id"] for r in bodies[0]["included"]] == [first["id"]]
    assert [r["id"] for r in bodies[1]["included"]] == [first["id"], second["id"]]
    assert bodies[1]["included"][1]["attributes"]["amount"] == Decimal("6.00")


def test_a_pending_refund_is_called_back_again_when_settled(paycore_sandbox_server, http, receiver):
    merchant = serve(
        paycore_sandbox_server,
        http,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_time_scale=0.001,
        refunds_pending=True,
    )
    paid = merchant.paid()
    refund = body_of(merchant.refund(paid["id"], Decimal("1.00")), 201)["data"]
    merchant.post(f"/_sandbox/refunds/{refund['id']}/settle", {"outcome": "processed"})

    bodies = callbacks(receiver, 4, SECRET)[2:]

    assert statuses(bodies) == ["refunding", "partially_refunded"]
    assert [b["included"][0]["attributes"]["status"] for b in bodies] == [
        "processing",
        "processed",
    ]


def test_an_invoice_with_a_callback_url_calls_back_there_only(
    merchant, receiver, paycore_sandbox_server
):
    other = served_receiver(paycore_sandbox_server)
    own = merchant.paid(callback_url=other.url)
    merchant.paid(callback_url=other.url)  # the same URL: one target, both delivered
    plain = merchant.paid()

    mine = callbacks(other, 4, SECRET)
    assert merchant.sandbox.wait_for_webhooks(5)

    assert mine[1]["data"]["id"] == own["id"]
    assert {b["data"]["id"] for b in callbacks(receiver, 2, SECRET)} == {plain["id"]}
    assert (len(other.received), len(receiver.received)) == (4, 2)


def test_a_callback_the_merchant_fails_is_retried(paycore_sandbox_server, http):
    failing = served_receiver(paycore_sandbox_server, fail_first=1)
    merchant = serve(
        paycore_sandbox_server,
        http,
        webhook_url=failing.url,
        webhook_secret=SECRET,
        webhook_time_scale=0.001,
    )
    merchant.paid()

    deliveries = failing.wait_for(3)
    assert merchant.sandbox.wait_for_webhooks(5)

    assert sorted(d.answered for d in failing.received) == [200, 200, 500]
    failed = deliveries[0]
    again = [d for d in failing.received[1:] if d.body == failed.body]
    assert [d.answered for d in again] == [200]
    assert callback(again[0], SECRET)["data"]["attributes"]["status"] == "processing"
    attempts = merchant.sandbox.webhook_attempts
    first = [a for a in attempts if a.event_id == attempts[0].event_id]
    assert [(a.attempt, a.status_code, a.delivered) for a in first] == [
        (1, 500, False),
        (2, 200, True),
    ]


def test_the_retry_schedule_is_one_minute_then_two_three_four_more(merchant):
    assert len(RETRY_SCHEDULE) == 100
    assert RETRY_SCHEDULE[:5] == (0, 60, 180, 360, 600)
    assert RETRY_SCHEDULE[-1] == 60 * 99 * 100 / 2


def test_with_several_secrets_the_first_signs(paycore_sandbox_server, http, receiver):
    merchant = serve(
        paycore_sandbox_server,
        http,
        webhook_url=receiver.url,
        webhook_secret=["sk_test_new", "sk_test_old"],
        webhook_time_scale=0.001,
    )
    merchant.paid()

    delivery = receiver.wait_for(1)[0]

    assert delivery.headers["x-signature"] == signature_of(delivery.body, "sk_test_new")
    assert merchant.sandbox.gateway_config(merchant.url)["secret_key"] == "sk_test_new"


def test_callbacks_are_named_by_invoice_status_time_and_order(merchant, receiver):
    paid = merchant.paid()
    assert merchant.sandbox.wait_for_webhooks(5)

    names = [a.event_id for a in merchant.sandbox.webhook_attempts]

    assert names == [
        f"{paid['id']}:processing:1767225600:1",
        f"{paid['id']}:processed:1767225600:2",
    ]


def test_a_duplicate_fault_delivers_a_callback_twice(merchant, receiver):
    merchant.sandbox.set_faults(FaultPlan(webhook_next=["duplicate"]))
    merchant.paid()

    bodies = callbacks(receiver, 3, SECRET)

    assert statuses(bodies).count("processing") == 2
