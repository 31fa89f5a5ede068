"""WooshPayGateway, unit: canned answers fed into its exchanges; the requests it sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from paycore_wooshpay.gateway import WooshPayGateway
from paycore_wooshpay.methods import CURRENCIES, METHOD_TYPES

from paycore.errors import (
    GatewayProtocolError,
    GatewayRefused,
    InvalidRequest,
    OutcomeUnknown,
    UnsupportedOperation,
)
from paycore.gateways.base import Operation, RequestPolicy
from paycore.money import Money
from paycore.plugins import gateway_class
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    DeclineReason,
    NextActionKind,
    Outcome,
    PaymentMethod,
    SavedMethod,
    SaveMethodRequest,
)

API = "https://apitest.wooshpay.com"
BASIC = "Basic c2tfdGVzdF9TRU5USU5FTF9rZXlfMTo="  # base64("sk_test_SENTINEL_key_1:")
PI = "pi_1000000000000000001"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
CARD = PaymentMethod(type="card", token="pm_card_visa")
PAYCORE_IDS = {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_1"}


def error(status: int, code: str, kind: str = "invalid_request_error", **details: Any):
    return (status, {"error": {"type": kind, "code": code, "message": "refused", **details}})


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def assert_mutation(request: httpx.Request, method: str, path: str, key: str) -> None:
    """A request sent to WooshPay's test host with Basic auth and an idempotency key."""
    assert (request.method, str(request.url)) == (method, API + path)
    assert request.headers["authorization"] == BASIC
    assert request.headers["idempotency-key"] == key
    assert request.headers["content-type"] == "application/json"
    assert RequestPolicy.of(request) == RequestPolicy(mutation=True, idempotent=True)


def assert_read(request: httpx.Request, url: str) -> None:
    assert (request.method, str(request.url)) == ("GET", API + url)
    assert request.headers["authorization"] == BASIC
    assert "idempotency-key" not in request.headers
    assert RequestPolicy.of(request) == RequestPolicy(mutation=False, idempotent=True)


@pytest.fixture
def card_request(payment_request):
    def build(kind: str = "authorize", transaction_id: str = "txn_1", **changes: Any):
        return payment_request(kind, transaction_id, **{"payment_method": CARD, **changes})

    return build


def payment_method_object(**changes: Any) -> dict[str, Any]:
    return {
        "id": "pm_2",
        "object": "payment_method",
        "type": "card",
        "card": {
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
            "country": "US",
            "funding": "credit",
        },
        "customer": "cus_1",
        "created": 1_767_225_600_000,
        "livemode": False,
        "metadata": {},
        **changes,
    }


# What `payment_method_object` says, masked: no more than brand, last four and expiry.
SAVED_VISA = SavedMethod(
    gateway="wooshpay",
    token="pm_2",
    customer_reference="cus_1",
    type="card",
    brand="visa",
    last4="4242",
    exp_month=12,
    exp_year=2030,
)


# -- declarations --------------------------------------------------------------------------


def test_the_gateway_is_installed_under_its_name():
    assert gateway_class("wooshpay") is WooshPayGateway


def test_the_capabilities_declare_every_operation_one_capture_and_two_checkout_kinds():
    capabilities = WooshPayGateway.capabilities

    assert capabilities.operations == set(Operation)
    assert capabilities.vault
    assert capabilities.as_dict()["checkout_kinds"] == ["hosted_page", "payment_link"]
    assert capabilities.partial_capture and not capabilities.multiple_capture
    assert capabilities.partial_refund and capabilities.multiple_refund
    assert capabilities.idempotency_keys
    assert capabilities.idempotency_window == timedelta(hours=24)
    assert capabilities.currencies is None
    assert capabilities.webhook_signing == "hmac-sha256"
    assert capabilities.authorization_window == timedelta(days=7)


# -- payment methods -----------------------------------------------------------------------


def test_payment_methods_are_the_documented_types_offered_in_the_currency(gateway, drive):
    sent, options = drive(gateway.payment_methods(Money(2500, "EUR"), country="NL"))

    assert sent == []
    types = [option.type for option in options]
    assert types[0] == "card"
    assert {"sepa_debit", "ideal", "giropay", "sofort", "eps", "bancontact", "klarna"} <= set(types)
    assert not {"pix", "boleto", "fpx", "promptpay", "upi"} & set(types)
    assert {option.gateway for option in options} == {"wooshpay"}
    card = options[0]
    assert (card.display_name, card.required_fields) == ("Card", ("token",))


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("BRL", {"card", "unionpay", "pix", "boleto"}),
        ("MYR", {"card", "unionpay", "alipayplus", "boost", "touchngo", "fpx", "mcash", "grabpay"}),
        ("INR", {"card", "unionpay", "upi"}),
    ],
)
def test_payment_methods_leave_out_types_of_other_currencies(gateway, drive, currency, expected):
    _, options = drive(gateway.payment_methods(Money(1000, currency)))

    assert {option.type for option in options} == expected


def test_every_documented_type_has_a_currency_rule():
    assert set(CURRENCIES) == set(METHOD_TYPES)
    assert len(METHOD_TYPES) == 37


# -- authorize and sale --------------------------------------------------------------------


def test_authorize_creates_and_confirms_a_manual_intent_with_basic_auth_and_the_key(
    gateway, drive, card_request, intent
):
    sent, _ = drive(gateway.authorize(card_request()), (200, intent()))

    (request,) = sent
    assert_mutation(request, "POST", "/v1/payment_intents", "txn_1")
    assert body(request) == {
        "amount": 1000,
        "currency": "USD",
        "confirm": True,
        "capture_method": "manual",
        "payment_method": "pm_card_visa",
        "merchant_order_id": "p_1",
        "metadata": PAYCORE_IDS,
    }


