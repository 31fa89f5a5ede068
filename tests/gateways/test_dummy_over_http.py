"""DummyGateway end to end: the real driver, over HTTP, against the dummy sandbox."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paycore.errors import GatewayAuthError, GatewayUnavailable, OutcomeUnknown
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import (
    DeclineReason,
    Outcome,
    PaymentMethod,
    TransactionType,
)

FAST_RETRIES = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.05)


def gateway_for(sandbox: DummySandbox, url: str, **config: Any) -> DummyGateway:
    gateway = DummyGateway.from_config({**sandbox.gateway_config(url), **config})
    assert isinstance(gateway, DummyGateway)
    return gateway


def driver_for(gateway: DummyGateway, http: httpx.Client) -> GatewayDriver:
    return GatewayDriver(gateway, client=http, hooks=None, retry=FAST_RETRIES)


@pytest.fixture
def sandbox(paycore_dummy_sandbox: DummySandbox) -> DummySandbox:
    return paycore_dummy_sandbox


@pytest.fixture
def gateway(paycore_dummy_gateway: DummyGateway) -> DummyGateway:
    return paycore_dummy_gateway


@pytest.fixture
def driver(gateway: DummyGateway, http: httpx.Client) -> GatewayDriver:
    return driver_for(gateway, http)


def payments(sandbox: DummySandbox) -> list[dict[str, Any]]:
    return list(sandbox.snapshot()["payments"])


def test_a_payments_life_authorize_capture_twice_refund_and_void(
    driver, gateway, sandbox, payment_request
):
    authorized = driver.run(gateway.authorize(payment_request()), operation="authorize")
    assert authorized.outcome is Outcome.APPROVED
    reference = authorized.gateway_reference

    def then(kind: str, transaction_id: str, amount: int, **changes: Any):
        follow_up = payment_request(
            kind,
            transaction_id,
            gateway_reference=reference,
            amount=Money(amount, "USD"),
            **changes,
        )
        return driver.run(getattr(gateway, kind)(follow_up), operation=kind)

    assert then("capture", "txn_2", 300).amount == Money(300, "USD")
    assert then("capture", "txn_3", 400).outcome is Outcome.APPROVED
    assert then("refund", "txn_4", 200).amount == Money(200, "USD")
    voided = then("void", "txn_5", 300)
    assert (voided.outcome, voided.amount) == (Outcome.APPROVED, Money(300, "USD"))
    over = then("refund", "txn_6", 600)
    assert (over.outcome, over.decline_reason) == (Outcome.DECLINED, DeclineReason.AMOUNT_INVALID)

    (payment,) = payments(sandbox)
    assert (payment["amount_captured"], payment["amount_refunded"]) == (700, 200)
    assert payment["status"] == "partially_refunded"


def test_a_declined_card_is_a_declined_result(driver, gateway, payment_request):
    declined = payment_request(
        payment_method=PaymentMethod(type="card", token="tok_insufficient_funds")
    )

    result = driver.run(gateway.sale(declined), operation="sale")

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is DeclineReason.INSUFFICIENT_FUNDS
    assert result.gateway_reference.startswith("pay_")


def test_a_dropped_answer_is_retried_under_the_same_key_and_pays_once(
    driver, gateway, sandbox, payment_request
):
    sandbox.queue_faults("drop")

    result = driver.run(gateway.authorize(payment_request()), operation="authorize")

    assert result.outcome is Outcome.APPROVED
    assert [p["id"] for p in payments(sandbox)] == [result.gateway_reference]


def test_a_provider_error_before_processing_is_retried(driver, gateway, sandbox, payment_request):
    sandbox.queue_faults("error", "error")

    result = driver.run(gateway.authorize(payment_request()), operation="authorize")

    assert result.outcome is Outcome.APPROVED
    assert len(payments(sandbox)) == 1


def test_a_read_timeout_after_processing_is_retried_and_replayed(
    sandbox, paycore_dummy_server, http, payment_request
):
    gateway = gateway_for(sandbox, paycore_dummy_server.url, timeouts={"read": 0.5, "total": 10})
    sandbox.queue_faults("timeout")

    result = driver_for(gateway, http).run(
        gateway.authorize(payment_request()), operation="authorize"
    )

    assert result.outcome is Outcome.APPROVED
    assert len(payments(sandbox)) == 1


def test_when_every_attempt_breaks_the_outcome_is_unknown_and_fetch_status_resolves_it(
    driver, gateway, sandbox, payment_request
):
    sandbox.queue_faults("drop", "drop", "drop")

    with pytest.raises(OutcomeUnknown):
        driver.run(gateway.authorize(payment_request()), operation="authorize")

    # The reference was never seen; the provider finds the payment by paycore's id.
    status = driver.run(gateway.fetch_status(payment_request()), operation="fetch_status")
    assert status.outcome is Outcome.APPROVED
    assert status.gateway_reference == payments(sandbox)[0]["id"]


def test_a_key_reused_for_another_request_is_an_unknown_outcome_not_a_decline(
    driver, gateway, sandbox, payment_request
):
    driver.run(gateway.authorize(payment_request()), operation="authorize")
    # The same transaction id, so the same Idempotency-Key, for another amount.
    changed = payment_request(amount=Money(2000, "USD"))

    with pytest.raises(OutcomeUnknown) as caught:
        driver.run(gateway.authorize(changed), operation="authorize")

    assert caught.value.http_status == 409
    assert caught.value.transcript is not None
    assert [p["amount"] for p in payments(sandbox)] == [1000]


def test_fetch_status_of_a_capture_that_never_reached_the_provider_is_a_decline(
    driver, gateway, payment_request
):
    authorized = driver.run(gateway.authorize(payment_request()), operation="authorize")
    lost = payment_request(
        TransactionType.CAPTURE, "txn_lost", gateway_reference=authorized.gateway_reference
    )

    status = driver.run(gateway.fetch_status(lost), operation="fetch_status")

    assert (status.outcome, status.decline_code) == (Outcome.DECLINED, "not_found")


def test_the_3ds_flow_ends_in_a_status_the_gateway_reads(driver, gateway, http, payment_request):
    secure = payment_request(payment_method=PaymentMethod(type="card", token="tok_3ds"))
    started = driver.run(gateway.authorize(secure), operation="authorize")
    assert started.outcome is Outcome.ACTION_REQUIRED

    http.post(started.next_action.url, data={"result": "approve"})

    checked = payment_request(gateway_reference=started.gateway_reference)
    status = driver.run(gateway.fetch_status(checked), operation="fetch_status")
    assert status.outcome is Outcome.APPROVED


def test_payment_methods_over_http(driver, gateway):
    options = driver.run(gateway.payment_methods(Money(500, "EUR")), operation="methods")

    assert [(option.type, option.required_fields) for option in options] == [
        ("card", ("token",)),
        ("gift_card", ("token",)),
    ]


def test_a_wrong_api_key_is_an_auth_error(sandbox, paycore_dummy_server, http, payment_request):
    gateway = gateway_for(sandbox, paycore_dummy_server.url, api_key="sk_test_wrong")

    with pytest.raises(GatewayAuthError):
        driver_for(gateway, http).run(gateway.authorize(payment_request()), operation="authorize")
    assert payments(sandbox) == []


def test_a_sandbox_that_is_not_running_is_unavailable(
    paycore_sandbox_server, http, payment_request
):
    sandbox = DummySandbox()
    server = paycore_sandbox_server(sandbox)
    server.stop()
    gateway = gateway_for(sandbox, server.url, timeouts={"connect": 0.5, "read": 2, "total": 5})

    with pytest.raises(GatewayUnavailable):
        driver_for(gateway, http).run(gateway.authorize(payment_request()), operation="authorize")


def test_webhooks_the_sandbox_sends_verify_and_normalise(
    paycore_sandbox_server, paycore_webhook_receiver, http, payment_request
):
    sandbox = DummySandbox(webhook_url=paycore_webhook_receiver.url)
    server = paycore_sandbox_server(sandbox)
    gateway = gateway_for(sandbox, server.url)
    driver = driver_for(gateway, http)
    authorized = driver.run(gateway.authorize(payment_request()), operation="authorize")
    follow_up = payment_request("capture", "txn_2", gateway_reference=authorized.gateway_reference)
    driver.run(gateway.capture(follow_up), operation="capture")

    deliveries = paycore_webhook_receiver.wait_for(2)
    handled = [
        driver.run(gateway.handle_webhook(d.as_request()), operation="webhook") for d in deliveries
    ]

    events = [handling.events[0] for handling in handled]
    assert [(e.transaction_type, e.outcome) for e in events] == [
        (TransactionType.AUTHORIZE, Outcome.APPROVED),
        (TransactionType.CAPTURE, Outcome.APPROVED),
    ]
    assert [e.transaction_id for e in events] == ["txn_1", "txn_2"]
    assert {e.gateway_reference for e in events} == {authorized.gateway_reference}
    assert all(h.reply.status_code == 200 for h in handled)


def test_no_key_or_secret_of_the_dummy_reaches_a_transcript_or_a_log(
    paycore_sandbox_server, http, payment_request, caplog
):
    import json
    import logging

    api_key, webhook_secret = "sk_test_SENTINEL_api_key_77", "whsec_SENTINEL_hook_88"
    sandbox = DummySandbox(api_key=api_key, webhook_secret=webhook_secret)
    server = paycore_sandbox_server(sandbox)
    gateway = gateway_for(sandbox, server.url)
    caplog.set_level(logging.DEBUG, logger="paycore")
    transcripts = []
    with GatewayDriver(gateway, client=http, hooks=None, retry=FAST_RETRIES) as driver:
        authorized = driver.run_recorded(
            gateway.authorize(payment_request()), operation="authorize"
        )
        transcripts.append(authorized.transcript)
        capture = payment_request(
            "capture", "txn_2", gateway_reference=authorized.result.gateway_reference
        )
        transcripts.append(
            driver.run_recorded(gateway.capture(capture), operation="capture").transcript
        )
        bad = gateway_for(sandbox, server.url, api_key="sk_test_SENTINEL_wrong_99")
        with (
            GatewayDriver(bad, client=http, hooks=None) as refused,
            pytest.raises(GatewayAuthError) as caught,
        ):
            refused.run(bad.authorize(payment_request("authorize", "txn_3")), operation="authorize")
        transcripts.append(caught.value.transcript)
    assert authorized.result.outcome is Outcome.APPROVED  # the real key was sent and accepted
    everything = json.dumps([t.as_dict() for t in transcripts]) + caplog.text + str(caught.value)
    for sentinel in (api_key, webhook_secret, "sk_test_SENTINEL_wrong_99"):
        assert sentinel not in everything
    assert "[REDACTED]" in everything


def test_the_async_driver_runs_the_same_plugin_code(gateway, sandbox, payment_request):
    import asyncio

    from paycore.gateways.driver import AsyncGatewayDriver

    async def life() -> list[Outcome]:
        async with (
            httpx.AsyncClient(trust_env=False) as client,
            AsyncGatewayDriver(gateway, client=client, hooks=None, retry=FAST_RETRIES) as driver,
        ):
            exchange = gateway.authorize(payment_request())
            authorized = await driver.run(exchange, operation="authorize")
            reference = authorized.gateway_reference
            captures = [
                payment_request(
                    "capture", f"txn_c{i}", gateway_reference=reference, amount=Money(300, "USD")
                )
                for i in range(3)
            ]
            # Three partial captures of one payment, concurrently, over one client.
            results = await asyncio.gather(
                *(driver.run(gateway.capture(c), operation="capture") for c in captures)
            )
            return [authorized.outcome, *(r.outcome for r in results)]

    assert asyncio.run(life()) == [Outcome.APPROVED] * 4
    [payment] = payments(sandbox)
    assert (payment["amount_captured"], payment["amount_capturable"]) == (900, 100)


# -- gift cards ----------------------------------------------------------------------------

GIFT_CARD = PaymentMethod(type="gift_card", token="gc_test_5000")


def gift_card_balance(sandbox: DummySandbox, token: str = "gc_test_5000") -> tuple[int, int]:
    """What the gift card may still spend, and what its authorizations hold."""
    card = sandbox.ledger.gift_card(token)
    assert card is not None
    return card["balance"], card["held"]


def test_a_gift_cards_balance_follows_its_authorization_captures_and_refund(
    driver, gateway, sandbox, payment_request
):
    opening = payment_request(amount=Money(3000, "USD"), payment_method=GIFT_CARD)
    authorized = driver.run(gateway.authorize(opening), operation="authorize")
    assert (authorized.outcome, authorized.next_action) == (Outcome.APPROVED, None)
    assert gift_card_balance(sandbox) == (2000, 3000)

    def then(kind: str, transaction_id: str, amount: int, **changes: Any):
        follow_up = payment_request(
            kind,
            transaction_id,
            gateway_reference=authorized.gateway_reference,
            amount=Money(amount, "USD"),
            **changes,
        )
        result = driver.run(getattr(gateway, kind)(follow_up), operation=kind)
        assert result.outcome is Outcome.APPROVED
        return gift_card_balance(sandbox)

    assert then("capture", "txn_2", 1000) == (2000, 2000)
    assert then("capture", "txn_3", 500, final=True) == (3500, 0)  # 1500 released
    assert then("refund", "txn_4", 1500) == (5000, 0)


def test_a_gift_card_void_releases_its_hold(driver, gateway, sandbox, payment_request):
    opening = payment_request(amount=Money(4500, "USD"), payment_method=GIFT_CARD)
    authorized = driver.run(gateway.authorize(opening), operation="authorize")
    void = payment_request("void", "txn_2", gateway_reference=authorized.gateway_reference)

    voided = driver.run(gateway.void(void), operation="void")

    assert (voided.outcome, voided.amount) == (Outcome.APPROVED, Money(4500, "USD"))
    assert gift_card_balance(sandbox) == (5000, 0)


@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("gc_test_5000", 5001, DeclineReason.INSUFFICIENT_FUNDS),
        ("gc_test_empty", 1, DeclineReason.INSUFFICIENT_FUNDS),
        ("gc_test_mistyped", 100, DeclineReason.INCORRECT_NUMBER),
    ],
)
def test_a_gift_card_that_cannot_pay_is_a_declined_result(
    driver, gateway, sandbox, payment_request, token, amount, reason
):
    method = PaymentMethod(type="gift_card", token=token)
    sale = payment_request("sale", amount=Money(amount, "USD"), payment_method=method)

    result = driver.run(gateway.sale(sale), operation="sale")

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)
    assert result.gateway_reference.startswith("pay_")
    assert token not in (result.message or "")
    assert gift_card_balance(sandbox) == (5000, 0)


def test_a_gift_card_sale_whose_answer_was_dropped_is_retried_and_spends_once(
    driver, gateway, sandbox, payment_request
):
    sandbox.queue_faults("drop")
    sale = payment_request("sale", amount=Money(2000, "USD"), payment_method=GIFT_CARD)

    result = driver.run(gateway.sale(sale), operation="sale")

    assert result.outcome is Outcome.APPROVED
    assert [p["id"] for p in payments(sandbox)] == [result.gateway_reference]
    assert gift_card_balance(sandbox) == (3000, 0)


def test_concurrent_authorizations_never_hold_more_than_the_gift_card_has(
    gateway, sandbox, payment_request
):
    import asyncio

    from paycore.gateways.driver import AsyncGatewayDriver

    async def authorize_four() -> list[Outcome]:
        async with (
            httpx.AsyncClient(trust_env=False) as client,
            AsyncGatewayDriver(gateway, client=client, hooks=None, retry=FAST_RETRIES) as driver,
        ):
            requests = [
                payment_request(
                    "authorize",
                    f"txn_{i}",
                    amount=Money(2000, "USD"),
                    payment_method=GIFT_CARD,
                )
                for i in range(4)
            ]
            results = await asyncio.gather(
                *(driver.run(gateway.authorize(r), operation="authorize") for r in requests)
            )
            return [result.outcome for result in results]

    outcomes = asyncio.run(authorize_four())

    assert sorted(outcomes) == [Outcome.APPROVED] * 2 + [Outcome.DECLINED] * 2
    assert gift_card_balance(sandbox) == (1000, 4000)


def test_gift_card_webhooks_verify_and_normalise(
    paycore_sandbox_server, paycore_webhook_receiver, http, payment_request
):
    sandbox = DummySandbox(webhook_url=paycore_webhook_receiver.url)
    gateway = gateway_for(sandbox, paycore_sandbox_server(sandbox).url)
    driver = driver_for(gateway, http)
    sale = payment_request("sale", amount=Money(1200, "USD"), payment_method=GIFT_CARD)
    paid = driver.run(gateway.sale(sale), operation="sale")

    (delivery,) = paycore_webhook_receiver.wait_for(1)
    handled = driver.run(gateway.handle_webhook(delivery.as_request()), operation="webhook")

    (event,) = handled.events
    assert (event.transaction_type, event.outcome) == (TransactionType.SALE, Outcome.APPROVED)
    assert (event.gateway_reference, event.transaction_id) == (paid.gateway_reference, "txn_1")
    assert event.amount == Money(1200, "USD")


class TestDummyGiftCardContract(GatewayContract):
    """The gateway contract once more, every payment paid from a gift card."""

    gateway_name = "dummy"
    currency = "USD"
    amount = 2_500  # gc_test_100000 pays forty of them in each test's own sandbox
    approved = PaymentMethod(type="gift_card", token="gc_test_100000")
    declined = PaymentMethod(type="gift_card", token="gc_test_unknown")
    declined_reason = DeclineReason.INCORRECT_NUMBER
    insufficient_funds = PaymentMethod(type="gift_card", token="gc_test_empty")
    challenge = None  # gift cards never ask for 3-D Secure

    def provider_totals(self, sandbox: DummySandbox, gateway_reference: str) -> ProviderTotals:
        payment = sandbox.ledger.get(gateway_reference)
        succeeded = [op["type"] for op in payment["operations"] if op["status"] == "succeeded"]
        return ProviderTotals(
            captured=payment["amount_captured"],
            refunded=payment["amount_refunded"],
            captures=succeeded.count("capture"),
            refunds=succeeded.count("refund"),
        )
