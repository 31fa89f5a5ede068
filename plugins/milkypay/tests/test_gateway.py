"""MilkyPayGateway, unit: canned answers fed into its exchanges; the requests it sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from paycore_milkypay.gateway import PROCESS_PATH, MilkyPayGateway, PaytoneGateway

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
)

from .conftest import (
    BASE_URL,
    CONFIG,
    CPI,
    PUBLIC_KEY,
    RESERVE_EXPIRES,
    RFD,
    document,
    error_body,
    make_invoice,
    make_refund,
    make_request,
)

# base64("coma_SENTINEL_account:SENTINEL_api_key_1")
BASIC = "Basic Y29tYV9TRU5USU5FTF9hY2NvdW50OlNFTlRJTkVMX2FwaV9rZXlfMQ=="
PAYCORE_IDS = {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_1"}
EXPIRES = datetime(2026, 1, 2, tzinfo=UTC)
USD_10 = Money(1000, "USD")
ALL_STATUSES = [
    "created",
    "processing",
    "process_pending",
    "processed",
    "partially_processed",
    "process_error",
    "process_failed",
    "expired",
    "terminated",
    "refunding",
    "refund_pending",
    "partially_refunded",
    "refunded",
    "refund_error",
    "refund_failed",
    "charged_back",
    "partially_charged_back",
]
PAID = ALL_STATUSES[3:5] + ALL_STATUSES[9:]
FLOW_DATA = {
    "action": f"{BASE_URL}/hpp/?cpi={CPI}",
    "method": "GET",
    "params": {},
    "metadata": {"sid": "cgi_1", "token": "t"},
}


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def assert_private(
    request: httpx.Request, method: str, path: str, *, idempotent: bool = True
) -> None:
    """A request of the Private API: the tenant's host, HTTP Basic, JSON:API accepted."""
    assert (request.method, str(request.url)) == (method, BASE_URL + path)
    assert request.headers["authorization"] == BASIC
    assert request.headers["accept"] == "application/vnd.api+json"
    mutation = method != "GET"
    assert RequestPolicy.of(request) == RequestPolicy(mutation=mutation, idempotent=idempotent)
    if mutation:
        assert request.headers["content-type"] == "application/json"


