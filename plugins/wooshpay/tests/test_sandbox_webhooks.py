"""The WooshPay sandbox over real HTTP: webhook endpoints, signed deliveries to each,
event objects, and retries."""

from __future__ import annotations

import itertools
import json

import pytest
from paycore_wooshpay.sandbox import RETRY_SCHEDULE, SIGNATURE_HEADER

from paycore.errors import WebhookSignatureError
from paycore.gateways.webhooks import verify_signature
from paycore.sandbox import WebhookReceiver
from plugins.wooshpay.tests.sandbox_client import Merchant, error_of, events_received, serve

DEFAULT_SECRET = "whsec_sandbox_default"


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


@pytest.fixture
def other_receiver(paycore_sandbox_server) -> WebhookReceiver:
    receiver = WebhookReceiver()
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


def register(merchant: Merchant, url: str, events: list[str] | None = None) -> dict:
    return merchant.ok(
        merchant.post("/v1/webhook_endpoints", {"url": url, "enabled_events": events or ["*"]})
    )


def test_a_registered_endpoint_shows_its_secret_once(merchant, receiver):
    endpoint = register(merchant, receiver.url)

    assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
    assert (endpoint["status"], endpoint["enabled_events"]) == ("enabled", ["*"])
    shown = [
        merchant.ok(merchant.get(f"/v1/webhook_endpoints/{endpoint['id']}")),
        *merchant.ok(merchant.get("/v1/webhook_endpoints"))["data"],
    ]
    assert all("secret" not in e for e in shown)
    assert endpoint["secret"] not in json.dumps(merchant.state())


def test_each_endpoint_gets_its_own_signed_copy(merchant, receiver, other_receiver, clock):
    first = register(merchant, receiver.url)
    second = register(merchant, other_receiver.url)

    pi = merchant.paid(1000)

    mine = events_received(receiver, first["secret"], 2, clock)
    theirs = events_received(other_receiver, second["secret"], 2, clock)
    assert [e["type"] for e in mine] == ["payment_intent.created", "payment_intent.succeeded"]
    assert mine == theirs
    assert mine[1]["data"]["object"]["id"] == pi["id"]
    assert mine[1]["pending_webhooks"] == 2
    delivery = receiver.received[0]
    with pytest.raises(WebhookSignatureError):
        verify_signature(
            delivery.headers[SIGNATURE_HEADER.lower()],
            delivery.body,
            second["secret"],
            gateway="wooshpay",
            now=clock,
        )


def test_an_endpoint_gets_only_the_events_it_subscribed_to(merchant, receiver, clock):
    endpoint = register(merchant, receiver.url, ["payment_intent.succeeded"])

    merchant.authorized(1000)
    pi = merchant.paid(500)

    (event,) = events_received(receiver, endpoint["secret"], 1, clock)
    assert (event["type"], event["data"]["object"]["id"]) == ("payment_intent.succeeded", pi["id"])
    assert merchant.sandbox.wait_for_webhooks(5)
    assert len(receiver.received) == 1


def test_a_disabled_or_deleted_endpoint_gets_nothing(merchant, receiver, other_receiver, clock):
    disabled = register(merchant, receiver.url)
    deleted = register(merchant, other_receiver.url)
    off = merchant.ok(merchant.post(f"/v1/webhook_endpoints/{disabled['id']}", {"disabled": True}))
    gone = merchant.ok(merchant.delete(f"/v1/webhook_endpoints/{deleted['id']}"))

    merchant.paid(1000)
    assert merchant.sandbox.wait_for_webhooks(5)
    on = merchant.ok(merchant.post(f"/v1/webhook_endpoints/{disabled['id']}", {"disabled": False}))
    merchant.paid(1000)

    assert (off["status"], on["status"]) == ("disabled", "enabled")
    assert gone == {"id": deleted["id"], "object": "webhook_endpoint", "deleted": True}
    assert len(events_received(receiver, disabled["secret"], 2, clock)) == 2
    assert merchant.sandbox.wait_for_webhooks(5)
    assert len(receiver.received) == 2 and other_receiver.received == ()
    assert error_of(merchant.get(f"/v1/webhook_endpoints/{deleted['id']}")) == (
        404,
        "resource_missing",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x", "enabled_events": ["*"]},
        {"url": "https://shop.test/hooks"},
        {"url": "https://shop.test/hooks", "enabled_events": ["payment_intent.exploded"]},
    ],
)
def test_a_bad_endpoint_is_refused(merchant, body):
    assert merchant.post("/v1/webhook_endpoints", body).status_code == 400
    assert merchant.state()["webhook_endpoints"] == []


