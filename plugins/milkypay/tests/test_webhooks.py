"""MilkyPay callbacks, unit: X-Signature checked on the raw bytes, events normalised."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from paycore_milkypay.gateway import MilkyPayGateway, PaytoneGateway
from paycore_milkypay.signature import compute_signature

from paycore.errors import GatewayProtocolError, WebhookSignatureError
from paycore.gateways.json_codec import encode_json
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    Outcome,
    TransactionType,
    WebhookRequest,
)

from .conftest import (
    CONFIG,
    CPI,
    RFD,
    SECRET_KEY,
    UPDATED,
    document,
    make_invoice,
    make_refund,
    run,
)

OLD_SECRET_KEY = "SENTINEL_secret_key_old"
LIVE_SECRET_KEY = "SENTINEL_live_secret_key"
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AT_UPDATED = datetime.fromtimestamp(UPDATED, UTC)
USD_10 = Money(1000, "USD")
SALE = TransactionType.SALE
AUTHORIZE = TransactionType.AUTHORIZE
CAPTURE = TransactionType.CAPTURE
VOID = TransactionType.VOID
REFUND = TransactionType.REFUND
APPROVED = Outcome.APPROVED
PROCESSING = Outcome.PROCESSING
DECLINED = Outcome.DECLINED


def callback(invoice: dict[str, Any] | None = None, *refunds: dict[str, Any]) -> bytes:
    """A callback body as the platform sends it: compact JSON, the invoice as it is now."""
    return encode_json(document(invoice or make_invoice(), *refunds))


def delivery(body: bytes, signature: str | None = None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return WebhookRequest(method="POST", headers=headers, body=body, received_at=RECEIVED)


def signed(body: bytes, secret: str = SECRET_KEY) -> WebhookRequest:
    return delivery(body, compute_signature(secret, body))


def handle(gateway: MilkyPayGateway, request: WebhookRequest):
    sent, handling = run(gateway.handle_webhook(request))
    assert sent == []  # verification asks nothing of the platform
    return handling


def events_of(gateway: MilkyPayGateway, body: bytes):
    return handle(gateway, signed(body)).events


def gateway_with(**config: Any) -> MilkyPayGateway:
    return MilkyPayGateway.from_config({**CONFIG, **config})


# -- the signature -------------------------------------------------------------------------


def test_the_signature_is_base64_of_sha1_of_the_body_between_two_secrets():
    # base64(sha1("secret" + '{"amount":22}' + "secret")), as the platform documents it.
    assert compute_signature("secret", b'{"amount":22}') == "oWxtYXB9Fs2PbLfcBecxg9A9Nzc="


def test_a_callback_signed_with_the_secret_key_is_accepted_and_answered_ok(gateway):
    handling = handle(gateway, signed(callback()))

    assert len(handling.events) == 1
    assert handling.reply.status_code == 200
    assert (handling.reply.body, handling.reply.media_type) == (b"OK", "text/plain")


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_a_callback_without_a_signature_is_refused(gateway, signature):
    with pytest.raises(WebhookSignatureError, match="no X-Signature header"):
        handle(gateway, delivery(callback(), signature))


def test_a_callback_signed_with_another_secret_is_refused_without_quoting_it(gateway):
    body = callback()

    with pytest.raises(WebhookSignatureError, match="does not match the body") as caught:
        handle(gateway, signed(body, "SENTINEL_a_guess"))

    for secret in (SECRET_KEY, "SENTINEL_a_guess", compute_signature(SECRET_KEY, body)):
        assert secret not in str(caught.value)


def test_a_body_altered_after_signing_is_refused(gateway):
    signature = compute_signature(SECRET_KEY, callback())
    altered = callback(make_invoice(amount=Decimal("1000.00")))

    with pytest.raises(WebhookSignatureError):
        handle(gateway, delivery(altered, signature))


@pytest.mark.parametrize("extra", [b" ", b"\n", b"\r\n"])
def test_trailing_whitespace_after_signing_is_refused(gateway, extra):
    body = callback()

    with pytest.raises(WebhookSignatureError):
        handle(gateway, delivery(body + extra, compute_signature(SECRET_KEY, body)))


def test_a_body_re_serialised_after_signing_is_refused(gateway):
    body = callback()
    reformatted = json.dumps(json.loads(body), indent=2).encode()

    with pytest.raises(WebhookSignatureError):
        handle(gateway, delivery(reformatted, compute_signature(SECRET_KEY, body)))


def test_whitespace_around_the_header_value_is_http_s_not_the_signature_s(gateway):
    body = callback()

    assert handle(gateway, delivery(body, f" {compute_signature(SECRET_KEY, body)} \t")).events


@pytest.mark.parametrize("signature", ["x" * 300, "é" * 28])
def test_a_malformed_header_is_refused(gateway, signature):
    with pytest.raises(WebhookSignatureError, match="malformed"):
        handle(gateway, delivery(callback(), signature))


@pytest.mark.parametrize("secret", [SECRET_KEY, OLD_SECRET_KEY])
def test_while_a_secret_is_rotated_either_one_is_accepted(secret):
    rotating = gateway_with(secret_key=[SECRET_KEY, OLD_SECRET_KEY])

    assert handle(rotating, signed(callback(), secret)).events


def test_a_secret_no_longer_listed_is_refused():
    with pytest.raises(WebhookSignatureError):
        handle(gateway_with(secret_key=[SECRET_KEY]), signed(callback(), OLD_SECRET_KEY))


def test_a_callback_signed_with_the_live_secret_is_refused_by_a_test_gateway(gateway):
    live_callback = callback(make_invoice(test_mode=False))

    with pytest.raises(WebhookSignatureError, match="does not match"):
        handle(gateway, signed(live_callback, LIVE_SECRET_KEY))


def test_a_live_callback_is_refused_by_a_test_gateway_even_when_the_signature_holds(gateway):
    with pytest.raises(WebhookSignatureError, match="for live mode but the gateway is test"):
        handle(gateway, signed(callback(make_invoice(test_mode=False))))


def test_a_test_callback_is_refused_by_a_live_gateway():
    live = gateway_with(public_key="pk_live_SENTINEL", secret_key=LIVE_SECRET_KEY)

    with pytest.raises(WebhookSignatureError, match="for test mode but the gateway is live"):
        handle(live, signed(callback(make_invoice(test_mode=True)), LIVE_SECRET_KEY))


def test_a_live_gateway_takes_a_live_callback():
    live = gateway_with(public_key="pk_live_SENTINEL", secret_key=LIVE_SECRET_KEY)

    assert handle(live, signed(callback(make_invoice(test_mode=False)), LIVE_SECRET_KEY)).events


# -- the body ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "the callback body is not JSON"),
        (b"[1, 2]", "the callback body is not a JSON object"),
        (b'{"data": null}', "the invoice is not a JSON object"),
        (encode_json(document(make_refund())), "not a payment-invoices resource"),
    ],
)
def test_a_signed_body_that_is_no_invoice_document_is_a_protocol_error(gateway, body, problem):
    with pytest.raises(GatewayProtocolError, match=problem):
        handle(gateway, signed(body))


def test_an_invoice_of_an_unknown_flow_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="payment_flow"):
        events_of(gateway, callback(make_invoice("processed", payment_flow="verify")))


# -- events --------------------------------------------------------------------------------

# status -> what a charge's callback says about its sale.
SALE_EVENTS = {
    "created": (PROCESSING, None),
    "processing": (PROCESSING, None),
    "process_pending": (PROCESSING, None),
    "process_error": (PROCESSING, None),
    "processed": (APPROVED, None),
    "partially_processed": (APPROVED, None),
    "process_failed": (DECLINED, DeclineReason.CARD_DECLINED),
    "expired": (DECLINED, DeclineReason.EXPIRED),
    "terminated": (DECLINED, DeclineReason.CANCELED),
    "refunding": (APPROVED, None),
    "refund_pending": (APPROVED, None),
    "partially_refunded": (APPROVED, None),
    "refunded": (APPROVED, None),
    "refund_error": (APPROVED, None),
    "refund_failed": (APPROVED, None),
    "charged_back": (APPROVED, None),
    "partially_charged_back": (APPROVED, None),
}
PAID = [status for status, (outcome, _) in SALE_EVENTS.items() if outcome is APPROVED]


def test_all_seventeen_documented_statuses_are_followed():
    assert len(SALE_EVENTS) == 17


@pytest.mark.parametrize("status", list(SALE_EVENTS))
def test_every_status_of_a_charge_is_an_event_about_its_sale(gateway, status):
    invoice = make_invoice(status, payment_flow="charge", flow_data=None)
    (event,) = events_of(gateway, callback(invoice))

    assert (event.transaction_type, event.outcome, event.decline_reason) == (
        SALE,
        *SALE_EVENTS[status],
    )
    assert (event.gateway, event.gateway_reference, event.transaction_id) == (
        "milkypay",
        CPI,
        "txn_1",
    )
    assert event.event_id == f"{CPI}:{status}:{UPDATED}"
    assert event.event_type == f"payment-invoice.{status}"
    assert (event.provider_status, event.occurred_at, event.amount) == (status, AT_UPDATED, USD_10)


# status -> the events of a delayed charge's callback: (type, outcome, reason) each.
HOLD_EVENTS: dict[str, list[tuple[TransactionType, Outcome, DeclineReason | None]]] = {
    "created": [(AUTHORIZE, PROCESSING, None)],
    "processing": [(AUTHORIZE, APPROVED, None)],  # held
    "process_pending": [(AUTHORIZE, PROCESSING, None)],
    "process_error": [(AUTHORIZE, PROCESSING, None)],
    "process_failed": [(AUTHORIZE, DECLINED, DeclineReason.CARD_DECLINED)],
    "expired": [(AUTHORIZE, DECLINED, DeclineReason.EXPIRED)],
    "terminated": [(AUTHORIZE, DECLINED, DeclineReason.CANCELED)],
    **{status: [(AUTHORIZE, APPROVED, None), (CAPTURE, APPROVED, None)] for status in PAID},
}


@pytest.mark.parametrize("status", list(HOLD_EVENTS))
def test_every_status_of_a_delayed_charge_is_an_event_about_its_hold(gateway, status):
    events = events_of(gateway, callback(make_invoice(status)))

    assert [(e.transaction_type, e.outcome, e.decline_reason) for e in events] == (
        HOLD_EVENTS[status]
    )
    state = "processing:reserved" if status == "processing" else status
    assert events[0].event_id == f"{CPI}:{state}:{UPDATED}"


def test_a_created_invoice_waiting_for_the_customer_is_a_processing_event(gateway):
    flow_data = {"action": "https://pay.example/hpp/?cpi=x", "method": "GET", "params": {}}
    (event,) = events_of(gateway, callback(make_invoice("created", flow_data=flow_data)))

    assert event.outcome is PROCESSING


def test_a_hold_made_in_the_same_second_is_not_a_duplicate_of_its_processing_event(gateway):
    (waiting,) = events_of(gateway, callback(make_invoice(reserved_amount=0)))
    (held,) = events_of(gateway, callback(make_invoice(reserved_amount=Decimal("10.00"))))

    assert (waiting.outcome, held.outcome) == (PROCESSING, APPROVED)
    assert waiting.event_id == f"{CPI}:processing:{UPDATED}"
    assert held.event_id == f"{CPI}:processing:reserved:{UPDATED}"


def test_a_held_authorization_event_carries_the_reserve(gateway):
    (event,) = events_of(gateway, callback(make_invoice(reserved_amount=Decimal("10.00"))))

    assert (event.outcome, event.amount) == (APPROVED, USD_10)


def test_a_captured_hold_reports_the_capture_once_with_what_was_taken(gateway):
    invoice = make_invoice("processed", processed_amount=Decimal("6.00"), unreserved=True)
    authorization, capture = events_of(gateway, callback(invoice))

    assert (authorization.transaction_type, authorization.amount) == (AUTHORIZE, USD_10)
    assert (capture.transaction_type, capture.outcome) == (CAPTURE, APPROVED)
    assert (capture.event_id, capture.transaction_reference) == (f"{CPI}:capture", f"{CPI}:capture")
    assert capture.amount == Money(600, "USD")
    assert (capture.gateway_reference, capture.transaction_id) == (CPI, None)
    assert capture.occurred_at == AT_UPDATED


def test_a_voided_hold_reports_the_void(gateway):
    invoice = make_invoice("terminated", resolution="voided")
    authorization, void = events_of(gateway, callback(invoice))

    assert (authorization.transaction_type, authorization.outcome) == (AUTHORIZE, APPROVED)
    assert (void.transaction_type, void.outcome, void.amount) == (VOID, APPROVED, USD_10)
    assert (void.event_id, void.transaction_reference) == (f"{CPI}:void", f"{CPI}:void")


def test_a_repeated_callback_repeats_its_event_ids(gateway):
    body = callback(make_invoice("partially_refunded"), make_refund())

    first = events_of(gateway, body)
    again = events_of(gateway, body)

    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert [e.event_id for e in first] == [
        f"{CPI}:partially_refunded:{UPDATED}",
        f"{CPI}:capture",
        f"{RFD}:processed",
    ]


def test_the_capture_keeps_its_event_id_across_later_callbacks(gateway):
    paid = events_of(gateway, callback(make_invoice("processed")))
    refunded = events_of(gateway, callback(make_invoice("refunded", updated=UPDATED + 600)))

    assert paid[1].event_id == refunded[1].event_id == f"{CPI}:capture"
    assert paid[0].event_id != refunded[0].event_id


def test_final_refunds_in_included_are_events_about_them(gateway):
    refunds = [
        make_refund("processed"),
        make_refund("process_failed", id="rfd_failed", reference_id="txn_r2", resolution=None),
        make_refund("processing", id="rfd_pending", reference_id="txn_r3"),
    ]
    invoice = make_invoice("partially_refunded", payment_flow="charge")
    _, processed, failed = events_of(gateway, callback(invoice, *refunds))

    assert (processed.transaction_type, processed.outcome, processed.amount) == (
        REFUND,
        APPROVED,
        Money(500, "USD"),
    )
    assert (processed.event_id, processed.event_type) == (f"{RFD}:processed", "refund.processed")
    assert (processed.transaction_id, processed.transaction_reference) == ("txn_r", RFD)
    assert (processed.gateway_reference, processed.provider_status) == (CPI, "processed")
    assert processed.occurred_at == datetime.fromtimestamp(UPDATED + 30, UTC)
    assert (failed.outcome, failed.decline_reason) == (DECLINED, DeclineReason.PROCESSING_ERROR)
    assert (failed.event_id, failed.event_type) == (
        "rfd_failed:process_failed",
        "refund.process_failed",
    )
    assert failed.transaction_id == "txn_r2"


def test_a_callback_delivered_out_of_order_carries_when_it_happened(gateway):
    later = events_of(gateway, callback(make_invoice("processed", updated=UPDATED + 120)))
    earlier = events_of(gateway, callback(make_invoice("processing", updated=UPDATED)))

    assert earlier[0].occurred_at < later[0].occurred_at
    assert earlier[0].occurred_at == AT_UPDATED


def test_paytones_events_name_paytone():
    paytone = PaytoneGateway.from_config(CONFIG)

    (event,) = events_of(paytone, callback())

    assert event.gateway == "paytone"


def test_a_refund_whose_status_is_not_documented_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="unknown refund status"):
        events_of(gateway, callback(make_invoice("refunded"), make_refund("done")))
