"""WooshPay webhooks, unit: signatures checked on the raw bytes, events normalised."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from paycore_wooshpay.gateway import WooshPayGateway

from paycore.errors import GatewayProtocolError, WebhookSignatureError
from paycore.gateways.webhooks import compute_signature, sign
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    Outcome,
    TransactionType,
    WebhookRequest,
)

SECRET = "whsec_SENTINEL_secret_2"
OLD_SECRET = "whsec_SENTINEL_secret_old"
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = int(RECEIVED.timestamp())
PI = "pi_1000000000000000001"


def event(event_type: str = "payment_intent.amount_capturable_updated", **resource: Any) -> bytes:
    """An Event as WooshPay sends it: ``created`` in seconds, the resource as it is now."""
    body = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2023-10-16",
        "created": NOW - 5,
        "data": {"object": resource},
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
    }
    return json.dumps(body).encode()


def delivery(body: bytes, header: str | None = None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Wooshpay-Signature"] = header
    return WebhookRequest(method="POST", headers=headers, body=body, received_at=RECEIVED)


def signed(body: bytes, secrets: str | list[str] = SECRET, timestamp: int = NOW) -> WebhookRequest:
    return delivery(body, sign(body, secrets, timestamp=timestamp))


def handle(gateway: WooshPayGateway, request: WebhookRequest, drive):
    sent, handling = drive(gateway.handle_webhook(request))
    assert sent == []  # verification asks nothing of the provider
    return handling


def gateway_with(secret: str | list[str], **config: Any) -> WooshPayGateway:
    return WooshPayGateway.from_config(
        {"secret_key": "sk_test_k", "webhook_secret": secret, **config}
    )


# -- verification --------------------------------------------------------------------------


def test_a_delivery_signed_with_the_secret_is_accepted_and_answered_in_json(gateway, drive, intent):
    handling = handle(gateway, signed(event(**intent())), drive)

    assert len(handling.events) == 1
    assert handling.reply.status_code == 200
    assert handling.reply.media_type == "application/json"
    assert json.loads(handling.reply.body) == {"received": True}


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "no signature header"),
        ("", "no signature header"),
        ("v1=abc", "no timestamp"),
        (f"t={NOW}", "no v1 signature"),
        (f"t=soon,v1={'0' * 64}", "timestamp is missing or malformed"),
        ("garbage", "not a list of key=value pairs"),
    ],
)
def test_a_delivery_without_a_well_formed_signature_header_is_refused(
    gateway, drive, intent, header, problem
):
    with pytest.raises(WebhookSignatureError, match=problem):
        handle(gateway, delivery(event(**intent()), header), drive)


def test_a_delivery_signed_with_another_secret_is_refused(gateway, drive, intent):
    with pytest.raises(WebhookSignatureError, match="no signature in the header matches") as caught:
        handle(gateway, signed(event(**intent()), "whsec_guess"), drive)
    assert SECRET not in str(caught.value)


def test_a_body_altered_after_signing_is_refused(gateway, drive, intent):
    header = sign(event(**intent()), SECRET, timestamp=NOW)
    altered = event(**intent(amount=1))

    with pytest.raises(WebhookSignatureError):
        handle(gateway, delivery(altered, header), drive)


def test_a_body_re_serialised_after_signing_is_refused(gateway, drive, intent):
    body = event(**intent())
    header = sign(body, SECRET, timestamp=NOW)
    reformatted = json.dumps(json.loads(body), indent=2).encode()

    with pytest.raises(WebhookSignatureError):
        handle(gateway, delivery(reformatted, header), drive)


@pytest.mark.parametrize(("offset", "problem"), [(-301, "301 s old"), (301, "301 s in the future")])
def test_a_delivery_signed_beyond_the_tolerance_is_refused(gateway, drive, intent, offset, problem):
    with pytest.raises(WebhookSignatureError, match=problem):
        handle(gateway, signed(event(**intent()), timestamp=NOW + offset), drive)


def test_a_delivery_signed_within_the_tolerance_is_accepted(gateway, drive, intent):
    for offset in (-300, 300):
        assert handle(gateway, signed(event(**intent()), timestamp=NOW + offset), drive).events


def test_the_tolerance_comes_from_the_config(drive, intent):
    gateway = gateway_with(SECRET, webhook_tolerance=1000)

    assert handle(gateway, signed(event(**intent()), timestamp=NOW - 900), drive).events
    with pytest.raises(WebhookSignatureError, match="tolerance of 1000 s"):
        handle(gateway, signed(event(**intent()), timestamp=NOW - 1001), drive)


def test_a_header_signed_with_the_old_and_new_secrets_verifies_with_the_new_alone(drive, intent):
    body = event(**intent())
    header = sign(body, [OLD_SECRET, SECRET], timestamp=NOW)
    assert header.count("v1=") == 2

    assert handle(gateway_with(SECRET), delivery(body, header), drive).events


def test_a_gateway_knowing_both_secrets_accepts_a_delivery_signed_with_the_old(drive, intent):
    gateway = gateway_with([SECRET, OLD_SECRET])

    assert handle(gateway, signed(event(**intent()), OLD_SECRET), drive).events
    assert handle(gateway, signed(event(**intent()), SECRET), drive).events
    with pytest.raises(WebhookSignatureError):
        handle(gateway, signed(event(**intent()), "whsec_third"), drive)


def test_an_unknown_signature_scheme_beside_v1_is_ignored(gateway, drive, intent):
    body = event(**intent())
    header = f"t={NOW},v0=deadbeef,v1={compute_signature(SECRET, NOW, body)}"

    assert handle(gateway, delivery(body, header), drive).events


def test_a_signed_delivery_that_is_not_json_is_a_protocol_error(gateway, drive):
    with pytest.raises(GatewayProtocolError, match="not JSON"):
        handle(gateway, signed(b"<xml/>"), drive)


def test_a_signed_event_without_an_id_is_a_protocol_error(gateway, drive, intent):
    body = json.loads(event(**intent()))
    del body["id"]

    with pytest.raises(GatewayProtocolError, match="'id'"):
        handle(gateway, signed(json.dumps(body).encode()), drive)


# -- events --------------------------------------------------------------------------------


def only_event(gateway, drive, body: bytes):
    (received,) = handle(gateway, signed(body), drive).events
    return received


def test_an_authorization_event_reports_the_creating_transaction(gateway, drive, intent):
    received = only_event(gateway, drive, event(**intent()))

    assert received.gateway == "wooshpay"
    assert (received.event_id, received.event_type) == (
        "evt_1",
        "payment_intent.amount_capturable_updated",
    )
    assert received.occurred_at == datetime.fromtimestamp(NOW - 5, UTC)  # seconds
    assert received.transaction_type is TransactionType.AUTHORIZE
    assert received.outcome is Outcome.APPROVED
    assert (received.gateway_reference, received.transaction_reference) == (PI, "ch_1")
    assert received.transaction_id == "txn_1"
    assert received.amount == Money(1000, "USD")
    assert received.provider_status == "requires_capture"


def test_an_event_created_in_milliseconds_is_read_as_well(gateway, drive, intent):
    body = json.loads(event(**intent()))
    body["created"] = (NOW - 5) * 1000

    received = only_event(gateway, drive, json.dumps(body).encode())
    assert received.occurred_at == datetime.fromtimestamp(NOW - 5, UTC)


def test_a_manual_intent_succeeding_is_its_capture_with_the_amount_received(gateway, drive, intent):
    body = event("payment_intent.succeeded", **intent("succeeded", amount_received=600))
    received = only_event(gateway, drive, body)

    assert received.transaction_type is TransactionType.CAPTURE
    assert received.outcome is Outcome.APPROVED
    assert received.amount == Money(600, "USD")
    assert received.transaction_id is None  # the metadata names the authorization


def test_an_automatic_intent_succeeding_is_its_sale(gateway, drive, intent):
    answer = intent("succeeded", capture_method="automatic")
    received = only_event(gateway, drive, event("payment_intent.succeeded", **answer))

    assert received.transaction_type is TransactionType.SALE
    assert received.transaction_id == "txn_1"
    assert received.amount == Money(1000, "USD")


@pytest.mark.parametrize(
    ("capture_method", "kind"),
    [("manual", TransactionType.AUTHORIZE), ("automatic", TransactionType.SALE)],
)
def test_a_failed_payment_declines_the_creating_transaction_with_its_reason(
    gateway, drive, intent, capture_method, kind
):
    failure = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}
    answer = intent(
        "requires_payment_method", capture_method=capture_method, last_payment_error=failure
    )
    received = only_event(gateway, drive, event("payment_intent.payment_failed", **answer))

    assert received.transaction_type is kind
    assert received.outcome is Outcome.DECLINED
    assert received.decline_reason is DeclineReason.INSUFFICIENT_FUNDS
    assert received.decline_code == "insufficient_funds"
    assert received.transaction_id == "txn_1"
    assert received.amount is None


def test_a_failed_3ds_challenge_declines_as_authentication_failed(gateway, drive, intent):
    failure = {"type": "card_error", "code": "payment_intent_authentication_failure"}
    answer = intent("requires_payment_method", last_payment_error=failure)
    received = only_event(gateway, drive, event("payment_intent.payment_failed", **answer))

    assert received.decline_reason is DeclineReason.AUTHENTICATION_FAILED


def test_a_failed_attempt_on_a_hosted_page_is_acknowledged_without_an_event(gateway, drive, intent):
    metadata = {"paycore_transaction_id": "txn_1", "paycore_checkout": "hosted_page"}
    failure = {"type": "card_error", "code": "card_declined"}
    answer = intent("requires_payment_method", metadata=metadata, last_payment_error=failure)
    handling = handle(gateway, signed(event("payment_intent.payment_failed", **answer)), drive)

    assert handling.events == ()
    assert handling.reply.status_code == 200


def test_an_authorization_canceled_is_its_void(gateway, drive, intent):
    answer = intent("canceled", latest_charge="ch_1", cancellation_reason="requested_by_customer")
    received = only_event(gateway, drive, event("payment_intent.canceled", **answer))

    assert received.transaction_type is TransactionType.VOID
    assert received.outcome is Outcome.APPROVED
    assert received.transaction_id is None
    assert received.amount == Money(1000, "USD")


@pytest.mark.parametrize(
    ("why", "reason"),
    [
        ("abandoned", DeclineReason.EXPIRED),
        ("automatic", DeclineReason.EXPIRED),
        ("requested_by_customer", DeclineReason.CANCELED),
        (None, DeclineReason.CANCELED),
    ],
)
def test_an_intent_canceled_before_authorization_declines_its_creating_transaction(
    gateway, drive, intent, why, reason
):
    answer = intent("canceled", latest_charge=None, cancellation_reason=why)
    received = only_event(gateway, drive, event("payment_intent.canceled", **answer))

    assert received.transaction_type is TransactionType.AUTHORIZE
    assert received.outcome is Outcome.DECLINED
    assert received.decline_reason is reason
    assert received.decline_code == (why or "canceled")
    assert received.transaction_id == "txn_1"


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        ("succeeded", Outcome.APPROVED, None),
        ("pending", Outcome.PROCESSING, None),
        ("failed", Outcome.DECLINED, DeclineReason.EXPIRED_CARD),
    ],
)
def test_a_refund_update_reports_the_refund_by_its_own_transaction_id(
    gateway, drive, refund, status, outcome, reason
):
    failure = "expired_or_canceled_card" if status == "failed" else None
    answer = refund(status, failure_reason=failure)
    received = only_event(gateway, drive, event("charge.refund.updated", **answer))

    assert received.transaction_type is TransactionType.REFUND
    assert received.outcome is outcome
    assert received.decline_reason is reason
    assert (received.gateway_reference, received.transaction_reference) == (PI, "re_1")
    assert received.transaction_id == "txn_r"
    assert received.amount == (None if reason else Money(500, "USD"))


def test_an_intent_made_outside_paycore_names_no_transaction(gateway, drive, intent):
    received = only_event(gateway, drive, event(**intent(metadata={})))

    assert received.transaction_id is None
    assert received.gateway_reference == PI


@pytest.mark.parametrize(
    "event_type",
    [
        "payment_intent.created",
        "payment_intent.requires_action",
        "checkout.session.completed",
        "checkout.session.expired",
        "charge.dispute.updated",
        "product.created",
    ],
)
def test_an_event_paycore_does_not_follow_is_acknowledged_and_dropped(
    gateway, drive, intent, event_type
):
    handling = handle(gateway, signed(event(event_type, **intent())), drive)

    assert handling.events == ()
    assert (handling.reply.status_code, json.loads(handling.reply.body)) == (
        200,
        {"received": True},
    )


def test_a_followed_event_without_its_object_is_a_protocol_error(gateway, drive):
    body = json.loads(event())
    body["data"] = {}

    with pytest.raises(GatewayProtocolError, match="the event's object"):
        handle(gateway, signed(json.dumps(body).encode()), drive)


def test_the_same_event_delivered_twice_keeps_its_id(gateway, drive, intent):
    body = event("payment_intent.succeeded", **intent("succeeded"))
    first = only_event(gateway, drive, body)
    again = handle(gateway, delivery(body, sign(body, SECRET, timestamp=NOW + 60)), drive)

    assert again.events == (first,)
    assert again.events[0].event_id == "evt_1"