def test_an_approved_authorization_names_the_intent_its_charge_and_when_it_lapses(
    gateway, drive, card_request, intent
):
    _, result = drive(gateway.authorize(card_request()), (200, intent()))

    assert result.outcome is Outcome.APPROVED
    assert (result.gateway_reference, result.transaction_reference) == (PI, "ch_1")
    assert result.amount == Money(1000, "USD")
    assert result.provider_status == "requires_capture"
    # created is in milliseconds; WooshPay releases an authorization after 7 days
    assert result.authorization_expires_at == CREATED + timedelta(days=7)
    assert result.saved_method is None


def test_an_intents_created_time_in_seconds_is_read_as_seconds(
    gateway, drive, card_request, intent
):
    answer = intent(created=int(CREATED.timestamp()))
    _, result = drive(gateway.authorize(card_request()), (200, answer))

    assert result.authorization_expires_at == CREATED + timedelta(days=7)


def test_sale_sends_an_automatic_intent_with_the_order_description_return_url_and_metadata(
    gateway, drive, card_request, intent
):
    request = card_request(
        "sale",
        order_reference="order_9",
        description="Two apples",
        return_url="https://shop.test/back",
        metadata={"colour": "red", "paycore_transaction_id": "forged"},
    )
    answer = intent("succeeded", capture_method="automatic", amount_received=1000)
    sent, result = drive(gateway.sale(request), (200, answer))

    assert body(sent[0]) == {
        "amount": 1000,
        "currency": "USD",
        "confirm": True,
        "capture_method": "automatic",
        "payment_method": "pm_card_visa",
        "description": "Two apples",
        "merchant_order_id": "order_9",
        "return_url": "https://shop.test/back",
        "metadata": {"colour": "red", **PAYCORE_IDS},  # paycore's ids win
    }
    assert result.outcome is Outcome.APPROVED
    assert result.amount == Money(1000, "USD")
    assert result.authorization_expires_at is None


def test_a_3ds_card_requires_the_customer_at_the_challenge_page(
    gateway, drive, card_request, intent
):
    answer = intent(
        "requires_action",
        next_action={
            "type": "challenge_redirect",
            "challenge_redirect": {
                "url": "https://sandbox.test/3ds/pi_1",
                "return_url": "https://shop.test/back",
            },
        },
    )
    _, result = drive(gateway.authorize(card_request()), (200, answer))

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert result.next_action.url == "https://sandbox.test/3ds/pi_1"
    assert result.amount is None


def test_a_wallet_is_sent_as_its_type_and_followed_to_its_redirect(
    gateway, drive, payment_request, intent
):
    request = payment_request("sale", payment_method=PaymentMethod(type="alipay"))
    answer = intent(
        "requires_action",
        capture_method="automatic",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://w.test/1"}},
    )
    sent, result = drive(gateway.sale(request), (200, answer))

    sent_body = body(sent[0])
    assert sent_body["payment_method_data"] == {"type": "alipay"}
    assert sent_body["payment_method_types"] == ["alipay"]
    assert "payment_method" not in sent_body
    assert result.next_action.url == "https://w.test/1"


@pytest.mark.parametrize("status", ["processing", "requires_confirmation"])
def test_an_intent_not_yet_decided_is_processing(gateway, drive, card_request, intent, status):
    _, result = drive(gateway.authorize(card_request()), (200, intent(status)))

    assert result.outcome is Outcome.PROCESSING
    assert result.provider_status == status


@pytest.mark.parametrize(
    ("code", "decline_code", "reason"),
    [
        ("card_declined", "generic_decline", DeclineReason.CARD_DECLINED),
        ("card_declined", "insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("card_declined", "lost_card", DeclineReason.LOST_OR_STOLEN),
        ("card_declined", "stolen_card", DeclineReason.LOST_OR_STOLEN),
        ("card_declined", "expired_card", DeclineReason.EXPIRED_CARD),
        ("card_declined", "incorrect_cvc", DeclineReason.INCORRECT_CVC),
        ("card_declined", "fraudulent", DeclineReason.FRAUD_SUSPECTED),
        ("card_declined", "do_not_honor", DeclineReason.CARD_DECLINED),
        ("card_declined", "an_unheard_of_reason", DeclineReason.CARD_DECLINED),
        ("expired_card", None, DeclineReason.EXPIRED_CARD),
        ("incorrect_cvc", None, DeclineReason.INCORRECT_CVC),
        ("incorrect_number", None, DeclineReason.INCORRECT_NUMBER),
        ("authentication_required", None, DeclineReason.AUTHENTICATION_FAILED),
        ("payment_intent_authentication_failure", None, DeclineReason.AUTHENTICATION_FAILED),
        ("payment_method_unactivated", None, DeclineReason.METHOD_NOT_SUPPORTED),
        ("card_velocity_exceeded", None, DeclineReason.LIMIT_EXCEEDED),
        ("processing_error", None, DeclineReason.PROCESSING_ERROR),
        ("a_new_card_code", None, DeclineReason.CARD_DECLINED),
    ],
)
def test_a_card_error_is_a_declined_result_with_the_normalised_reason(
    gateway, drive, card_request, intent, code, decline_code, reason
):
    failed = intent("requires_payment_method", latest_charge=None)
    answer = error(
        402, code, "card_error", decline_code=decline_code, payment_intent=failed, param=None
    )
    _, result = drive(gateway.authorize(card_request()), answer)

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is reason
    assert result.decline_code == (decline_code or code)
    assert result.gateway_reference == PI
    assert result.message == "refused"
    assert result.provider_status == "http_402"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (error(400, "payment_intent_unexpected_state"), DeclineReason.NOT_PERMITTED),
        (error(400, "charge_already_refunded"), DeclineReason.NOT_PERMITTED),
        (error(400, "amount_too_large"), DeclineReason.AMOUNT_INVALID),
        (error(400, "amount_too_small"), DeclineReason.AMOUNT_INVALID),
        (error(400, "currency_not_supported"), DeclineReason.CURRENCY_NOT_SUPPORTED),
        (error(400, "payment_method_unactivated"), DeclineReason.METHOD_NOT_SUPPORTED),
        (error(400, "parameter_invalid_integer"), DeclineReason.INVALID_REQUEST),
        (error(400, "parameter_missing"), DeclineReason.INVALID_REQUEST),
        (error(400, "parameter_unknown"), DeclineReason.INVALID_REQUEST),
        (error(404, "resource_missing"), DeclineReason.INVALID_REQUEST),
        (error(400, "odd", "api_error"), DeclineReason.PROCESSING_ERROR),
    ],
)
def test_a_refusal_by_the_provider_is_a_decline_not_an_exception(
    gateway, drive, card_request, answer, reason
):
    request = card_request("capture", gateway_reference=PI)
    _, result = drive(gateway.capture(request), answer)

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is reason
    assert result.decline_code == answer[1]["error"]["code"]
    assert result.gateway_reference is None
    assert result.provider_status == f"http_{answer[0]}"