def created(*answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return (201, document(*answer))


def held(**attributes: Any) -> tuple[int, dict[str, Any]]:
    return created(make_invoice("processing", **attributes))


def sale_invoice(status: str, **attributes: Any) -> dict[str, Any]:
    return make_invoice(status, payment_flow="charge", **attributes)


# -- declarations --------------------------------------------------------------------------


def test_both_brands_are_installed_under_their_names():
    assert gateway_class("milkypay") is MilkyPayGateway
    assert gateway_class("paytone") is PaytoneGateway
    assert issubclass(PaytoneGateway, MilkyPayGateway)
    assert (PaytoneGateway.name, PaytoneGateway.display_name) == ("paytone", "Paytone")
    assert (MilkyPayGateway.name, MilkyPayGateway.display_name) == ("milkypay", "MilkyPay")


def test_the_capabilities_declare_every_operation_but_a_vault_and_three_checkout_kinds():
    capabilities = MilkyPayGateway.capabilities

    assert capabilities.operations == set(Operation) - {
        Operation.SAVE_METHOD,
        Operation.DELETE_METHOD,
    }
    assert not capabilities.vault
    assert capabilities.as_dict()["checkout_kinds"] == ["hosted_page", "payment_link", "widget"]
    assert capabilities.partial_capture and not capabilities.multiple_capture
    assert capabilities.partial_refund and capabilities.multiple_refund
    assert capabilities.idempotency_keys
    assert capabilities.idempotency_window is None
    assert capabilities.currencies is None
    assert capabilities.webhook_signing == "sha1-base64"
    assert capabilities.authorization_window == timedelta(days=7)


def test_the_process_path_is_the_proposed_one():
    assert PROCESS_PATH == "/api/payment-invoices/{id}/process"


def test_the_vault_operations_are_unsupported(gateway):
    with pytest.raises(UnsupportedOperation):
        gateway.save_method(None)


# -- payment methods -----------------------------------------------------------------------

SERVICES = {
    "data": {
        "currency": "USD",
        "amount": Decimal("10.00"),
        "test_mode": True,
        "services": {
            "payment_card_usd_hpp": {
                "code": "payment_card_usd_hpp",
                "method": "payment_card",
                "name": "Bank card",
                "currency": "USD",
                "min_amount": Decimal("0.5"),
                "max_amount": 10000,
                "fields": [],
            },
            "test_usd": {
                "code": "test_usd",
                "method": "test",
                "currency": "USD",
                "fields": [
                    {"key": "comment", "type": "string", "required": False, "position": 2},
                    {"key": "second", "type": "string", "required": True, "position": 1},
                    {
                        "key": "test_details_success_rate",
                        "type": "integer",
                        "label": {"en": "Success rate (%)"},
                        "regexp": "^(100|[1-9]?[0-9])$",
                        "required": True,
                        "position": 0,
                    },
                ],
            },
        },
    }
}


def test_payment_methods_ask_the_public_api_with_the_public_key_and_no_credentials(gateway, drive):
    sent, _ = drive(gateway.payment_methods(Money(10055, "USD"), country="UA"), (200, SERVICES))

    (request,) = sent
    assert (request.method, str(request.url)) == (
        "POST",
        f"{BASE_URL}/public-api/payment-prerequest",
    )
    assert "authorization" not in request.headers
    assert request.content == (
        b'{"public_key":"pk_test_SENTINEL_public","currency":"USD","amount":100.55}'
    )
    # A POST that changes nothing: safe to resend.
    assert RequestPolicy.of(request) == RequestPolicy(mutation=False, idempotent=True)


def test_each_service_is_an_option_with_its_required_fields_in_position_order(gateway, drive):
    _, options = drive(gateway.payment_methods(USD_10), (200, SERVICES))

    card, test = options
    assert (card.gateway, card.type, card.display_name) == (
        "milkypay",
        "payment_card_usd_hpp",
        "Bank card",
    )
    assert card.required_fields == ()
    assert (card.min_amount, card.max_amount) == (Money(50, "USD"), Money(1_000_000, "USD"))
    assert (test.type, test.display_name) == ("test_usd", "test")  # no name: the method
    assert test.required_fields == ("test_details_success_rate", "second")
    assert (test.min_amount, test.max_amount) == (None, None)


def test_a_yen_amount_is_asked_for_as_a_whole_number(gateway, drive):
    sent, _ = drive(gateway.payment_methods(Money(1000, "JPY")), (200, {"data": {"services": {}}}))

    assert b'"currency":"JPY","amount":1000}' in sent[0].content


def test_a_currency_the_account_does_not_take_has_no_methods(gateway, drive):
    answer = (422, error_body("currency_not_supported"))

    assert drive(gateway.payment_methods(Money(1000, "JPY")), answer)[1] == ()


def test_another_refusal_of_the_services_list_is_raised(gateway, drive):
    with pytest.raises(GatewayRefused) as caught:
        drive(gateway.payment_methods(USD_10), (422, error_body("invalid_value", detail="x")))

    assert (caught.value.code, caught.value.http_status) == ("invalid_value", 422)
    assert caught.value.request_id == "req_1"


def test_a_service_limit_with_more_decimals_than_its_currency_is_a_protocol_error(gateway, drive):
    services = {"data": {"services": {"s": {"code": "s", "min_amount": Decimal("0.001")}}}}

    with pytest.raises(GatewayProtocolError, match="'min_amount'"):
        drive(gateway.payment_methods(USD_10), (200, services))


# -- authorize and sale: the request -------------------------------------------------------


def test_authorize_creates_a_delayed_charge_invoice_with_the_service_and_exact_amount(
    gateway, drive
):
    request = make_request(
        amount=Money(10055, "USD"),
        description="Two apples",
        customer=Customer(reference="cus_9", email="a@shop.example", name="Ann"),
        return_url="https://shop.example/back",
        cancel_url="https://shop.example/cancel",
        notification_url="https://shop.example/callbacks/milkypay",
        metadata={"colour": "red", "paycore_transaction_id": "forged"},
    )
    sent, _ = drive(gateway.authorize(request), held(amount=Decimal("100.55")))

    (sent_request,) = sent
    assert_private(sent_request, "POST", "/api/payment-invoices")
    assert b'"amount":100.55,' in sent_request.content
    assert body(sent_request) == {
        "data": {
            "type": "payment-invoices",
            "attributes": {
                "reference_id": "txn_1",
                "service": "test_usd",
                "service_fields": {"test_details_success_rate": "100"},
                "currency": "USD",
                "amount": 100.55,
                "flow": "delayed_charge",
                "test_mode": True,
                "description": "Two apples",
                "customer": {"reference_id": "cus_9", "email": "a@shop.example", "name": "Ann"},
                "metadata": {"colour": "red", **PAYCORE_IDS},  # paycore's ids win
                "return_url": "https://shop.example/back",
                "return_urls": {
                    "success": "https://shop.example/back",
                    "fail": "https://shop.example/cancel",
                    "pending": "https://shop.example/back",
                },
                "callback_url": "https://shop.example/callbacks/milkypay",
            },
        }
    }


def test_a_sale_is_a_charge_and_sends_only_what_it_has(gateway, drive):
    request = make_request(
        "sale",
        amount=Money(29, "USD"),
        payment_method=None,
        customer=Customer(email="a@shop.example"),  # no reference: no customer
    )
    sent, _ = drive(gateway.sale(request), created(sale_invoice("created")))

    assert sent[0].content == (
        b'{"data":{"type":"payment-invoices","attributes":{"reference_id":"txn_1",'
        b'"currency":"USD","amount":0.29,"flow":"charge","test_mode":true,'
        b'"metadata":{"paycore_payment_id":"p_1","paycore_transaction_id":"txn_1"}}}}'
    )


def test_the_cancel_url_defaults_to_the_return_url(gateway, drive):
    request = make_request(return_url="https://shop.example/back")
    sent, _ = drive(gateway.authorize(request), held())

    assert body(sent[0])["data"]["attributes"]["return_urls"] == {
        "success": "https://shop.example/back",
        "fail": "https://shop.example/back",
        "pending": "https://shop.example/back",
    }


@pytest.mark.parametrize(
    ("money", "wire"),
    [(Money(1000, "JPY"), b'"currency":"JPY","amount":1000,'), (Money(1005, "KWD"), b":1.005,")],
)
def test_amounts_are_major_units_in_every_currency(gateway, drive, money, wire):
    sent, _ = drive(
        gateway.sale(make_request("sale", amount=money)), created(sale_invoice("created"))
    )

    assert wire in sent[0].content


@pytest.mark.parametrize(
    "method",
    [
        PaymentMethod(type="payment_card_usd_hpp", token="tok_saved"),
        PaymentMethod(type="payment_card_usd_hpp", save=True),
        PaymentMethod(type="payment_card_usd_hpp", off_session=True),
    ],
)
@pytest.mark.parametrize("kind", ["authorize", "sale"])
def test_a_saved_method_is_refused_before_anything_is_sent(gateway, method, kind):
    with pytest.raises(InvalidRequest, match="keeps no saved payment methods"):
        next(getattr(gateway, kind)(make_request(kind, payment_method=method)))


def test_the_mode_of_the_config_is_sent_on_every_invoice(drive):
    live = MilkyPayGateway.from_config({**CONFIG, "public_key": "pk_live_SENTINEL"})
    sent, _ = drive(live.sale(make_request("sale")), created(sale_invoice("created")))

    assert body(sent[0])["data"]["attributes"]["test_mode"] is False


# -- authorize and sale: the answer --------------------------------------------------------


def test_a_held_delayed_charge_is_an_approved_authorization_until_the_reserve_expires(
    gateway, drive
):
    _, result = drive(gateway.authorize(make_request()), held(reserved_amount=Decimal("10.00")))

    assert result.outcome is Outcome.APPROVED
    assert result.gateway_reference == CPI
    assert result.amount == USD_10
    assert result.provider_status == "processing"
    assert result.authorization_expires_at == datetime.fromtimestamp(RESERVE_EXPIRES, UTC)
    assert result.decline_code is None


def test_a_hosted_card_service_sends_the_customer_to_the_page(gateway, drive):
    invoice = make_invoice("created", flow="hpp", flow_data=FLOW_DATA)
    _, result = drive(gateway.authorize(make_request()), created(invoice))

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert (result.next_action.url, result.next_action.method) == (FLOW_DATA["action"], "GET")
    assert result.next_action.expires_at == EXPIRES


def test_a_get_redirect_with_parameters_carries_them_in_its_url(gateway, drive):
    flow_data = {"action": f"{BASE_URL}/hpp/", "method": "GET", "params": {"cpi": CPI, "n": 7}}
    _, result = drive(
        gateway.sale(make_request("sale")), created(sale_invoice("created", flow_data=flow_data))
    )

    assert result.next_action.url == f"{BASE_URL}/hpp/?cpi={CPI}&n=7"


def test_a_post_redirect_submits_its_parameters_as_a_form(gateway, drive):
    flow_data = {"action": "https://acs.example/3ds", "method": "POST", "params": {"PaReq": "x"}}
    _, result = drive(
        gateway.authorize(make_request()), created(make_invoice("created", flow_data=flow_data))
    )

    action = result.next_action
    assert (action.kind, action.url, action.method) == (
        NextActionKind.REDIRECT,
        "https://acs.example/3ds",
        "POST",
    )
    assert dict(action.parameters) == {"PaReq": "x"}


# What an invoice says about the authorization that created it, status by status.
AUTHORIZE_OUTCOMES = {
    "created": (Outcome.PROCESSING, None),
    "processing": (Outcome.APPROVED, None),  # held
    "process_pending": (Outcome.PROCESSING, None),
    "process_error": (Outcome.PROCESSING, None),
    "process_failed": (Outcome.DECLINED, DeclineReason.CARD_DECLINED),
    "expired": (Outcome.DECLINED, DeclineReason.EXPIRED),
    "terminated": (Outcome.DECLINED, DeclineReason.CANCELED),
    **dict.fromkeys(PAID, (Outcome.APPROVED, None)),
}
# And about a sale: a reserve means nothing.
SALE_OUTCOMES = {**AUTHORIZE_OUTCOMES, "processing": (Outcome.PROCESSING, None)}


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_status_answers_an_authorization(gateway, drive, status):
    _, result = drive(gateway.authorize(make_request()), created(make_invoice(status)))

    assert (result.outcome, result.decline_reason) == AUTHORIZE_OUTCOMES[status]
    assert (result.gateway_reference, result.provider_status) == (CPI, status)
    if result.outcome is Outcome.APPROVED:
        assert result.amount == USD_10


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_status_answers_a_sale(gateway, drive, status):
    invoice = sale_invoice(status, reserved_amount=Decimal("10.00"))
    _, result = drive(gateway.sale(make_request("sale")), created(invoice))

    assert (result.outcome, result.decline_reason) == SALE_OUTCOMES[status]
    assert result.provider_status == status
    assert result.authorization_expires_at is None


def test_a_sale_paid_in_part_is_approved_for_what_was_paid(gateway, drive):
    invoice = sale_invoice("partially_processed", processed_amount=Decimal("7.50"))
    _, result = drive(gateway.sale(make_request("sale")), created(invoice))

    assert (result.outcome, result.amount) == (Outcome.APPROVED, Money(750, "USD"))


def test_a_voided_hold_still_answers_its_authorization_as_approved(gateway, drive):
    invoice = make_invoice("terminated", resolution="voided")
    _, result = drive(gateway.authorize(make_request()), created(invoice))

    assert (result.outcome, result.amount) == (Outcome.APPROVED, USD_10)


@pytest.mark.parametrize(
    ("resolution", "reason"),
    [
        ("declined", DeclineReason.CARD_DECLINED),
        ("insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("expired_card", DeclineReason.EXPIRED_CARD),
        ("authentication_failed", DeclineReason.AUTHENTICATION_FAILED),
        ("fraud_suspected", DeclineReason.FRAUD_SUSPECTED),
        ("a_new_resolution", DeclineReason.CARD_DECLINED),
    ],
)
def test_a_failed_payment_is_declined_for_its_resolution(gateway, drive, resolution, reason):
    invoice = sale_invoice("process_failed", resolution=resolution)
    _, result = drive(gateway.sale(make_request("sale")), created(invoice))

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)
    assert result.decline_code == resolution
    assert result.provider_status == "process_failed"


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        (["currency_not_supported"], DeclineReason.CURRENCY_NOT_SUPPORTED),
        (["amount_too_small"], DeclineReason.AMOUNT_INVALID),
        (["amount_too_large"], DeclineReason.AMOUNT_INVALID),
        (["service_not_found"], DeclineReason.METHOD_NOT_SUPPORTED),
        (["invalid_status"], DeclineReason.NOT_PERMITTED),
        (["service_fields_invalid"], DeclineReason.INVALID_REQUEST),
        (["required", "currency_not_supported"], DeclineReason.INVALID_REQUEST),
        (["test_mode_mismatch"], DeclineReason.INVALID_REQUEST),
    ],
)
def test_a_refused_invoice_is_a_decline_for_its_first_code(gateway, drive, codes, reason):
    answer = (422, error_body(*codes, detail="the first problem"))
    _, result = drive(gateway.sale(make_request("sale")), answer)

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)
    assert result.decline_code == codes[0]
    assert result.message == "the first problem"
    assert (result.provider_status, result.gateway_reference) == ("http_422", None)