# -- the sandbox's own webhook_url -----------------------------------------------------


@pytest.fixture
def hooked(paycore_sandbox_server, http, receiver, clock) -> Merchant:
    return serve(
        paycore_sandbox_server,
        http,
        clock=clock,
        webhook_url=receiver.url,
        webhook_secret=[DEFAULT_SECRET, "whsec_old"],
        webhook_time_scale=0.001,
    )


def test_the_webhook_url_is_a_registered_endpoint_for_every_event(hooked, receiver, clock):
    (endpoint,) = hooked.ok(hooked.get("/v1/webhook_endpoints"))["data"]

    hooked.authorized(1000)

    assert (endpoint["url"], endpoint["enabled_events"]) == (receiver.url, ["*"])
    for secret in (DEFAULT_SECRET, "whsec_old"):  # a rotation: both sign
        events_received(receiver, secret, 2, clock)
    assert hooked.sandbox.gateway_config("http://x")["webhook_secret"] == DEFAULT_SECRET


def test_events_are_objects_with_seconds_around_resources_with_milliseconds(
    hooked, receiver, clock
):
    pi = hooked.authorized(1000)
    created, authorized = events_received(receiver, DEFAULT_SECRET, 2, clock)

    assert authorized["type"] == "payment_intent.amount_capturable_updated"
    assert authorized["object"] == "event" and authorized["api_version"] == "2023-10-16"
    assert authorized["created"] == int(clock.now)
    assert authorized["data"]["object"]["created"] == int(clock.now * 1000) == pi["created"]
    assert authorized["livemode"] is False and authorized["pending_webhooks"] == 1
    assert hooked.ok(hooked.get(f"/v1/events/{authorized['id']}")) == authorized
    listed = hooked.ok(hooked.get("/v1/events", {"type": "payment_intent.created"}))
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert error_of(hooked.get("/v1/events/evt_missing")) == (404, "resource_missing")


def test_every_change_emits_its_event(hooked):
    pi = hooked.authorized(1000)
    hooked.ok(hooked.post(f"/v1/payment_intents/{pi['id']}/capture"))
    hooked.ok(hooked.refund(pi["id"], "100"))
    hooked.intent(payment_method="pm_card_declined")
    three_ds = hooked.ok(hooked.intent(payment_method="pm_card_3ds"))
    hooked.ok(hooked.post(f"/v1/payment_intents/{three_ds['id']}/cancel"))
    hooked.session()

    assert [e["type"] for e in hooked.sandbox.events] == [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "charge.refund.updated",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "payment_intent.created",  # no checkout.session.* unless asked for
    ]


def test_a_failing_endpoint_is_retried_until_it_answers(hooked, receiver, clock):
    receiver.fail_first = 4  # the first two attempts of both events

    hooked.paid(1000)

    assert hooked.sandbox.wait_for_webhooks(5)
    attempts = hooked.sandbox.webhook_attempts
    for event in {attempt.event_id for attempt in attempts}:
        assert [(a.attempt, a.delivered) for a in attempts if a.event_id == event] == [
            (1, False),
            (2, False),
            (3, True),
        ]
    delivered = [d for d in receiver.received if d.answered == 200]
    assert len(delivered) == 2


def test_the_retry_schedule_is_eighteen_attempts_over_three_days():
    gaps = [b - a for a, b in itertools.pairwise(RETRY_SCHEDULE)]

    assert (len(RETRY_SCHEDULE), RETRY_SCHEDULE[0], RETRY_SCHEDULE[-1]) == (18, 0, 72 * 3600)
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))