@pytest.mark.parametrize("kind", ["authorize", "sale", "capture", "void", "refund"])
@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        ("idempotency_error", "idempotency_key_reused"),
        ("idempotency_error", "something_else"),
        ("invalid_request_error", "idempotency_key_reused"),
    ],
)
def test_an_idempotency_conflict_is_an_unknown_outcome_never_a_decline(
    gateway, card_request, kind, error_type, code
):
    # The first request with that key may have succeeded: "declined" would be a lie.
    exchange = getattr(gateway, kind)(card_request(kind, gateway_reference=PI))
    sent = next(exchange)
    _, answer = error(409, code, error_type)

    with pytest.raises(OutcomeUnknown) as caught:
        exchange.send(
            httpx.Response(409, json=answer, headers={"Request-Id": "req_42"}, request=sent)
        )

    unknown = caught.value
    assert (unknown.gateway, unknown.http_status, unknown.request_id) == ("wooshpay", 409, "req_42")
    assert "may have succeeded" in unknown.message


@pytest.mark.parametrize(
    ("method", "problem"),
    [
        (None, "needs a payment_method"),
        (PaymentMethod(type="card"), "card numbers never pass through paycore"),
        (PaymentMethod(type="bank_transfer"), "no payment method type 'bank_transfer'"),
    ],
)
def test_a_payment_without_a_usable_method_is_refused_before_anything_is_sent(
    gateway, payment_request, method, problem
):
    with pytest.raises(InvalidRequest, match=problem):
        next(gateway.authorize(payment_request(payment_method=method)))


def test_more_metadata_than_wooshpay_keeps_is_refused_before_anything_is_sent(
    gateway, card_request
):
    metadata = {f"key_{n}": "v" for n in range(48)}
    with pytest.raises(InvalidRequest, match="at most 47"):
        next(gateway.sale(card_request("sale", metadata=metadata)))
    assert next(gateway.sale(card_request("sale", metadata=dict(list(metadata.items())[:47]))))


def test_an_off_session_charge_of_a_saved_card_names_the_customer_and_no_return_url(
    gateway, drive, payment_request, intent
):
    request = payment_request(
        "sale",
        payment_method=PaymentMethod(type="card", token="pm_saved", off_session=True),
        customer=Customer(gateway_customer_id="cus_1"),
        return_url="https://shop.test/back",
    )
    answer = intent("succeeded", capture_method="automatic", customer="cus_1")
    sent, result = drive(gateway.sale(request), (200, answer))

    assert len(sent) == 1
    sent_body = body(sent[0])
    assert (sent_body["payment_method"], sent_body["customer"]) == ("pm_saved", "cus_1")
    assert sent_body["off_session"] is True
    assert "return_url" not in sent_body
    assert "setup_future_usage" not in sent_body
    assert result.outcome is Outcome.APPROVED


def test_an_off_session_card_that_wants_3ds_is_declined(gateway, drive, payment_request, intent):
    request = payment_request(
        "sale", payment_method=PaymentMethod(type="card", token="pm_3ds", off_session=True)
    )
    answer = error(
        402,
        "authentication_required",
        "card_error",
        payment_intent=intent("requires_payment_method", capture_method="automatic"),
    )
    _, result = drive(gateway.sale(request), answer)

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is DeclineReason.AUTHENTICATION_FAILED


# -- saving a method while paying ----------------------------------------------------------


def saving(payment_request, customer: Customer | None = None):
    return payment_request(
        payment_method=PaymentMethod(type="card", token="pm_card_visa", save=True),
        customer=customer,
    )


def test_saving_while_paying_creates_the_customer_first_then_reads_the_kept_method(
    gateway, drive, payment_request, intent
):
    request = saving(payment_request, Customer(reference="c_9", email="a@shop.test"))
    answer = intent(customer="cus_1", payment_method="pm_2", setup_future_usage="off_session")
    sent, result = drive(
        gateway.authorize(request),
        (200, {"id": "cus_1", "object": "customer", "created": 1_767_225_600_000}),
        (200, answer),
        (200, payment_method_object()),
    )

    customer, create, read = sent
    assert_mutation(customer, "POST", "/v1/customers", "txn_1:customer")
    assert body(customer) == {
        "email": "a@shop.test",
        "metadata": {"paycore_customer_reference": "c_9"},
    }
    assert_mutation(create, "POST", "/v1/payment_intents", "txn_1")
    assert body(create)["customer"] == "cus_1"
    assert body(create)["setup_future_usage"] == "off_session"
    assert_read(read, "/v1/payment_methods/pm_2")
    assert result.outcome is Outcome.APPROVED
    assert result.saved_method == SAVED_VISA