def test_error_codes_alone_are_read_when_there_are_no_errors(gateway, drive):
    answer = (422, {"request_id": "req_2", "error_type": "validation", "error_codes": ["required"]})
    _, result = drive(gateway.sale(make_request("sale")), answer)

    assert (result.decline_code, result.message) == ("required", None)


def test_a_resent_invoice_is_looked_up_by_its_reference_never_declined(gateway, drive):
    found = {"data": [make_invoice()], "included": [], "meta": {"total": 1}}
    sent, result = drive(
        gateway.authorize(make_request()),
        (422, error_body("duplicate_reference_id")),
        (200, found),
    )

    lookup = sent[1]
    assert_private(lookup, "GET", "/api/payment-invoices?filter%5Breference_id%5D=txn_1")
    assert lookup.url.params["filter[reference_id]"] == "txn_1"
    assert (result.outcome, result.gateway_reference, result.amount) == (
        Outcome.APPROVED,
        CPI,
        USD_10,
    )


def test_a_duplicate_that_cannot_be_found_is_an_unknown_outcome(gateway, drive):
    empty = {"data": [], "included": [], "meta": {"total": 0}}

    with pytest.raises(OutcomeUnknown, match="reconcile with fetch_status") as caught:
        drive(
            gateway.sale(make_request("sale")),
            (422, error_body("duplicate_reference_id")),
            (200, empty),
        )

    assert caught.value.request_id == "req_1"


