"""DummyGateway, unit: canned answers fed into its exchanges; the requests it sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest

from paycore.errors import (
    ConfigurationError,
    GatewayProtocolError,
    InvalidRequest,
    OutcomeUnknown,
    WebhookSignatureError,
)
from paycore.gateways.base import Operation, RequestPolicy
from paycore.gateways.dummy import DummyConfig, DummyGateway
from paycore.gateways.webhooks import DEFAULT_TOLERANCE, sign
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    NextActionKind,
    Outcome,
    PaymentMethod,
    TransactionType,
    WebhookRequest,
)

BASE_URL = "http://sandbox.test"
API_KEY = "sk_test_SENTINEL_key_1"
WEBHOOK_SECRET = "whsec_SENTINEL_secret_2"
CONFIG = {"base_url": BASE_URL + "/", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def gateway() -> DummyGateway:
    gateway = DummyGateway.from_config(CONFIG)
    assert isinstance(gateway, DummyGateway)
    return gateway


def drive(exchange, *answers: tuple[int, Any]):
    """Run ``exchange``, answering its requests in turn; return (requests sent, result)."""
    sent: list[httpx.Request] = []
    try:
        outgoing = next(exchange)
        for status, body in answers:
            sent.append(outgoing)
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            outgoing = exchange.send(httpx.Response(status, content=content, request=outgoing))
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"unanswered request {outgoing.method} {outgoing.url}")


def operation(kind: str = "authorize", status: str = "succeeded", **changes: Any) -> dict:
    return {
        "object": "operation",
        "id": f"{kind[:4]}_1",
        "payment_id": "pay_1",
        "type": kind,
        "amount": 1000,
        "currency": "USD",
        "status": status,
        "reference": "txn_1",
        "decline_code": None,
        "created": 1_767_322_800,
        **changes,
    }


def payment(status: str = "authorized", *operations: dict, **changes: Any) -> dict:
    return {
        "id": "pay_1",
        "object": "payment",
        "status": status,
        "amount": 1000,
        "currency": "USD",
        "next_action": None,
        "operations": list(operations) or [operation()],
        **changes,
    }


def error(status_code: int, code: str, kind: str = "invalid_request_error", **details: Any):
    return (status_code, {"error": {"type": kind, "code": code, "message": "refused", **details}})


# -- config and declarations ---------------------------------------------------------------


def test_the_config_keeps_secrets_out_of_its_repr_and_lists_them_for_scrubbing(gateway):
    assert gateway.config.base_url == BASE_URL
    assert API_KEY not in repr(gateway.config)
    assert WEBHOOK_SECRET not in repr(gateway.config)
    assert set(gateway.secret_values()) == {API_KEY, WEBHOOK_SECRET}
    assert gateway.config.webhook_tolerance == 300


def test_a_bad_config_is_refused_with_every_problem_and_no_value():
    with pytest.raises(ConfigurationError) as caught:
        DummyGateway.from_config({"base_url": "ftp://x", "api_key": "", "colour": "blue"})

    assert sorted(caught.value.problems) == [
        "(top level): unknown key(s) 'colour'",
        "api_key: does not have the expected format",
        "api_key: must be at least 1 characters long",
        "base_url: does not have the expected format",
        "webhook_secret: is required",
    ]
    assert "ftp://x" not in str(caught.value)


def test_the_capabilities_declare_partial_and_multiple_operations_and_idempotency():
    capabilities = DummyGateway.capabilities

    assert capabilities.operations == set(Operation) - {
        Operation.CREATE_CHECKOUT,
        Operation.SAVE_METHOD,
        Operation.DELETE_METHOD,
    }
    assert not capabilities.vault
    assert capabilities.as_dict()["checkout_kinds"] == []
    assert capabilities.partial_capture and capabilities.multiple_capture
    assert capabilities.partial_refund and capabilities.multiple_refund
    assert capabilities.idempotency_keys
    assert capabilities.as_dict()["idempotency_window_seconds"] == 24 * 3600
    assert capabilities.currencies is None
    assert capabilities.webhook_signing == "hmac-sha256"
    assert capabilities.as_dict()["authorization_window_seconds"] == 7 * 24 * 3600


def test_the_schema_documents_the_webhook_tolerance_the_config_defaults_to():
    documented = DummyGateway.config_schema["properties"]["webhook_tolerance"]["default"]

    assert documented == attrs.fields(DummyConfig).webhook_tolerance.default == DEFAULT_TOLERANCE


def test_the_config_type_is_the_dummy_one(gateway):
    assert isinstance(gateway.config, DummyConfig)


# -- payment methods -----------------------------------------------------------------------


def test_payment_methods_asks_for_the_amounts_currency_and_reads_minimums(gateway):
    methods = [
        {"type": "card", "display_name": "Card", "min_amount": None},
        {"type": "bank_transfer", "display_name": "Bank transfer", "min_amount": 1000},
        {"type": "gift_card", "display_name": "Gift card", "min_amount": None},
    ]
    sent, options = drive(gateway.payment_methods(Money(2500, "EUR")), (200, {"data": methods}))

    assert sent[0].method == "GET"
    assert str(sent[0].url) == f"{BASE_URL}/v1/payment_methods?currency=EUR&amount=2500"
    assert sent[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert [(o.type, o.min_amount, o.required_fields) for o in options] == [
        ("card", None, ("token",)),
        ("bank_transfer", Money(1000, "EUR"), ()),
        ("gift_card", None, ("token",)),
    ]
    assert options[2].display_name == "Gift card"
    assert {o.gateway for o in options} == {"dummy"}


# -- authorize and sale --------------------------------------------------------------------


def test_authorize_posts_the_payment_with_the_idempotency_key_and_bearer_auth(
    gateway, payment_request
):
    sent, _ = drive(gateway.authorize(payment_request()), (201, payment()))

    request = sent[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE_URL}/v1/payments")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["idempotency-key"] == "txn_1"
    assert json.loads(request.content) == {
        "amount": 1000,
        "currency": "USD",
        "capture": False,
        "payment_method": {"type": "card", "token": "tok_visa"},
        "reference": "txn_1",
    }
    assert RequestPolicy.of(request) == RequestPolicy(mutation=True, idempotent=True)


def test_sale_asks_the_provider_to_capture_at_once_and_passes_the_return_url(
    gateway, payment_request
):
    request = payment_request("sale", return_url="https://shop.test/back")
    answer = payment("captured", operation("sale"))
    sent, result = drive(gateway.sale(request), (201, answer))

    body = json.loads(sent[0].content)
    assert body["capture"] is True
    assert body["return_url"] == "https://shop.test/back"
    assert result.outcome is Outcome.APPROVED


def test_an_approved_authorization_carries_the_payments_reference_and_amount(
    gateway, payment_request
):
    _, result = drive(gateway.authorize(payment_request()), (201, payment()))

    assert result.outcome is Outcome.APPROVED
    assert result.gateway_reference == "pay_1"
    assert result.transaction_reference == "auth_1"
    assert result.amount == Money(1000, "USD")
    assert result.provider_status == "succeeded"


def test_an_authorization_says_until_when_it_may_be_captured(gateway, payment_request):
    answer = payment(capture_before=1_767_830_400)
    _, result = drive(gateway.authorize(payment_request()), (201, answer))

    assert result.authorization_expires_at == datetime(2026, 1, 8, tzinfo=UTC)


def test_a_3ds_card_requires_a_redirect_to_the_providers_page(gateway, payment_request):
    answer = payment(
        "requires_action",
        operation(status="requires_action"),
        next_action={"type": "redirect", "url": "http://sandbox.test/3ds/pay_1"},
    )
    _, result = drive(gateway.authorize(payment_request()), (201, answer))

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert result.next_action.url == "http://sandbox.test/3ds/pay_1"


def test_a_bank_transfer_is_processing_until_the_money_arrives(gateway, payment_request):
    request = payment_request("sale", payment_method=PaymentMethod(type="bank_transfer"))
    sent, result = drive(
        gateway.sale(request), (201, payment("processing", operation("sale", "processing")))
    )

    assert json.loads(sent[0].content)["payment_method"] == {"type": "bank_transfer", "token": None}
    assert result.outcome is Outcome.PROCESSING


def test_a_gift_card_is_paid_with_its_number_as_the_token(gateway, payment_request):
    method = PaymentMethod(type="gift_card", token="gc_test_5000")
    request = payment_request(payment_method=method)
    sent, result = drive(gateway.authorize(request), (201, payment()))

    assert json.loads(sent[0].content)["payment_method"] == {
        "type": "gift_card",
        "token": "gc_test_5000",
    }
    assert result.outcome is Outcome.APPROVED


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("card_declined", DeclineReason.CARD_DECLINED),
        ("insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("expired_card", DeclineReason.EXPIRED_CARD),
        ("incorrect_number", DeclineReason.INCORRECT_NUMBER),
        ("currency_not_supported", DeclineReason.CURRENCY_NOT_SUPPORTED),
        ("do_not_honor", DeclineReason.CARD_DECLINED),
    ],
)
def test_a_card_decline_is_a_declined_result_with_the_normalised_reason(
    gateway, code, reason, payment_request
):
    answer = error(402, code, "card_error", payment_id="pay_9")
    _, result = drive(gateway.authorize(payment_request()), answer)

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is reason
    assert result.decline_code == code
    assert result.gateway_reference == "pay_9"
    assert result.message == "refused"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (error(400, "amount_invalid"), DeclineReason.AMOUNT_INVALID),
        (error(400, "amount_too_large"), DeclineReason.AMOUNT_INVALID),
        (error(400, "parameter_invalid"), DeclineReason.INVALID_REQUEST),
        (error(400, "token_invalid"), DeclineReason.INVALID_REQUEST),
        (error(400, "method_not_supported"), DeclineReason.METHOD_NOT_SUPPORTED),
        (error(409, "invalid_state"), DeclineReason.NOT_PERMITTED),
        (error(409, "authorization_expired"), DeclineReason.AUTHORIZATION_EXPIRED),
        (error(404, "resource_missing"), DeclineReason.INVALID_REQUEST),
    ],
)
def test_a_refusal_by_the_provider_is_a_decline_not_an_exception(
    gateway, answer, reason, payment_request
):
    request = payment_request("capture", gateway_reference="pay_1")
    _, result = drive(gateway.capture(request), answer)

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is reason
    assert result.provider_status == f"http_{answer[0]}"


@pytest.mark.parametrize("kind", ["authorize", "sale", "capture", "void", "refund"])
@pytest.mark.parametrize("error_type", ["idempotency_error", "invalid_request_error"])
def test_an_idempotency_conflict_is_an_unknown_outcome_never_a_decline(
    gateway, payment_request, kind, error_type
):
    # A 409 on key reuse says nothing about the first request with that key: it may
    # be processing still, or have succeeded. Declined would record "not done".
    exchange = getattr(gateway, kind)(payment_request(kind, gateway_reference="pay_1"))
    sent = next(exchange)
    _, body = error(409, "idempotency_error", error_type)
    answer = httpx.Response(409, json=body, headers={"Request-Id": "req_42"}, request=sent)

    with pytest.raises(OutcomeUnknown) as caught:
        exchange.send(answer)

    unknown = caught.value
    assert (unknown.gateway, unknown.http_status, unknown.request_id) == ("dummy", 409, "req_42")
    assert "may have succeeded" in unknown.message


def test_authorize_without_a_payment_method_is_refused_before_anything_is_sent(
    gateway, payment_request
):
    with pytest.raises(InvalidRequest, match="payment_method"):
        next(gateway.authorize(payment_request(payment_method=None)))


# -- capture, void, refund -----------------------------------------------------------------


def test_a_partial_capture_sends_its_amount_and_whether_it_is_the_last(gateway, payment_request):
    request = payment_request(
        "capture", transaction_id="txn_2", gateway_reference="pay_1", amount=Money(400, "USD")
    )
    answer = operation("capture", amount=400, id="cap_1", reference="txn_2")
    sent, result = drive(gateway.capture(request), (201, answer))

    assert (sent[0].method, sent[0].url.path) == ("POST", "/v1/payments/pay_1/captures")
    assert sent[0].headers["idempotency-key"] == "txn_2"
    assert json.loads(sent[0].content) == {
        "amount": 400,
        "currency": "USD",
        "final": False,
        "reference": "txn_2",
    }
    assert result.outcome is Outcome.APPROVED
    assert (result.gateway_reference, result.transaction_reference) == ("pay_1", "cap_1")
    assert result.amount == Money(400, "USD")


def test_a_final_capture_asks_the_provider_to_release_the_rest(gateway, payment_request):
    request = payment_request("capture", gateway_reference="pay_1", final=True)
    sent, _ = drive(gateway.capture(request), (201, operation("capture")))

    assert json.loads(sent[0].content)["final"] is True


def test_void_posts_to_the_payment_with_its_reference(gateway, payment_request):
    request = payment_request("void", transaction_id="txn_3", gateway_reference="pay_1")
    sent, result = drive(gateway.void(request), (201, operation("void", amount=600)))

    assert sent[0].url.path == "/v1/payments/pay_1/void"
    assert json.loads(sent[0].content) == {"reference": "txn_3"}
    assert sent[0].headers["idempotency-key"] == "txn_3"
    assert result.amount == Money(600, "USD")


def test_refund_sends_the_amount_to_give_back(gateway, payment_request):
    request = payment_request("refund", gateway_reference="pay_1", amount=Money(250, "USD"))
    sent, result = drive(gateway.refund(request), (201, operation("refund", amount=250)))

    assert sent[0].url.path == "/v1/payments/pay_1/refunds"
    assert json.loads(sent[0].content) == {"amount": 250, "currency": "USD", "reference": "txn_1"}
    assert result.outcome is Outcome.APPROVED


def test_the_payment_reference_is_escaped_in_the_path(gateway, payment_request):
    request = payment_request("void", gateway_reference="pay/../x")
    sent, _ = drive(gateway.void(request), (201, operation("void")))

    assert sent[0].url.raw_path == b"/v1/payments/pay%2F..%2Fx/void"


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
def test_an_operation_on_a_payment_needs_its_gateway_reference(gateway, kind, payment_request):
    with pytest.raises(InvalidRequest, match="gateway_reference"):
        next(getattr(gateway, kind)(payment_request(kind)))


# -- fetch_status --------------------------------------------------------------------------


def test_fetch_status_finds_a_lost_authorization_by_paycores_transaction_id(
    gateway, payment_request
):
    sent, result = drive(
        gateway.fetch_status(payment_request()), (200, {"object": "list", "data": [payment()]})
    )

    assert sent[0].method == "GET"
    assert str(sent[0].url) == f"{BASE_URL}/v1/payments?reference=txn_1"
    assert "idempotency-key" not in sent[0].headers
    assert RequestPolicy.of(sent[0]) == RequestPolicy(mutation=False, idempotent=True)
    assert result.outcome is Outcome.APPROVED
    assert result.gateway_reference == "pay_1"


def test_an_authorization_the_provider_never_received_is_declined_as_not_found(
    gateway, payment_request
):
    _, result = drive(gateway.fetch_status(payment_request()), (200, {"data": []}))

    assert result.outcome is Outcome.DECLINED
    assert (result.decline_reason, result.decline_code) == (DeclineReason.NOT_FOUND, "not_found")
    assert "did not happen" in result.message


def test_fetch_status_of_a_declined_sale_reports_the_decline(gateway, payment_request):
    answer = payment("declined", operation("sale", "declined", decline_code="expired_card"))
    request = payment_request("sale", gateway_reference="pay_1")
    sent, result = drive(gateway.fetch_status(request), (200, answer))

    assert sent[0].url.path == "/v1/payments/pay_1"
    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is DeclineReason.EXPIRED_CARD


def test_fetch_status_of_a_capture_finds_the_operation_by_its_reference(gateway, payment_request):
    answer = payment(
        "partially_captured",
        operation(),
        operation("capture", amount=300, id="cap_a", reference="txn_other"),
        operation("capture", amount=400, id="cap_b", reference="txn_2"),
    )
    request = payment_request("capture", transaction_id="txn_2", gateway_reference="pay_1")
    _, result = drive(gateway.fetch_status(request), (200, answer))

    assert result.outcome is Outcome.APPROVED
    assert result.transaction_reference == "cap_b"
    assert result.amount == Money(400, "USD")


def test_a_refund_missing_from_the_payment_definitely_did_not_happen(gateway, payment_request):
    request = payment_request("refund", transaction_id="txn_9", gateway_reference="pay_1")
    _, result = drive(gateway.fetch_status(request), (200, payment("captured")))

    assert result.outcome is Outcome.DECLINED
    assert (result.decline_reason, result.decline_code) == (DeclineReason.NOT_FOUND, "not_found")


def test_a_payment_the_provider_does_not_know_is_not_found(gateway, payment_request):
    request = payment_request("void", gateway_reference="pay_x")
    _, result = drive(gateway.fetch_status(request), error(404, "resource_missing"))

    assert result.outcome is Outcome.DECLINED
    assert (result.decline_reason, result.decline_code) == (DeclineReason.NOT_FOUND, "not_found")


def test_a_404_that_is_not_the_providers_answer_is_a_protocol_error(gateway, payment_request):
    request = payment_request("void", gateway_reference="pay_1")
    with pytest.raises(GatewayProtocolError, match="not JSON"):
        drive(gateway.fetch_status(request), (404, b"Not Found"))


def test_fetch_status_cannot_ask_about_a_fetch_status(gateway, payment_request):
    with pytest.raises(InvalidRequest):
        next(gateway.fetch_status(payment_request("fetch_status")))


# -- answers that are not as documented ----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (payment(id=None), "'id' is missing or not a string"),
        (payment("authorized", operation(amount=10.5)), "'amount' is missing or not an integer"),
        (payment("authorized", operation(amount="1000")), "'amount' is missing or not an integer"),
        (payment("authorized", operation(status="weird")), "unknown operation status 'weird'"),
        (payment("authorized", operation(currency="XYZ")), "amount is not valid"),
        ([1, 2], "the answer is not a JSON object"),
    ],
)
def test_an_answer_not_as_documented_is_a_protocol_error(gateway, answer, problem, payment_request):
    with pytest.raises(GatewayProtocolError, match=problem):
        drive(gateway.authorize(payment_request()), (201, answer))


# -- webhooks ------------------------------------------------------------------------------


def event(event_type: str = "payment.captured", **operation_changes: Any) -> bytes:
    body = {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": int(RECEIVED.timestamp()) - 5,
        "data": {
            "payment": {"id": "pay_1", "status": "partially_captured"},
            "operation": operation(
                "capture", **{"id": "cap_1", "amount": 400, **operation_changes}
            ),
        },
    }
    return json.dumps(body).encode()


def delivery(body: bytes, header: str | None = None, **options: Any) -> WebhookRequest:
    if header is None:
        header = sign(body, WEBHOOK_SECRET, timestamp=int(RECEIVED.timestamp()))
    return WebhookRequest(
        method="POST",
        headers={"Dummy-Signature": header, "Content-Type": "application/json"},
        body=body,
        received_at=options.get("received_at", RECEIVED),
    )


def test_a_signed_webhook_becomes_a_normalised_event_and_a_json_reply(gateway):
    sent, handling = drive(gateway.handle_webhook(delivery(event())))

    assert sent == []
    (received,) = handling.events
    assert received.gateway == "dummy"
    assert received.event_id == "evt_1"
    assert received.event_type == "payment.captured"
    assert received.transaction_type is TransactionType.CAPTURE
    assert received.outcome is Outcome.APPROVED
    assert (received.gateway_reference, received.transaction_reference) == ("pay_1", "cap_1")
    assert received.transaction_id == "txn_1"
    assert received.amount == Money(400, "USD")
    assert received.occurred_at == datetime.fromtimestamp(RECEIVED.timestamp() - 5, UTC)
    assert handling.reply.status_code == 200
    assert json.loads(handling.reply.body) == {"received": True}
    assert handling.reply.media_type == "application/json"


def test_a_declined_event_carries_the_decline_reason(gateway):
    body = event("payment.declined", type="authorize", status="declined", decline_code="x")
    _, handling = drive(gateway.handle_webhook(delivery(body)))

    (received,) = handling.events
    assert received.transaction_type is TransactionType.AUTHORIZE
    assert received.outcome is Outcome.DECLINED
    assert received.decline_reason is DeclineReason.CARD_DECLINED
    assert received.decline_code == "x"


def test_an_event_of_an_unknown_kind_is_acknowledged_and_ignored(gateway):
    _, handling = drive(gateway.handle_webhook(delivery(event("payout.paid", type="payout"))))

    assert handling.events == ()
    assert handling.reply.status_code == 200


def test_a_webhook_with_a_bad_signature_is_refused(gateway):
    body = event()
    forged = sign(body, "whsec_guess", timestamp=int(RECEIVED.timestamp()))

    with pytest.raises(WebhookSignatureError) as caught:
        drive(gateway.handle_webhook(delivery(body, forged)))
    assert WEBHOOK_SECRET not in str(caught.value)


def test_a_webhook_body_altered_in_transit_is_refused(gateway):
    header = sign(event(), WEBHOOK_SECRET, timestamp=int(RECEIVED.timestamp()))

    with pytest.raises(WebhookSignatureError):
        drive(gateway.handle_webhook(delivery(event(amount=1), header)))


def test_a_webhook_signed_too_long_before_it_was_received_is_a_replay(gateway):
    body = event()
    stale = sign(body, WEBHOOK_SECRET, timestamp=int(RECEIVED.timestamp()) - 301)

    with pytest.raises(WebhookSignatureError, match="beyond the tolerance of 300 s"):
        drive(gateway.handle_webhook(delivery(body, stale)))


def test_the_webhook_tolerance_comes_from_the_config():
    gateway = DummyGateway.from_config({**CONFIG, "webhook_tolerance": 1000})
    body = event()
    old = sign(body, WEBHOOK_SECRET, timestamp=int(RECEIVED.timestamp()) - 900)

    _, handling = drive(gateway.handle_webhook(delivery(body, old)))
    assert len(handling.events) == 1


def test_a_webhook_signed_with_the_new_and_the_old_secret_verifies(gateway):
    body = event()
    rotating = sign(body, ["whsec_next", WEBHOOK_SECRET], timestamp=int(RECEIVED.timestamp()))

    _, handling = drive(gateway.handle_webhook(delivery(body, rotating)))
    assert len(handling.events) == 1


def test_a_signed_webhook_that_is_not_json_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="not JSON"):
        drive(gateway.handle_webhook(delivery(b"<xml/>")))


def test_an_api_key_with_a_stray_newline_is_a_configuration_error():
    from paycore.errors import ConfigurationError
    from paycore.gateways.dummy import DummyGateway

    config = {"base_url": "http://127.0.0.1:8100", "api_key": "sk_test_x\n", "webhook_secret": "w"}
    with pytest.raises(ConfigurationError, match="api_key: does not have the expected format"):
        DummyGateway.from_config(config)