def test_saving_for_a_known_customer_creates_no_other(gateway, drive, payment_request, intent):
    request = saving(payment_request, Customer(gateway_customer_id="cus_1"))
    answer = intent(customer="cus_1", payment_method="pm_2", setup_future_usage="off_session")
    sent, result = drive(gateway.authorize(request), (200, answer), (200, payment_method_object()))

    assert [r.url.path for r in sent] == ["/v1/payment_intents", "/v1/payment_methods/pm_2"]
    assert result.saved_method.token == "pm_2"


def test_a_method_kept_for_another_customer_or_unreadable_is_not_reported_saved(
    gateway, drive, payment_request, intent
):
    request = saving(payment_request, Customer(gateway_customer_id="cus_1"))
    answer = intent(customer="cus_1", payment_method="pm_2", setup_future_usage="off_session")

    _, other = drive(
        gateway.authorize(request), (200, answer), (200, payment_method_object(customer="cus_x"))
    )
    _, unreadable = drive(gateway.authorize(request), (200, answer), error(404, "resource_missing"))

    assert other.approved and other.saved_method is None
    assert unreadable.approved and unreadable.saved_method is None


def test_a_declined_payment_saves_nothing_and_asks_nothing_more(
    gateway, drive, payment_request, intent
):
    request = saving(payment_request, Customer(gateway_customer_id="cus_1"))
    answer = error(402, "card_declined", "card_error", decline_code="generic_decline")
    sent, result = drive(gateway.authorize(request), answer)

    assert len(sent) == 1
    assert result.outcome is Outcome.DECLINED
    assert result.saved_method is None


def test_a_customer_wooshpay_refuses_to_create_declines_the_payment_unsent(
    gateway, drive, payment_request
):
    sent, result = drive(
        gateway.authorize(saving(payment_request)), error(400, "parameter_invalid_string")
    )

    assert [r.url.path for r in sent] == ["/v1/customers"]
    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is DeclineReason.INVALID_REQUEST


# -- capture, void, refund -----------------------------------------------------------------


def test_a_partial_capture_sends_the_amount_and_reads_what_was_received(
    gateway, drive, card_request, intent
):
    request = card_request(
        "capture", "txn_2", gateway_reference=PI, amount=Money(400, "USD"), final=False
    )
    answer = intent("succeeded", amount_received=400, amount_capturable=0)
    sent, result = drive(gateway.capture(request), (200, answer))

    assert_mutation(sent[0], "POST", f"/v1/payment_intents/{PI}/capture", "txn_2")
    assert body(sent[0]) == {"amount_to_capture": 400}
    assert result.outcome is Outcome.APPROVED
    assert result.amount == Money(400, "USD")
    assert (result.gateway_reference, result.transaction_reference) == (PI, "ch_1")


def test_void_cancels_the_intent_as_requested_by_the_customer(gateway, drive, card_request, intent):
    request = card_request("void", "txn_3", gateway_reference=PI)
    answer = intent("canceled", cancellation_reason="requested_by_customer", latest_charge="ch_1")
    sent, result = drive(gateway.void(request), (200, answer))

    assert_mutation(sent[0], "POST", f"/v1/payment_intents/{PI}/cancel", "txn_3")
    assert body(sent[0]) == {"cancellation_reason": "requested_by_customer"}
    assert result.outcome is Outcome.APPROVED
    assert result.amount == Money(1000, "USD")