def test_an_invoice_answered_without_201_is_not_taken_as_created(gateway, drive):
    with pytest.raises(GatewayProtocolError, match="without 201 Created"):
        drive(gateway.sale(make_request("sale")), (200, document(sale_invoice("processed"))))


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"status": "paid"}, "unknown invoice status 'paid'"),
        ({"amount": "10.00"}, "'amount' is not a number"),
        ({"amount": Decimal("10.001")}, "more decimals than USD"),
        ({"updated": None}, "'updated'"),
        ({"flow_data": {"method": "GET"}}, "'action'"),
        ({"test_mode": "yes"}, "'test_mode' is not a boolean"),
    ],
)
def test_an_invoice_not_as_documented_is_a_protocol_error(gateway, drive, changes, problem):
    invoice = make_invoice()
    invoice["attributes"].update(changes)

    with pytest.raises(GatewayProtocolError, match=problem):
        drive(gateway.authorize(make_request()), created(invoice))


def test_an_answer_that_is_no_invoice_is_a_protocol_error(gateway, drive):
    with pytest.raises(GatewayProtocolError, match="not a payment-invoices resource"):
        drive(gateway.authorize(make_request()), created(make_refund()))


# -- create_checkout -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "flow"), [("sale", "charge"), ("authorize", "delayed_charge")])
def test_a_hosted_page_is_an_invoice_without_a_service_and_its_redirect(gateway, drive, kind, flow):
    invoice = make_invoice("created", payment_flow=flow, flow="hpp", flow_data=FLOW_DATA)
    request = make_request(kind, payment_method=None)
    sent, session = drive(gateway.create_checkout(request), created(invoice))

    assert_private(sent[0], "POST", "/api/payment-invoices")
    attributes = body(sent[0])["data"]["attributes"]
    assert attributes["flow"] == flow
    assert "service" not in attributes
    assert (session.reference, session.gateway_reference) == (CPI, CPI)
    assert session.kind is CheckoutKind.HOSTED_PAGE
    assert session.next_action.url == FLOW_DATA["action"]
    assert session.expires_at == EXPIRES


