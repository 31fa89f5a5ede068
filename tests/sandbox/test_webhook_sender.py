"""WebhookSender: signed deliveries from a background thread, retried, faulted on demand."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from paycore.gateways.webhooks import sign, verify_signature
from paycore.sandbox import WebhookReceiver
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.webhook_sender import WebhookSender, exponential_schedule

SECRET = "whsec_sender_test"


def body(event_id: str) -> bytes:
    return json.dumps({"id": event_id}).encode()


def event_ids(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(delivery.body)["id"] for delivery in receiver.received]


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


@pytest.fixture
def make_sender(receiver: WebhookReceiver) -> Iterator:
    senders: list[WebhookSender] = []

    def make(**options) -> WebhookSender:
        options.setdefault("sign", lambda raw: {"Test-Signature": sign(raw, SECRET)})
        sender = WebhookSender(receiver.url, **options)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        sender.close()


def test_an_event_is_posted_signed_on_its_raw_bytes(make_sender, receiver):
    sender = make_sender()

    sender.send("evt_1", body("evt_1"))

    (delivery,) = receiver.wait_for(1)
    assert delivery.body == body("evt_1")
    assert delivery.headers["content-type"] == "application/json"
    verify_signature(delivery.headers["test-signature"], delivery.body, SECRET, gateway="test")
    assert sender.wait_idle(5)
    (attempt,) = sender.attempts
    assert (attempt.event_id, attempt.attempt, attempt.status_code) == ("evt_1", 1, 200)
    assert attempt.delivered and not attempt.duplicate


def test_a_failed_delivery_is_retried_on_the_schedule_and_signed_afresh(make_sender, receiver):
    receiver.fail_first = 2
    counter = itertools.count(1)
    sender = make_sender(
        schedule=(0, 1, 2), time_scale=0.05, sign=lambda raw: {"Attempt": str(next(counter))}
    )

    sender.send("evt_1", body("evt_1"))

    assert sender.wait_idle(5)
    assert [(a.attempt, a.status_code, a.delivered) for a in sender.attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert [d.headers["attempt"] for d in receiver.received] == ["1", "2", "3"]
    first, second, third = (a.at for a in sender.attempts)
    assert second - first >= 0.045
    assert third - first >= 0.095


def test_a_get_callback_carries_the_event_in_its_query_string(make_sender, receiver):
    sender = make_sender(method="GET", sign=lambda raw: {})

    sender.send("pay:1", b"command=pay&txn_id=1&purpose=a%20b")

    (delivery,) = receiver.wait_for(1)
    assert (delivery.method, delivery.body) == ("GET", b"")
    assert delivery.query == {"command": "pay", "txn_id": "1", "purpose": "a b"}
    assert delivery.as_request().query == delivery.query
    assert sender.wait_idle(5) and sender.attempts[0].delivered


def test_only_post_and_get_send_webhooks(receiver):
    with pytest.raises(ValueError, match="POST or GET"):
        WebhookSender(receiver.url, sign=lambda raw: {}, method="PUT")


def test_any_2xx_delivers_unless_the_provider_wants_exactly_200(make_sender, receiver):
    receiver.fail_first, receiver.failure_status = 2, 202
    any_2xx = make_sender(schedule=(0, 1), time_scale=0.01)
    only_200 = make_sender(schedule=(0, 1), time_scale=0.01, accepted=frozenset({200}))

    any_2xx.send("evt_1", body("evt_1"))
    assert any_2xx.wait_idle(5)
    only_200.send("evt_2", body("evt_2"))
    assert only_200.wait_idle(5)

    assert [(a.status_code, a.delivered) for a in any_2xx.attempts] == [(202, True)]
    assert [(a.status_code, a.delivered) for a in only_200.attempts] == [
        (202, False),
        (200, True),
    ]


def test_an_attempt_reads_as_json_with_its_time_in_rfc_3339(make_sender, receiver):
    sender = make_sender()

    sender.send("evt_1", body("evt_1"))
    assert sender.wait_idle(5)

    (attempt,) = sender.attempts
    written = json.loads(json.dumps(attempt.as_dict()))
    sent = datetime.fromisoformat(written["at"])
    assert written["at"].endswith("Z") and sent.tzinfo is not None
    assert abs(sent.timestamp() - attempt.at) < 0.001
    assert (written["event_id"], written["status_code"]) == ("evt_1", 200)


def test_the_sender_gives_up_when_the_schedule_is_spent(make_sender, receiver):
    receiver.fail_first = 10
    sender = make_sender(schedule=(0, 1), time_scale=0.01)

    sender.send("evt_1", body("evt_1"))

    assert sender.wait_idle(5)
    assert [a.delivered for a in sender.attempts] == [False, False]
    assert len(receiver.received) == 2


def test_an_unreachable_endpoint_is_recorded_as_an_error_and_retried(unused_url):
    sender = WebhookSender(unused_url, sign=lambda raw: {}, schedule=(0, 1), time_scale=0.01)
    try:
        sender.send("evt_1", body("evt_1"))
        assert sender.wait_idle(5)
    finally:
        sender.close()

    assert [a.status_code for a in sender.attempts] == [None, None]
    assert all(a.error and a.error.startswith("ConnectError") for a in sender.attempts)


def test_the_duplicate_fault_delivers_an_event_twice(make_sender, receiver):
    sender = make_sender(faults=FaultPlan(webhook_next=("duplicate",)))

    sender.send("evt_1", body("evt_1"))
    sender.send("evt_2", body("evt_2"))

    receiver.wait_for(3)
    assert sender.wait_idle(5)
    assert event_ids(receiver) == ["evt_1", "evt_1", "evt_2"]
    assert [a.duplicate for a in sender.attempts] == [False, True, False]


def test_the_reorder_fault_holds_an_event_back_until_the_next_one_went_out(make_sender, receiver):
    sender = make_sender(faults=FaultPlan(webhook_next=("reorder",)), reorder_hold=5)

    sender.send("evt_1", body("evt_1"))
    sender.send("evt_2", body("evt_2"))

    receiver.wait_for(2, timeout=5)
    assert event_ids(receiver) == ["evt_2", "evt_1"]


def test_an_event_held_back_goes_anyway_when_no_other_event_follows(make_sender, receiver):
    sender = make_sender(faults=FaultPlan(webhook_next=("reorder",)), reorder_hold=0.05)

    sender.send("evt_1", body("evt_1"))

    assert sender.wait_idle(5)
    assert event_ids(receiver) == ["evt_1"]


def test_the_delay_fault_delivers_late(make_sender, receiver):
    sender = make_sender(faults=FaultPlan(webhook_delay=0.2))

    sent = time.monotonic()
    sender.send("evt_1", body("evt_1"))

    assert len(receiver.wait_for(1, timeout=5)) == 1
    assert time.monotonic() - sent >= 0.2


def test_a_proxy_in_the_environment_does_not_capture_deliveries(make_sender, receiver, monkeypatch):
    # A developer's HTTP_PROXY must not swallow deliveries to a loopback endpoint.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    sender = make_sender(schedule=(0,))

    sender.send("evt_1", body("evt_1"))

    assert sender.wait_idle(5)
    assert [attempt.status_code for attempt in sender.attempts] == [200]


def test_closing_abandons_pending_deliveries_and_a_later_send_starts_again(make_sender, receiver):
    sender = make_sender(faults=FaultPlan(webhook_delay=5))
    sender.send("evt_late", body("evt_late"))

    sender.close()
    assert sender.wait_idle(0.1)

    sender.set_faults(FaultPlan())
    sender.send("evt_2", body("evt_2"))
    receiver.wait_for(1)
    assert event_ids(receiver) == ["evt_2"]


def test_a_retry_schedule_needs_an_attempt():
    with pytest.raises(ValueError, match="at least one attempt"):
        WebhookSender("http://127.0.0.1:9/", sign=lambda raw: {}, schedule=())


@pytest.fixture
def unused_url(paycore_sandbox_server) -> str:
    """The URL of a server that has stopped: nothing listens there any more."""
    from starlette.applications import Starlette

    server = paycore_sandbox_server(Starlette())
    server.stop()
    return server.url + "/webhooks"


def test_an_exponential_schedule_spreads_its_attempts_over_the_span():
    schedule = exponential_schedule(18, 72 * 3600, first_gap=60)

    gaps = [later - earlier for earlier, later in itertools.pairwise(schedule)]
    assert (len(schedule), schedule[0], schedule[1], schedule[-1]) == (18, 0, 60, 259_200)
    ratios = [later / earlier for earlier, later in itertools.pairwise(gaps)]
    assert max(ratios) - min(ratios) < 0.02  # one growth factor throughout


@pytest.mark.parametrize(("attempts", "span", "first_gap"), [(1, 60, 1), (3, 60, 0), (3, 60, 31)])
def test_an_exponential_schedule_refuses_what_cannot_grow(attempts, span, first_gap):
    with pytest.raises(ValueError, match=r"attempts|gap"):
        exponential_schedule(attempts, span, first_gap=first_gap)


def test_closing_without_waiting_lets_the_attempt_in_flight_finish_alone(paycore_sandbox_server):
    import asyncio
    import threading

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    arrived = threading.Event()

    async def slow(request):
        arrived.set()
        await asyncio.sleep(0.3)
        return Response(status_code=204)

    url = paycore_sandbox_server(Starlette(routes=[Route("/", slow, methods=["POST"])])).url
    sender = WebhookSender(url + "/", sign=lambda raw: {})
    sender.send("evt_1", body("evt_1"))
    assert arrived.wait(5)

    started = time.monotonic()
    sender.close(wait=False)

    assert time.monotonic() - started < 0.2
    assert sender.wait_idle(5)
    (attempt,) = sender.attempts
    assert (attempt.status_code, attempt.delivered) == (204, True)