def test_refund_sends_the_amount_as_a_string_of_minor_units(gateway, drive, card_request, refund):
    request = card_request("refund", "txn_r", gateway_reference=PI, amount=Money(500, "USD"))
    sent, result = drive(gateway.refund(request), (200, refund()))

    assert_mutation(sent[0], "POST", "/v1/refunds", "txn_r")
    assert body(sent[0]) == {
        "payment_intent": PI,
        "amount": "500",
        "reason": "requested_by_customer",
        "metadata": {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_r"},
    }
    assert result.outcome is Outcome.APPROVED
    assert (result.gateway_reference, result.transaction_reference) == (PI, "re_1")
    assert result.amount == Money(500, "USD")


@pytest.mark.parametrize(
    ("status", "failure_reason", "outcome", "reason"),
    [
        ("pending", None, Outcome.PROCESSING, None),
        ("requires_action", None, Outcome.PROCESSING, None),
        ("failed", "lost_or_stolen_card", Outcome.DECLINED, DeclineReason.LOST_OR_STOLEN),
        ("failed", "expired_or_canceled_card", Outcome.DECLINED, DeclineReason.EXPIRED_CARD),
        ("failed", "unknown", Outcome.DECLINED, DeclineReason.PROCESSING_ERROR),
        ("failed", None, Outcome.DECLINED, DeclineReason.PROCESSING_ERROR),
        ("canceled", None, Outcome.DECLINED, DeclineReason.CANCELED),
    ],
)
def test_a_refund_that_is_not_done_yet_or_failed_says_so(
    gateway, drive, card_request, refund, status, failure_reason, outcome, reason
):
    request = card_request("refund", "txn_r", gateway_reference=PI)
    answer = refund(status, failure_reason=failure_reason)
    _, result = drive(gateway.refund(request), (200, answer))

    assert result.outcome is outcome
    assert result.decline_reason is reason
    assert result.provider_status == status


def test_the_intent_id_is_escaped_in_the_path(gateway, drive, card_request, intent):
    request = card_request("void", gateway_reference="pi_1/../x")
    sent, _ = drive(gateway.void(request), (200, intent("canceled", latest_charge="ch_1")))

    assert sent[0].url.raw_path == b"/v1/payment_intents/pi_1%2F..%2Fx/cancel"


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
def test_an_operation_on_a_payment_needs_its_intent(gateway, card_request, kind):
    with pytest.raises(InvalidRequest, match="gateway_reference"):
        next(getattr(gateway, kind)(card_request(kind)))


# -- the intent's status, read for each transaction type -----------------------------------

MANUAL_AUTHORIZED = {"latest_charge": "ch_1"}
NEVER_AUTHORIZED = {"latest_charge": None}
FAILED = {"last_payment_error": {"type": "card_error", "code": "card_declined"}}
AUTOMATIC = {"capture_method": "automatic"}


@pytest.mark.parametrize(
    ("kind", "status", "changes", "outcome", "reason"),
    [
        ("authorize", "requires_payment_method", {}, Outcome.PROCESSING, None),
        ("authorize", "requires_payment_method", FAILED, Outcome.DECLINED, "card_declined"),
        ("authorize", "requires_confirmation", {}, Outcome.PROCESSING, None),
        ("authorize", "processing", {}, Outcome.PROCESSING, None),
        ("authorize", "requires_capture", {}, Outcome.APPROVED, None),
        ("authorize", "succeeded", {}, Outcome.APPROVED, None),
        ("authorize", "canceled", MANUAL_AUTHORIZED, Outcome.APPROVED, None),
        (
            "authorize",
            "canceled",
            {**NEVER_AUTHORIZED, "cancellation_reason": "abandoned"},
            Outcome.DECLINED,
            "expired",
        ),
        (
            "authorize",
            "canceled",
            {**NEVER_AUTHORIZED, "cancellation_reason": "requested_by_customer"},
            Outcome.DECLINED,
            "canceled",
        ),
        (
            "sale",
            "requires_payment_method",
            {**AUTOMATIC, **FAILED},
            Outcome.DECLINED,
            "card_declined",
        ),
        ("sale", "processing", AUTOMATIC, Outcome.PROCESSING, None),
        ("sale", "succeeded", AUTOMATIC, Outcome.APPROVED, None),
        ("sale", "requires_capture", {}, Outcome.PROCESSING, None),
        (
            "sale",
            "canceled",
            {**AUTOMATIC, "cancellation_reason": "automatic"},
            Outcome.DECLINED,
            "expired",
        ),
        ("capture", "requires_capture", {}, Outcome.DECLINED, "not_found"),
        ("capture", "processing", {}, Outcome.PROCESSING, None),
        ("capture", "succeeded", {}, Outcome.APPROVED, None),
        ("capture", "succeeded", AUTOMATIC, Outcome.DECLINED, "not_found"),
        ("capture", "canceled", MANUAL_AUTHORIZED, Outcome.DECLINED, "not_found"),
        ("void", "requires_capture", {}, Outcome.DECLINED, "not_found"),
        ("void", "succeeded", {}, Outcome.DECLINED, "not_found"),
        ("void", "canceled", MANUAL_AUTHORIZED, Outcome.APPROVED, None),
        ("void", "canceled", NEVER_AUTHORIZED, Outcome.DECLINED, "not_found"),
    ],
)
def test_fetch_status_reads_the_intent_for_the_transaction_asked_about(
    gateway, drive, card_request, intent, kind, status, changes, outcome, reason
):
    request = card_request(kind, gateway_reference=PI)
    sent, result = drive(gateway.fetch_status(request), (200, intent(status, **changes)))

    assert_read(sent[0], f"/v1/payment_intents/{PI}")
    assert result.outcome is outcome
    assert result.decline_reason == (None if reason is None else DeclineReason(reason))
    assert result.provider_status == status


def test_a_failed_attempt_on_a_hosted_page_is_not_final(gateway, drive, card_request, intent):
    # The customer may try another card on the page until the session expires.
    answer = intent(
        "requires_payment_method",
        **FAILED,
        metadata={**PAYCORE_IDS, "paycore_checkout": "hosted_page"},
    )
    _, result = drive(gateway.fetch_status(card_request(gateway_reference=PI)), (200, answer))

    assert result.outcome is Outcome.PROCESSING


def test_an_approved_capture_read_later_counts_what_was_received(
    gateway, drive, card_request, intent
):
    answer = intent("succeeded", amount_received=700)
    _, result = drive(
        gateway.fetch_status(card_request("capture", gateway_reference=PI)), (200, answer)
    )

    assert result.amount == Money(700, "USD")


# -- fetch_status: lost answers, refunds, missing objects -----------------------------------


def search_answer(*intents: dict) -> tuple[int, dict]:
    return (200, {"object": "search_result", "data": list(intents), "has_more": False})


def test_fetch_status_finds_an_intent_whose_creating_answer_was_lost(
    gateway, drive, card_request, intent
):
    sent, result = drive(gateway.fetch_status(card_request()), search_answer(intent()))

    request = sent[0]
    assert (request.method, request.url.path) == ("GET", "/v1/payment_intents/search")
    assert request.url.params["query"] == "metadata['paycore_transaction_id']:'txn_1'"
    assert "idempotency-key" not in request.headers
    assert result.outcome is Outcome.APPROVED
    assert result.gateway_reference == PI


def test_a_hosted_page_whose_answer_was_lost_is_found_again_waiting_for_the_customer(
    gateway, drive, card_request, intent
):
    metadata = {"paycore_transaction_id": "txn_1", "paycore_checkout": "hosted_page"}
    waiting = intent("requires_payment_method", payment_method=None, metadata=metadata)
    sessions = {"object": "list", "data": [session()], "has_more": False}

    sent, result = drive(
        gateway.fetch_status(card_request()), search_answer(waiting), (200, sessions)
    )

    assert (sent[1].method, sent[1].url.path) == ("GET", "/v1/checkout/sessions")
    assert dict(sent[1].url.params) == {"payment_intent": PI, "status": "open"}
    assert result.outcome is Outcome.ACTION_REQUIRED
    assert (result.gateway_reference, result.transaction_reference) == (PI, "cs_test_1")
    assert result.next_action is not None
    assert result.next_action.url == "https://sandbox.test/pay/cs_test_1"


def test_a_hosted_page_no_longer_open_leaves_its_intent_processing(
    gateway, drive, card_request, intent
):
    metadata = {"paycore_transaction_id": "txn_1", "paycore_checkout": "hosted_page"}
    waiting = intent("requires_payment_method", payment_method=None, metadata=metadata)
    none_open = {"object": "list", "data": [], "has_more": False}

    _, result = drive(
        gateway.fetch_status(card_request()), search_answer(waiting), (200, none_open)
    )

    assert (result.outcome, result.next_action) == (Outcome.PROCESSING, None)


def test_a_payment_link_paid_on_the_second_try_reads_as_the_paid_intent(
    gateway, drive, card_request, intent
):
    abandoned = intent("canceled", id="pi_old", latest_charge=None, cancellation_reason="abandoned")
    paid = intent("requires_capture", id="pi_paid")
    _, result = drive(gateway.fetch_status(card_request()), search_answer(abandoned, paid))

    assert (result.outcome, result.gateway_reference) == (Outcome.APPROVED, "pi_paid")


def test_an_intent_the_provider_never_received_is_declined_as_not_found(
    gateway, drive, card_request
):
    _, result = drive(gateway.fetch_status(card_request("sale")), search_answer())

    assert result.outcome is Outcome.DECLINED
    assert (result.decline_reason, result.decline_code) == (DeclineReason.NOT_FOUND, "not_found")
    assert "did not happen" in result.message


def test_a_quote_in_the_transaction_id_is_escaped_in_the_search(gateway, drive, card_request):
    sent, _ = drive(gateway.fetch_status(card_request(transaction_id="t'x")), search_answer())

    assert sent[0].url.params["query"] == "metadata['paycore_transaction_id']:'t\\'x'"


def test_an_intent_the_provider_does_not_know_is_not_found(gateway, drive, card_request):
    request = card_request("void", gateway_reference="pi_gone")
    _, result = drive(gateway.fetch_status(request), error(404, "resource_missing"))

    assert result.outcome is Outcome.DECLINED
    assert result.decline_reason is DeclineReason.NOT_FOUND


def test_a_404_that_is_not_the_providers_answer_is_a_protocol_error(gateway, drive, card_request):
    request = card_request("void", gateway_reference=PI)
    with pytest.raises(GatewayProtocolError, match="not JSON"):
        drive(gateway.fetch_status(request), (404, b"Not Found"))


def test_fetch_status_of_an_authorization_that_saved_the_card_reports_it(
    gateway, drive, card_request, intent
):
    answer = intent(customer="cus_1", payment_method="pm_2", setup_future_usage="off_session")
    sent, result = drive(
        gateway.fetch_status(card_request(gateway_reference=PI)),
        (200, answer),
        (200, payment_method_object()),
    )

    assert sent[1].url.path == "/v1/payment_methods/pm_2"
    assert result.saved_method.last4 == "4242"


def test_fetch_status_of_a_refund_reads_it_by_its_id(gateway, drive, card_request, refund):
    request = card_request("refund", "txn_r", gateway_reference=PI, transaction_reference="re_1")
    sent, result = drive(gateway.fetch_status(request), (200, refund("pending")))

    assert_read(sent[0], "/v1/refunds/re_1")
    assert result.outcome is Outcome.PROCESSING


def test_a_refund_id_the_provider_does_not_know_is_not_found(gateway, drive, card_request):
    request = card_request("refund", gateway_reference=PI, transaction_reference="re_x")
    _, result = drive(gateway.fetch_status(request), error(404, "resource_missing"))

    assert result.decline_reason is DeclineReason.NOT_FOUND


def test_a_refund_whose_answer_was_lost_is_found_among_the_intents_refunds(
    gateway, drive, card_request, refund
):
    request = card_request("refund", "txn_r", gateway_reference=PI)
    first_page = {
        "object": "list",
        "data": [refund(id="re_9", metadata={"paycore_transaction_id": "txn_other"})],
        "has_more": True,
    }
    second_page = {"object": "list", "data": [refund()], "has_more": False}
    sent, result = drive(gateway.fetch_status(request), (200, first_page), (200, second_page))

    assert_read(sent[0], f"/v1/refunds?payment_intent={PI}&limit=100")
    assert_read(sent[1], f"/v1/refunds?payment_intent={PI}&limit=100&starting_after=re_9")
    assert (result.outcome, result.transaction_reference) == (Outcome.APPROVED, "re_1")


def test_a_refund_missing_from_the_intents_refunds_did_not_happen(
    gateway, drive, card_request, refund
):
    request = card_request("refund", "txn_r", gateway_reference=PI)
    page = {"object": "list", "data": [refund(metadata={})], "has_more": False}
    _, result = drive(gateway.fetch_status(request), (200, page))

    assert result.decline_reason is DeclineReason.NOT_FOUND


def test_fetch_status_cannot_ask_about_a_fetch_status(gateway, card_request):
    with pytest.raises(InvalidRequest):
        next(gateway.fetch_status(card_request("fetch_status")))


# -- answers that are not as documented ----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ((200, b"<html/>"), "not JSON"),
        ((200, [1, 2]), "the answer is not a JSON object"),
        ((200, {"object": "payment_intent"}), "'status' is missing"),
        ((200, {"status": "requires_capture"}), "'id' is missing"),
        ((200, {"id": PI, "status": "weird"}), "unknown payment intent status 'weird'"),
        ((402, {"message": "no error object"}), "the answer's error is not a JSON object"),
    ],
)
def test_an_answer_not_as_documented_is_a_protocol_error(
    gateway, drive, card_request, answer, problem
):
    with pytest.raises(GatewayProtocolError, match=problem):
        drive(gateway.authorize(card_request()), answer)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"amount": 10.5}, "'amount' is missing or not an integer"),
        ({"amount": "1000"}, "'amount' is missing or not an integer"),
        ({"currency": "XYZ"}, "'amount' is not a valid amount"),
        ({"created": "yesterday"}, "'created' is missing or not an integer"),
        ({"status": "requires_action", "next_action": None}, "next_action is not a JSON object"),
        ({"latest_charge": 7}, "'latest_charge' is not a string"),
    ],
)
def test_an_intent_with_a_field_not_as_documented_is_a_protocol_error(
    gateway, drive, card_request, intent, changes, problem
):
    with pytest.raises(GatewayProtocolError, match=problem):
        drive(gateway.authorize(card_request()), (200, intent(**changes)))