def test_a_hosted_page_for_a_chosen_service_sends_it(gateway, drive):
    invoice = make_invoice("created", flow_data=FLOW_DATA)
    method = PaymentMethod(type="payment_card_usd_hpp")
    sent, _ = drive(gateway.create_checkout(make_request(payment_method=method)), created(invoice))

    attributes = body(sent[0])["data"]["attributes"]
    assert attributes["service"] == "payment_card_usd_hpp"
    assert "service_fields" not in attributes


def test_an_invoice_without_flow_data_is_sent_to_its_hosted_page(gateway, drive):
    _, session = drive(
        gateway.create_checkout(make_request("sale")), created(sale_invoice("processed"))
    )

    assert session.next_action.url == f"{BASE_URL}/hpp/?cpi={CPI}"


def test_a_refused_hosted_page_is_raised_with_its_code_not_its_detail(gateway, drive):
    answer = (422, error_body("currency_not_supported", detail="SENTINEL echoed input"))

    with pytest.raises(GatewayRefused) as caught:
        drive(gateway.create_checkout(make_request("sale")), answer)

    refused = caught.value
    assert (refused.code, refused.http_status, refused.gateway) == (
        "currency_not_supported",
        422,
        "milkypay",
    )
    assert "SENTINEL" not in str(refused)


