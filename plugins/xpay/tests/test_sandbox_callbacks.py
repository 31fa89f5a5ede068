"""The XPAY sandbox's callbacks over real HTTP: ``pay``, ``error`` and ``refund`` as GET
with the documented query, to the payment's CallBackURL, retried until HTTP 200 on
XPAY's schedule (compressed); and the two-step ``check``, accepted, rejected or left
unanswered by a small merchant app."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest
from paycore_xpay.sandbox_callbacks import RETRY_SCHEDULE
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from paycore.sandbox import WebhookReceiver
from plugins.xpay.tests.sandbox_client import (
    FAIL_URL,
    SUCCESS_URL,
    Partner,
    redirect_of,
    serve,
)

SCALE = 0.005  # 20 s of XPAY's are 0.1 s here


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


@pytest.fixture
def partner(paycore_sandbox_server, http, clock, receiver) -> Partner:
    return serve(
        paycore_sandbox_server,
        http,
        clock=clock,
        webhook_url=receiver.url,
        webhook_time_scale=SCALE,
    )


def served_receiver(paycore_sandbox_server, **options: Any) -> WebhookReceiver:
    receiver = WebhookReceiver(**options)
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


def queries(receiver: WebhookReceiver, count: int) -> list[dict[str, str]]:
    """The query strings of the first ``count`` deliveries, each a bodiless GET."""
    deliveries = receiver.wait_for(count)
    assert len(deliveries) >= count, f"{len(deliveries)} of {count} callbacks arrived"
    for delivery in deliveries[:count]:
        assert (delivery.method, delivery.body) == ("GET", b"")
        assert delivery.as_request().query == delivery.query
    return [dict(delivery.query) for delivery in deliveries[:count]]


# -- pay, error, refund --------------------------------------------------------------------


def test_a_payment_calls_back_pay_with_the_documented_query(partner, receiver, clock):
    clock.now += 75
    paid = partner.paid(PaymentSum=12_345, Order="order_77")

    (query,) = queries(receiver, 1)

    assert query == {
        "command": "pay",
        "txn_id": paid["TxnID"],
        "txn_id_own": paid["TransactionID"],
        "terminal_id": "1",
        "operation_id": str(paid["OperationID"]),
        "sum": "12345",
        "txn_date": "20260101000115",
    }
    delivery = receiver.received[0]
    assert not any(name.startswith("x-") for name in delivery.headers)  # unsigned
    assert partner.sandbox.wait_for_webhooks(5)
    assert len(receiver.received) == 1


def test_a_declined_payment_calls_back_error_with_the_reason(partner, receiver):
    link = partner.link(Order="order_5")
    partner.pay(link["URI"], "4000000000009995")
    failed = partner.operation(link["OperationID"])

    (query,) = queries(receiver, 1)
    assert partner.sandbox.wait_for_webhooks(5)

    assert query["command"] == "error"
    assert query["reason"] == "insufficient_funds" and "order" not in query
    assert (query["txn_id"], query["operation_id"]) == (failed["TxnID"], str(link["OperationID"]))
    assert partner.sandbox.webhook_attempts[0].event_id == f"error:{link['OperationID']}"


def test_an_expired_page_calls_back_error_once(partner, receiver, clock):
    link = partner.link()
    clock.now += 15 * 60
    partner.browse(link["URI"])
    partner.operation(link["OperationID"])

    (query,) = queries(receiver, 1)
    assert partner.sandbox.wait_for_webhooks(5)

    assert (query["command"], query["reason"]) == ("error", "page_expired")
    assert query["txn_date"] == "20260101001500"
    assert len(receiver.received) == 1


def test_each_refund_calls_back_refund_with_its_own_ids(partner, receiver):
    paid = partner.paid(PaymentSum=10_000)
    first = partner.refund(paid["TxnID"], 4_000, transaction_id="refund_1").ok
    second = partner.refund(paid["TxnID"], transaction_id="refund_2").ok

    refunds = queries(receiver, 3)[1:]
    assert partner.sandbox.wait_for_webhooks(5)

    assert refunds == [
        {
            "command": "refund",
            "txn_id": refund["TxnID"],
            "txn_id_own": own,
            "terminal_id": "1",
            "operation_id": str(refund["OperationID"]),
            "sum": str(refund["Sum"]),
            "txn_date": "20260101000000",
            "parent_operation_id": str(paid["OperationID"]),
        }
        for refund, own in ((first, "refund_1"), (second, "refund_2"))
    ]
    assert [a.event_id for a in partner.sandbox.webhook_attempts][1:] == [
        f"refund:{first['TxnID']}",
        f"refund:{second['TxnID']}",
    ]


def test_callbacks_go_to_the_payments_callback_url_only(partner, receiver, paycore_sandbox_server):
    own = served_receiver(paycore_sandbox_server)
    mine = partner.paid(CallBackURL=own.url)
    partner.refund(mine["TxnID"], 100)
    partner.paid(CallBackURL=own.url)  # the same URL: one target, both delivered
    plain = partner.paid()

    delivered = queries(own, 3)
    assert partner.sandbox.wait_for_webhooks(5)

    assert [q["command"] for q in delivered] == ["pay", "refund", "pay"]
    assert [q["operation_id"] for q in queries(receiver, 1)] == [str(plain["OperationID"])]
    assert (len(own.received), len(receiver.received)) == (3, 1)


def test_without_any_url_a_callback_is_recorded_but_not_sent(paycore_sandbox_server, http):
    partner = serve(paycore_sandbox_server, http)
    paid = partner.paid()

    callbacks = partner.state()["callbacks"]

    assert [(c["command"], c["txn_id"]) for c in callbacks] == [("pay", paid["TxnID"])]
    assert partner.sandbox.webhook_attempts == ()


def test_the_state_lists_every_callback_sent(partner, receiver):
    paid = partner.paid()
    partner.refund(paid["TxnID"], 10)

    sent = queries(receiver, 2)

    assert partner.state()["callbacks"] == sent


# -- retries -------------------------------------------------------------------------------


def test_a_callback_is_retried_on_xpays_schedule_until_answered_200(paycore_sandbox_server, http):
    failing = served_receiver(paycore_sandbox_server, fail_first=2)
    partner = serve(paycore_sandbox_server, http, webhook_url=failing.url, webhook_time_scale=SCALE)
    partner.paid()

    deliveries = failing.wait_for(3)
    assert partner.sandbox.wait_for_webhooks(5)

    assert [d.answered for d in failing.received] == [500, 500, 200]
    assert deliveries[0].query == deliveries[1].query == deliveries[2].query
    attempts = partner.sandbox.webhook_attempts
    assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(20 * SCALE * 0.9 <= gap < 20 * SCALE * 5 for gap in gaps), gaps


def test_an_answer_other_than_200_is_retried_even_a_2xx(paycore_sandbox_server, http):
    accepting_late = served_receiver(paycore_sandbox_server, fail_first=1, failure_status=204)
    partner = serve(
        paycore_sandbox_server, http, webhook_url=accepting_late.url, webhook_time_scale=SCALE
    )
    partner.paid()

    accepting_late.wait_for(2)
    assert partner.sandbox.wait_for_webhooks(5)

    assert [d.answered for d in accepting_late.received] == [204, 200]


def test_the_retry_schedule_is_three_times_20_s_then_every_10_minutes_for_a_day():
    assert RETRY_SCHEDULE[:6] == (0, 20, 40, 60, 660, 1260)
    gaps = {later - earlier for earlier, later in itertools.pairwise(RETRY_SCHEDULE[3:])}
    assert gaps == {600}
    assert 24 * 3600 - 600 < RETRY_SCHEDULE[-1] <= 24 * 3600


# -- the two-step check --------------------------------------------------------------------


class Merchant:
    """A partner's callback endpoint answering ``check`` as told (``verdict``):
    ``accept``, ``reject``, ``slow`` (accepts after a second), ``garbage`` (200, not
    JSON), ``error`` (500) or ``other`` (200, another result)."""

    def __init__(self, verdict: str) -> None:
        self.verdict = verdict
        self.received: list[dict[str, str]] = []
        self.url = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/cb", self.answer, methods=["GET"])])

    async def answer(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.received.append(query)
        if query.get("command") != "check":
            return JSONResponse({"txn_id": query.get("txn_id"), "result": "10"})
        if self.verdict == "slow":
            await asyncio.sleep(1.0)
        if self.verdict == "garbage":
            return PlainTextResponse("OK")
        result = {"reject": "21", "other": "7"}.get(self.verdict, "10")
        status = 500 if self.verdict == "error" else 200
        return JSONResponse({"result": result, "message": "checked"}, status_code=status)

    def commands(self) -> list[str]:
        return [query["command"] for query in self.received]


def two_step(
    paycore_sandbox_server, http, clock, verdict: str, **options: Any
) -> tuple[Partner, Merchant]:
    merchant = Merchant(verdict)
    merchant.url = paycore_sandbox_server(merchant.app()).url + "/cb"
    options = {"check_timeout": 0.3, "webhook_time_scale": SCALE, **options}
    partner = serve(paycore_sandbox_server, http, clock=clock, two_step=True, **options)
    return partner, merchant


def wait_for_commands(merchant: Merchant, count: int) -> list[str]:
    deadline = time.monotonic() + 5
    while len(merchant.received) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return merchant.commands()


def test_an_accepted_check_comes_before_the_payment_and_its_pay_callback(
    paycore_sandbox_server, http, clock
):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "accept")
    link = partner.link(CallBackURL=merchant.url, PaymentSum=4_200, Order="order_9")

    answer = partner.pay(link["URI"])

    assert redirect_of(answer) == (
        SUCCESS_URL,
        {"state": "10", "xrayOperationID": str(link["OperationID"])},
    )
    assert wait_for_commands(merchant, 2) == ["check", "pay"]
    assert merchant.received[0] == {
        "command": "check",
        "txn_id_own": "txn_2",
        "terminal_id": "1",
        "operation_id": str(link["OperationID"]),
        "sum": "4200",
        "txn_date": "20260101000000",
        "order": "order_9",
    }
    assert partner.state()["checks"] == [{"query": merchant.received[0], "answer": "accepted"}]


def test_a_rejected_check_fails_the_payment_and_calls_back_error(
    paycore_sandbox_server, http, clock
):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "reject")
    link = partner.link(CallBackURL=merchant.url)

    answer = partner.pay(link["URI"])

    assert redirect_of(answer)[0] == FAIL_URL
    failed = partner.operation(link["OperationID"])
    assert (failed["OperationStatus"], failed["Reason"]) == ("21", "rejected_by_partner")
    assert wait_for_commands(merchant, 2) == ["check", "error"]
    assert merchant.received[1]["reason"] == "rejected_by_partner"


def test_a_check_left_unanswered_past_the_timeout_fails_the_payment(
    paycore_sandbox_server, http, clock
):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "slow")
    link = partner.link(CallBackURL=merchant.url)

    started = time.monotonic()
    answer = partner.pay(link["URI"])

    assert time.monotonic() - started < 0.9  # the sandbox did not wait for the answer
    assert redirect_of(answer)[1]["state"] == "21"
    assert partner.operation(link["OperationID"])["Reason"] == "check_failed"
    assert partner.state()["checks"][0]["answer"] == "unanswered"


@pytest.mark.parametrize("verdict", ["garbage", "error", "other"])
def test_a_check_answered_unreadably_fails_the_payment(
    paycore_sandbox_server, http, clock, verdict
):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, verdict)
    link = partner.link(CallBackURL=merchant.url)

    partner.pay(link["URI"])

    assert partner.operation(link["OperationID"])["Reason"] == "check_failed"
    assert wait_for_commands(merchant, 2) == ["check", "error"]


def test_a_declining_card_is_checked_first_then_declined(paycore_sandbox_server, http, clock):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "accept")
    link = partner.link(CallBackURL=merchant.url)

    partner.pay(link["URI"], "4000000000000002")

    assert partner.operation(link["OperationID"])["Reason"] == "declined"
    assert wait_for_commands(merchant, 2) == ["check", "error"]


def test_the_fail_button_asks_no_check(paycore_sandbox_server, http, clock):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "accept")
    link = partner.link(CallBackURL=merchant.url)

    partner.browse(link["URI"], {"action": "fail"})

    assert wait_for_commands(merchant, 1) == ["error"]


def test_one_step_payments_ask_no_check(paycore_sandbox_server, http, clock):
    merchant = Merchant("reject")
    merchant.url = paycore_sandbox_server(merchant.app()).url + "/cb"
    partner = serve(paycore_sandbox_server, http, clock=clock, webhook_time_scale=SCALE)

    partner.paid(CallBackURL=merchant.url)

    assert wait_for_commands(merchant, 1) == ["pay"]


def test_the_check_goes_to_the_webhook_url_without_a_callback_url(
    paycore_sandbox_server, http, clock
):
    merchant = Merchant("accept")
    merchant.url = paycore_sandbox_server(merchant.app()).url + "/cb"
    partner, _ = two_step(paycore_sandbox_server, http, clock, "accept", webhook_url=merchant.url)

    partner.paid()

    assert wait_for_commands(merchant, 2) == ["check", "pay"]


def test_without_anywhere_to_ask_the_check_fails(paycore_sandbox_server, http, clock):
    partner, _ = two_step(paycore_sandbox_server, http, clock, "accept")
    link = partner.link()

    partner.pay(link["URI"])

    assert partner.operation(link["OperationID"])["Reason"] == "check_failed"


def test_while_the_check_is_asked_the_page_takes_nothing_and_does_not_expire(
    paycore_sandbox_server, http, clock
):
    partner, merchant = two_step(paycore_sandbox_server, http, clock, "slow", check_timeout=3.0)
    link = partner.link(CallBackURL=merchant.url)
    paying = threading.Thread(target=partner.pay, args=(link["URI"],))
    paying.start()
    try:
        assert wait_for_commands(merchant, 1) == ["check"]
        clock.now += 3600

        shown = partner.browse(link["URI"])
        again = partner.pay(link["URI"])
        status = partner.operation(link["OperationID"])
    finally:
        paying.join(5)

    assert (shown.status_code, again.status_code) == (409, 409)
    assert status["OperationStatus"] == "1"
    assert partner.operation(link["OperationID"])["OperationStatus"] == "10"