# -- checkout: hosted page and payment link ------------------------------------------------


def session(**changes: Any) -> dict[str, Any]:
    return {
        "id": "cs_test_1",
        "object": "checkout.session",
        "url": "https://sandbox.test/pay/cs_test_1",
        "status": "open",
        "payment_status": "unpaid",
        "payment_intent": PI,
        "amount_subtotal": 1000,
        "amount_total": 1000,
        "currency": "USD",
        "mode": "payment",
        "client_reference_id": "txn_1",
        "expires_at": 1_767_312_000,  # seconds: 2026-01-02 00:00 UTC
        "livemode": False,
        **changes,
    }


def test_a_hosted_page_is_a_checkout_session_for_a_manual_intent(gateway, drive, payment_request):
    request = payment_request(
        payment_method=None,
        description="Two apples",
        return_url="https://shop.test/back",
        cancel_url="https://shop.test/cart",
    )
    sent, checkout = drive(gateway.create_checkout(request), (200, session()))

    assert_mutation(sent[0], "POST", "/v1/checkout/sessions", "txn_1")
    marked = {**PAYCORE_IDS, "paycore_checkout": "hosted_page"}
    assert body(sent[0]) == {
        "mode": "payment",
        "success_url": "https://shop.test/back",
        "cancel_url": "https://shop.test/cart",
        "line_items": [
            {
                "price_data": {
                    "currency": "USD",
                    "unit_amount": 1000,
                    "product_data": {"name": "Two apples"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": "txn_1",
        "metadata": PAYCORE_IDS,
        "payment_intent_data": {
            "capture_method": "manual",
            "metadata": marked,
            "description": "Two apples",
        },
    }
    expires_at = datetime(2026, 1, 2, tzinfo=UTC)
    assert checkout.kind is CheckoutKind.HOSTED_PAGE
    assert (checkout.reference, checkout.gateway_reference) == ("cs_test_1", PI)
    assert checkout.next_action.url == "https://sandbox.test/pay/cs_test_1"
    assert checkout.next_action.expires_at == checkout.expires_at == expires_at


def test_a_hosted_sale_captures_at_once_and_returns_to_the_shop_when_canceled(
    gateway, drive, card_request
):
    request = card_request(
        "sale", return_url="https://shop.test/back", customer=Customer(email="a@shop.test")
    )
    sent, _ = drive(gateway.create_checkout(request), (200, session()))

    sent_body = body(sent[0])
    assert sent_body["payment_intent_data"]["capture_method"] == "automatic"
    assert sent_body["cancel_url"] == "https://shop.test/back"
    assert sent_body["customer_email"] == "a@shop.test"
    assert sent_body["payment_method_types"] == ["card"]
    assert sent_body["line_items"][0]["price_data"]["product_data"] == {"name": "Order p_1"}


def test_a_hosted_page_that_saves_the_card_makes_the_customer_first(
    gateway, drive, payment_request
):
    request = payment_request(
        payment_method=PaymentMethod(type="card", save=True), return_url="https://shop.test/b"
    )
    sent, _ = drive(gateway.create_checkout(request), (200, {"id": "cus_1"}), (200, session()))

    assert_mutation(sent[0], "POST", "/v1/customers", "txn_1:customer")
    sent_body = body(sent[1])
    assert sent_body["customer"] == "cus_1"
    assert "customer_email" not in sent_body
    assert sent_body["payment_intent_data"]["setup_future_usage"] == "off_session"


def test_a_payment_link_is_a_product_a_price_and_a_link_each_under_its_own_key(
    gateway, drive, card_request
):
    request = card_request("sale", return_url="https://shop.test/back")
    sent, checkout = drive(
        gateway.create_checkout(request, kind=CheckoutKind.PAYMENT_LINK),
        (200, {"id": "prod_1", "object": "product", "name": "Order p_1", "active": True}),
        (200, {"id": "price_1", "object": "price", "product": "prod_1", "unit_amount": 1000}),
        (200, {"id": "plink_1", "object": "payment_link", "url": "https://sandbox.test/link/p"}),
    )

    product, price, link = sent
    assert_mutation(product, "POST", "/v1/products", "txn_1:product")
    assert body(product) == {"name": "Order p_1"}
    assert_mutation(price, "POST", "/v1/prices", "txn_1:price")
    assert body(price) == {"product": "prod_1", "unit_amount": 1000, "currency": "USD"}
    assert_mutation(link, "POST", "/v1/payment_links", "txn_1:link")
    assert body(link) == {
        "line_items": [{"price": "price_1", "quantity": 1}],
        "metadata": PAYCORE_IDS,
        "payment_intent_data": {
            "capture_method": "automatic",
            "metadata": {**PAYCORE_IDS, "paycore_checkout": "payment_link"},
        },
        "after_completion": {"type": "redirect", "redirect": {"url": "https://shop.test/back"}},
    }
    assert checkout.kind is CheckoutKind.PAYMENT_LINK
    assert (checkout.reference, checkout.gateway_reference) == ("plink_1", None)
    assert checkout.next_action.url == "https://sandbox.test/link/p"
    assert checkout.expires_at is None


def test_a_payment_link_step_refused_stops_the_exchange_naming_the_code(
    gateway, drive, card_request
):
    request = card_request(return_url="https://shop.test/back")
    with pytest.raises(GatewayRefused, match=r"price.*currency_not_supported") as caught:
        drive(
            gateway.create_checkout(request, kind=CheckoutKind.PAYMENT_LINK),
            (200, {"id": "prod_1"}),
            error(400, "currency_not_supported", param="currency"),
        )
    assert "refused" in str(caught.value)
    assert (caught.value.code, caught.value.http_status) == ("currency_not_supported", 400)


def test_a_checkout_key_in_use_is_an_unknown_outcome(gateway, drive, card_request):
    request = card_request(return_url="https://shop.test/back")
    with pytest.raises(OutcomeUnknown):
        drive(gateway.create_checkout(request), error(409, "idempotency_key_reused"))


def test_a_checkout_without_a_return_url_is_refused_before_anything_is_sent(gateway, card_request):
    for kind in (CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK):
        with pytest.raises(InvalidRequest, match="return_url"):
            next(gateway.create_checkout(card_request(), kind=kind))


def test_a_checkout_for_a_method_wooshpay_lacks_is_refused_before_anything_is_sent(
    gateway, payment_request
):
    request = payment_request(
        payment_method=PaymentMethod(type="cash", save=True), return_url="https://shop.test/back"
    )
    with pytest.raises(InvalidRequest, match="no payment method type 'cash'"):
        next(gateway.create_checkout(request))


def test_a_checkout_for_a_capture_is_refused_before_anything_is_sent(gateway, card_request):
    request = card_request("capture", return_url="https://shop.test/back")
    with pytest.raises(InvalidRequest, match="authorizes or sells"):
        next(gateway.create_checkout(request))


def test_a_widget_is_not_a_kind_of_checkout_wooshpay_makes(gateway, card_request):
    request = card_request(return_url="https://shop.test/back")
    with pytest.raises(UnsupportedOperation, match="widget"):
        next(gateway.create_checkout(request, kind=CheckoutKind.WIDGET))


# -- the vault -----------------------------------------------------------------------------


def save_request(customer: Customer) -> SaveMethodRequest:
    return SaveMethodRequest(
        idempotency_key="save_1",
        payment_method=PaymentMethod(type="card", token="pm_card_visa"),
        customer=customer,
    )


def test_saving_a_method_for_a_known_customer_attaches_it_and_keeps_masked_data(gateway, drive):
    request = save_request(Customer(gateway_customer_id="cus_1"))
    sent, saved = drive(gateway.save_method(request), (200, payment_method_object()))

    (attach,) = sent
    assert_mutation(attach, "POST", "/v1/payment_methods/pm_card_visa/attach", "save_1:attach")
    assert body(attach) == {"customer": "cus_1"}
    assert saved == SAVED_VISA  # a ready-made method is cloned into a new one (pm_2)


def test_saving_a_method_for_a_new_customer_creates_the_customer_first(gateway, drive):
    request = save_request(Customer(email="a@shop.test", name="Ann"))
    sent, saved = drive(
        gateway.save_method(request), (200, {"id": "cus_1"}), (200, payment_method_object())
    )

    customer, attach = sent
    assert_mutation(customer, "POST", "/v1/customers", "save_1:customer")
    assert body(customer) == {"email": "a@shop.test", "name": "Ann"}
    assert body(attach) == {"customer": "cus_1"}
    assert saved.customer_reference == "cus_1"


def test_a_method_wooshpay_refuses_to_attach_raises_with_its_code_not_its_message(gateway, drive):
    request = save_request(Customer(gateway_customer_id="cus_1"))
    answer = error(400, "payment_method_unexpected_state", message="it echoes SENTINEL")
    with pytest.raises(GatewayRefused, match="payment_method_unexpected_state") as caught:
        drive(gateway.save_method(request), answer)
    assert "SENTINEL" not in str(caught.value)


def test_saving_a_method_needs_its_token(gateway):
    request = SaveMethodRequest(
        idempotency_key="save_1",
        payment_method=PaymentMethod(type="card"),
        customer=Customer(gateway_customer_id="cus_1"),
    )
    with pytest.raises(InvalidRequest, match="token"):
        next(gateway.save_method(request))


def test_a_saved_method_with_a_malformed_last4_is_a_protocol_error(gateway, drive):
    request = save_request(Customer(gateway_customer_id="cus_1"))
    card = {"brand": "visa", "last4": "4242424242424242"}
    with pytest.raises(GatewayProtocolError, match="last4"):
        drive(gateway.save_method(request), (200, payment_method_object(card=card)))


def test_deleting_a_method_detaches_it(gateway, drive):
    sent, result = drive(
        gateway.delete_method(SAVED_VISA), (200, payment_method_object(customer=None))
    )

    assert_mutation(sent[0], "POST", "/v1/payment_methods/pm_2/detach", "pm_2:detach")
    assert body(sent[0]) == {}
    assert result is None


def test_deleting_a_method_wooshpay_no_longer_has_is_done(gateway, drive):
    _, result = drive(gateway.delete_method(SAVED_VISA), error(404, "resource_missing"))

    assert result is None


def test_a_detach_wooshpay_refuses_raises(gateway, drive):
    with pytest.raises(GatewayRefused, match="detach"):
        drive(gateway.delete_method(SAVED_VISA), error(400, "payment_method_unexpected_state"))