def test_a_payment_link_is_built_without_a_request(gateway, drive):
    request = make_request(
        "sale",
        amount=Money(1050, "USD"),
        payment_method=None,
        description="Order 7",
        return_url="https://shop.example/back?x=1",
        customer=Customer(reference="cus_9", email="a@shop.example"),
        metadata={"colour": "red"},
    )
    sent, session = drive(gateway.create_checkout(request, kind=CheckoutKind.PAYMENT_LINK))

    assert sent == []
    assert (session.kind, session.reference, session.gateway_reference) == (
        CheckoutKind.PAYMENT_LINK,
        "txn_1",
        None,
    )
    url = urlsplit(session.next_action.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{BASE_URL}/hpp/"
    assert parse_qsl(url.query) == [
        ("public_key", PUBLIC_KEY),
        ("amount", "10.50"),
        ("currency", "USD"),
        ("reference_id", "txn_1"),
        ("description", "Order 7"),
        ("return_url", "https://shop.example/back?x=1"),
        ("metadata[colour]", "red"),
        ("metadata[paycore_payment_id]", "p_1"),
        ("metadata[paycore_transaction_id]", "txn_1"),
        ("customer[reference_id]", "cus_9"),
        ("customer[email]", "a@shop.example"),
    ]


def test_a_payment_link_for_a_service_names_it_and_its_fields(gateway, drive):
    request = make_request("sale", amount=Money(1000, "JPY"))
    _, session = drive(gateway.create_checkout(request, kind=CheckoutKind.PAYMENT_LINK))

    query = dict(parse_qsl(urlsplit(session.next_action.url).query))
    assert query["amount"] == "1000"
    assert query["service"] == "test_usd"
    assert query["service_fields[test_details_success_rate]"] == "100"


def test_a_widget_gets_the_hosted_pages_parameters(gateway, drive):
    locale = MilkyPayGateway.from_config({**CONFIG, "locale": "uk"})
    request = make_request("sale", amount=Money(1050, "USD"), payment_method=None)
    sent, session = drive(locale.create_checkout(request, kind=CheckoutKind.WIDGET))

    assert sent == []
    assert (session.kind, session.reference, session.gateway_reference) == (
        CheckoutKind.WIDGET,
        "txn_1",
        None,
    )
    widget = session.next_action
    assert (widget.kind, widget.url) == (
        NextActionKind.WIDGET,
        f"{BASE_URL}/widget/payment-widget.js",
    )
    assert dict(widget.parameters) == {
        "base_url": f"{BASE_URL}/hpp/",
        "public_key": PUBLIC_KEY,
        "amount": "10.50",
        "currency": "USD",
        "reference_id": "txn_1",
        "locale": "uk",
        "target": "iframe",
        "selector_id": "payment_widget",
    }


@pytest.mark.parametrize("kind", [CheckoutKind.PAYMENT_LINK, CheckoutKind.WIDGET])
def test_a_link_or_widget_only_charges(gateway, kind):
    with pytest.raises(InvalidRequest, match="charges at once; authorize through a hosted page"):
        next(gateway.create_checkout(make_request("authorize"), kind=kind))


@pytest.mark.parametrize("kind", [CheckoutKind.PAYMENT_LINK, CheckoutKind.WIDGET])
def test_a_link_or_widget_refuses_a_saved_method(gateway, kind):
    method = PaymentMethod(type="payment_card_usd_hpp", token="tok_saved")
    with pytest.raises(InvalidRequest, match="keeps no saved payment methods"):
        next(gateway.create_checkout(make_request("sale", payment_method=method), kind=kind))


# -- capture and void ----------------------------------------------------------------------


USD_6 = Money(600, "USD")


def capture_request(amount: Money = USD_6, **changes: Any):
    return make_request("capture", "txn_2", amount=amount, gateway_reference=CPI, **changes)


def void_request(**changes: Any):
    return make_request("void", "txn_3", gateway_reference=CPI, **changes)


def captured(amount: Decimal = Decimal("6.00")) -> tuple[int, dict[str, Any]]:
    invoice = make_invoice("processed", processed_amount=amount, unreserved=True)
    return (200, document(invoice))


def test_capture_processes_the_hold_for_the_amount_under_its_own_reference(gateway, drive):
    sent, result = drive(gateway.capture(capture_request()), captured())

    assert_private(sent[0], "POST", f"/api/payment-invoices/{CPI}/process")
    assert sent[0].content == (
        b'{"data":{"type":"payment-invoices","attributes":'
        b'{"action":"capture","amount":6.00,"reference_id":"txn_2"}}}'
    )
    assert result.outcome is Outcome.APPROVED
    assert result.amount == Money(600, "USD")
    assert (result.gateway_reference, result.transaction_reference) == (CPI, f"{CPI}:capture")
    assert result.provider_status == "processed"


def test_void_releases_the_hold_under_its_own_reference(gateway, drive):
    voided = make_invoice("terminated", resolution="voided")
    sent, result = drive(gateway.void(void_request()), (200, document(voided)))

    assert_private(sent[0], "POST", f"/api/payment-invoices/{CPI}/process")
    assert sent[0].content == (
        b'{"data":{"type":"payment-invoices","attributes":'
        b'{"action":"void","reference_id":"txn_3"}}}'
    )
    assert (result.outcome, result.amount) == (Outcome.APPROVED, USD_10)
    assert result.transaction_reference == f"{CPI}:void"
    assert result.provider_status == "terminated"


@pytest.mark.parametrize("operation", ["capture", "void"])
def test_capture_and_void_need_the_invoice(gateway, operation):
    request = make_request(operation, "txn_2")

    with pytest.raises(InvalidRequest, match=r"needs the payment's gateway_reference \(cpi_…\)"):
        next(getattr(gateway, operation)(request))


@pytest.mark.parametrize(
    ("operation", "answer", "reason"),
    [
        ("capture", (422, error_body("invalid_status")), DeclineReason.NOT_PERMITTED),
        ("capture", (422, error_body("amount_exceeds_reserved")), DeclineReason.AMOUNT_INVALID),
        ("capture", (404, error_body("not_found", status=404)), DeclineReason.NOT_FOUND),
        ("void", (422, error_body("invalid_status")), DeclineReason.NOT_PERMITTED),
        ("void", (404, error_body("not_found", status=404)), DeclineReason.NOT_FOUND),
    ],
)
def test_a_refused_capture_or_void_is_a_decline(gateway, drive, operation, answer, reason):
    request = capture_request() if operation == "capture" else void_request()
    _, result = drive(getattr(gateway, operation)(request), answer)

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)
    assert result.gateway_reference == CPI
    assert result.provider_status == f"http_{answer[0]}"


def test_a_resent_capture_reads_the_invoice_and_finds_it_done(gateway, drive):
    sent, result = drive(
        gateway.capture(capture_request()),
        (422, error_body("duplicate_reference_id")),
        captured(),
    )

    assert_private(sent[1], "GET", f"/api/payment-invoices/{CPI}")
    assert (result.outcome, result.amount) == (Outcome.APPROVED, Money(600, "USD"))


@pytest.mark.parametrize("operation", ["capture", "void"])
def test_a_resent_capture_or_void_of_a_hold_still_held_did_not_happen(gateway, drive, operation):
    request = capture_request() if operation == "capture" else void_request()
    _, result = drive(
        getattr(gateway, operation)(request),
        (422, error_body("duplicate_reference_id")),
        (200, document(make_invoice("processing"))),
    )

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, DeclineReason.NOT_FOUND)
    assert (result.gateway_reference, result.provider_status) == (CPI, "processing")


@pytest.mark.parametrize(
    ("operation", "status", "resolution"),
    [
        ("capture", "terminated", "voided"),
        ("capture", "expired", None),
        ("void", "processed", "ok"),
        ("void", "refunded", "ok"),
        ("void", "terminated", "terminated"),
    ],
)
def test_a_capture_or_void_of_an_invoice_without_a_hold_is_not_permitted(
    gateway, drive, operation, status, resolution
):
    request = capture_request() if operation == "capture" else void_request()
    invoice = make_invoice(status, resolution=resolution)
    _, result = drive(getattr(gateway, operation)(request), (200, document(invoice)))

    assert (result.outcome, result.decline_reason) == (
        Outcome.DECLINED,
        DeclineReason.NOT_PERMITTED,
    )
    assert result.decline_code == (resolution or status)


def test_a_capture_the_platform_is_still_processing_is_processing(gateway, drive):
    invoice = make_invoice("process_pending", reserved_amount=0)
    _, result = drive(gateway.capture(capture_request()), (200, document(invoice)))

    assert result.outcome is Outcome.PROCESSING


# -- refund --------------------------------------------------------------------------------


def refund_request(**changes: Any):
    return make_request(
        "refund", "txn_r", amount=Money(500, "USD"), gateway_reference=CPI, **changes
    )


def refunded(status: str = "processed", **attributes: Any) -> tuple[int, dict[str, Any]]:
    return (201, document(make_refund(status, **attributes), make_invoice("partially_refunded")))


def test_refund_sends_the_invoice_the_amount_and_its_reference(gateway, drive):
    sent, result = drive(gateway.refund(refund_request(description="Returned")), refunded())

    assert_private(sent[0], "POST", f"/api/payment-invoices/{CPI}/refund")
    assert sent[0].content == (
        b'{"data":{"type":"refund","attributes":{"invoiceId":"cpi_AAAAAAAAAAAAAAAA",'
        b'"amount":5.00,"reference_id":"txn_r","description":"Returned"}}}'
    )
    assert (result.outcome, result.amount) == (Outcome.APPROVED, Money(500, "USD"))
    assert (result.gateway_reference, result.transaction_reference) == (CPI, RFD)
    assert result.provider_status == "processed"


@pytest.mark.parametrize(
    ("status", "resolution", "outcome", "reason"),
    [
        ("processing", None, Outcome.PROCESSING, None),
        ("process_failed", None, Outcome.DECLINED, DeclineReason.PROCESSING_ERROR),
        ("process_failed", "declined", Outcome.DECLINED, DeclineReason.CARD_DECLINED),
    ],
)
def test_a_refund_not_processed_yet_or_failed(gateway, drive, status, resolution, outcome, reason):
    _, result = drive(gateway.refund(refund_request()), refunded(status, resolution=resolution))

    assert (result.outcome, result.decline_reason) == (outcome, reason)
    assert result.provider_status == status
    assert result.transaction_reference == RFD


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((422, error_body("amount_exceeds_refundable")), DeclineReason.AMOUNT_INVALID),
        ((422, error_body("invalid_status")), DeclineReason.NOT_PERMITTED),
        ((422, error_body("required")), DeclineReason.INVALID_REQUEST),
        ((404, error_body("not_found", status=404)), DeclineReason.NOT_FOUND),
    ],
)
def test_a_refused_refund_is_a_decline(gateway, drive, answer, reason):
    _, result = drive(gateway.refund(refund_request()), answer)

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)


def test_a_resent_refund_is_found_among_its_invoices_refunds(gateway, drive):
    other = make_refund(id="rfd_other", reference_id="txn_other", amount=Decimal("1.00"))
    answer = document(make_invoice("partially_refunded"), other, make_refund())
    sent, result = drive(
        gateway.refund(refund_request()),
        (422, error_body("duplicate_reference_id")),
        (200, answer),
    )

    assert_private(sent[1], "GET", f"/api/payment-invoices/{CPI}")
    assert (result.outcome, result.transaction_reference, result.amount) == (
        Outcome.APPROVED,
        RFD,
        Money(500, "USD"),
    )


def test_a_resent_refund_that_cannot_be_found_is_an_unknown_outcome(gateway, drive):
    with pytest.raises(OutcomeUnknown):
        drive(
            gateway.refund(refund_request()),
            (422, error_body("duplicate_reference_id")),
            (200, document(make_invoice("processed"))),
        )


# -- fetch_status --------------------------------------------------------------------------


def test_fetch_status_asks_about_another_transaction(gateway):
    with pytest.raises(InvalidRequest, match="another transaction's type"):
        next(gateway.fetch_status(make_request("fetch_status")))


@pytest.mark.parametrize("kind", ["authorize", "sale"])
def test_a_payment_whose_answer_was_lost_is_found_by_its_reference(gateway, drive, kind):
    other = make_invoice(id="cpi_other", reference_id="txn_1x")
    found = {"data": [other, make_invoice("processed")], "included": [], "meta": {"total": 2}}
    sent, result = drive(gateway.fetch_status(make_request(kind)), (200, found))

    (lookup,) = sent
    assert_private(lookup, "GET", "/api/payment-invoices?filter%5Breference_id%5D=txn_1")
    assert (result.outcome, result.gateway_reference) == (Outcome.APPROVED, CPI)


def test_a_payment_never_created_is_not_found(gateway, drive):
    empty = {"data": [], "included": [], "meta": {"total": 0}}
    _, result = drive(gateway.fetch_status(make_request("sale")), (200, empty))

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, DeclineReason.NOT_FOUND)


def test_a_known_invoice_is_read_by_its_id(gateway, drive):
    request = make_request(gateway_reference=CPI)
    sent, result = drive(gateway.fetch_status(request), (200, document(make_invoice())))

    assert_private(sent[0], "GET", f"/api/payment-invoices/{CPI}")
    assert result.outcome is Outcome.APPROVED


def test_an_invoice_the_platform_does_not_know_is_not_found(gateway, drive):
    request = make_request("sale", gateway_reference=CPI)
    answer = (404, error_body("not_found", status=404))
    _, result = drive(gateway.fetch_status(request), answer)

    assert (result.decline_reason, result.gateway_reference) == (DeclineReason.NOT_FOUND, CPI)


def test_a_404_that_is_not_the_platforms_is_a_protocol_error(gateway, drive):
    request = make_request("sale", gateway_reference=CPI)

    with pytest.raises(GatewayProtocolError):
        drive(gateway.fetch_status(request), (404, b"<html>Not Found</html>"))


@pytest.mark.parametrize(
    ("kind", "invoice", "outcome"),
    [
        ("capture", make_invoice("processing"), Outcome.DECLINED),  # still held: not found
        ("capture", make_invoice("partially_refunded"), Outcome.APPROVED),
        ("void", make_invoice("terminated", resolution="voided"), Outcome.APPROVED),
        ("void", make_invoice("processing"), Outcome.DECLINED),
    ],
)
def test_a_capture_or_void_is_read_from_its_invoice(gateway, drive, kind, invoice, outcome):
    request = make_request(kind, "txn_2", gateway_reference=CPI)
    sent, result = drive(gateway.fetch_status(request), (200, document(invoice)))

    assert_private(sent[0], "GET", f"/api/payment-invoices/{CPI}")
    assert result.outcome is outcome
    if outcome is Outcome.DECLINED:
        assert result.decline_reason is DeclineReason.NOT_FOUND


@pytest.mark.parametrize(
    "changes",
    [{"transaction_reference": RFD}, {"transaction_id": "txn_r"}],
    ids=["by id", "by reference_id"],
)
def test_a_refund_is_found_among_its_invoices_refunds(gateway, drive, changes):
    fields = {"transaction_id": "txn_unrelated", **changes}
    request = make_request("refund", gateway_reference=CPI, **fields)
    other = make_refund("processing", id="rfd_other", reference_id="txn_other")
    answer = document(make_invoice("partially_refunded"), other, make_refund())
    sent, result = drive(gateway.fetch_status(request), (200, answer))

    assert_private(sent[0], "GET", f"/api/payment-invoices/{CPI}")
    assert (result.outcome, result.transaction_reference) == (Outcome.APPROVED, RFD)


def test_a_refund_of_another_invoice_is_not_taken_for_this_ones(gateway, drive):
    request = make_request("refund", "txn_r", gateway_reference=CPI)
    stray = make_refund(invoice_id="cpi_other")
    _, result = drive(gateway.fetch_status(request), (200, document(make_invoice(), stray)))

    assert result.decline_reason is DeclineReason.NOT_FOUND


@pytest.mark.parametrize(
    "answer",
    [(200, document(make_invoice("processed"))), (404, error_body("not_found", status=404))],
    ids=["no such refund", "no such invoice"],
)
def test_a_refund_the_platform_has_no_record_of_is_not_found(gateway, drive, answer):
    request = make_request("refund", "txn_r", gateway_reference=CPI)
    _, result = drive(gateway.fetch_status(request), answer)

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, DeclineReason.NOT_FOUND)


def test_reads_are_safe_to_resend(gateway):
    request = next(gateway.fetch_status(make_request("sale")))

    assert RequestPolicy.of(request) == RequestPolicy(mutation=False, idempotent=True)
    assert "content-type" not in request.headers
