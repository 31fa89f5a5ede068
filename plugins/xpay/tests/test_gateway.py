"""XpayGateway, unit: sealed answers fed into its exchanges; the requests it sends, opened."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from paycore_xpay.envelope import seal
from paycore_xpay.gateway import XpayGateway
from paycore_xpay.keys import generate_private_key

from paycore.errors import (
    GatewayAuthError,
    GatewayProtocolError,
    GatewayRefused,
    GatewayUnavailable,
    InvalidRequest,
    OutcomeUnknown,
    UnsupportedOperation,
)
from paycore.gateways.base import Operation, RequestPolicy
from paycore.gateways.scrub import Scrubber
from paycore.money import Money
from paycore.plugins import gateway_class
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    DeclineReason,
    GatewayResult,
    NextActionKind,
    Outcome,
    PaymentMethod,
)

from .conftest import (
    BASE_URL,
    OPERATION,
    PAGE,
    PARTNER_TOKEN,
    REFUND_OPERATION,
    TERMINAL,
    TXN_ID,
    UAH_25,
    config,
    error,
    keys,
    link,
    make_request,
    opened,
    payment,
    refund_answer,
    refund_state,
    run,
    sealed,
)

UAH_10 = Money(1000, "UAH")
DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
REFUSALS = [
    ("400", DeclineReason.INVALID_REQUEST),
    ("404", DeclineReason.NOT_FOUND),
    ("422", DeclineReason.NOT_PERMITTED),
]


def ok(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return (200, sealed(data))


def assert_sent(request: httpx.Request, operation: int, *, mutation: bool) -> Any:
    """A request to XPAY's one endpoint: its Partner block, its policy; returns its Data."""
    assert (request.method, str(request.url)) == ("POST", BASE_URL)
    assert request.headers["content-type"] == "application/json"
    assert RequestPolicy.of(request) == RequestPolicy(mutation=mutation, idempotent=True)
    partner, data = opened(request)
    assert partner == {"PartnerToken": PARTNER_TOKEN, "OperationType": operation, "Locale": "uk"}
    return data


def transaction_of(data: dict[str, Any], transaction_id: str) -> None:
    """Check the Transaction block, its DateTime UTC and now; drop it from ``data``."""
    block = data.pop("Transaction")
    stamp = block.pop("DateTime")
    assert block == {"TransactionID": transaction_id, "TerminalID": TERMINAL}
    assert DATE_TIME.fullmatch(stamp)
    sent_at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)


# -- declarations --------------------------------------------------------------------------


def test_the_gateway_is_installed_as_xpay():
    assert gateway_class("xpay") is XpayGateway
    assert (XpayGateway.name, XpayGateway.display_name) == ("xpay", "XPAY")


def test_the_capabilities_declare_sales_through_the_page_and_refunds_in_uah():
    capabilities = XpayGateway.capabilities

    assert capabilities.operations == {
        Operation.PAYMENT_METHODS,
        Operation.CREATE_CHECKOUT,
        Operation.SALE,
        Operation.REFUND,
        Operation.FETCH_STATUS,
        Operation.HANDLE_WEBHOOK,
    }
    assert capabilities.checkout_kinds == {CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK}
    assert capabilities.partial_refund and capabilities.multiple_refund
    assert not (capabilities.partial_capture or capabilities.multiple_capture)
    assert capabilities.idempotency_keys and capabilities.idempotency_window is None
    assert capabilities.currencies == {"UAH"}
    assert capabilities.webhook_signing is None
    assert not capabilities.vault


@pytest.mark.parametrize("operation", ["authorize", "capture", "void"])
def test_authorize_capture_and_void_are_not_offered(gateway, operation):
    with pytest.raises(UnsupportedOperation):
        getattr(gateway, operation)(make_request(operation))


def test_a_transcript_of_a_request_keeps_no_secret(gateway):
    request = make_request(customer=Customer(email="olena@example.com"))
    (sent,), _ = run(gateway.sale(request), ok(link()))

    scrubbed = Scrubber(gateway.secret_values()).body(sent.content)

    assert PARTNER_TOKEN in sent.content.decode()  # XPAY needs it in every request
    assert PARTNER_TOKEN not in scrubbed
    for field in ("KeyAES", "Sign"):
        assert f'"{field}":"[REDACTED]"' in scrubbed
    assert keys().partner_pem not in sent.content.decode()


# -- payment methods -----------------------------------------------------------------------


def test_the_methods_are_the_configured_ones_in_their_order_for_hryvnias():
    gateway = XpayGateway.from_config(config(payment_methods=["apple_pay", "card"]))

    sent, options = run(gateway.payment_methods(UAH_25))

    assert sent == []
    assert [(o.gateway, o.type, o.display_name, o.required_fields) for o in options] == [
        ("xpay", "apple_pay", "Apple Pay", ()),
        ("xpay", "card", "Card", ()),
    ]


def test_no_method_is_offered_for_another_currency(gateway):
    assert run(gateway.payment_methods(Money(2500, "USD"))) == ([], ())


# -- sale ----------------------------------------------------------------------------------


def test_a_sale_asks_for_a_checkout_link_with_every_field_it_has(gateway):
    request = make_request(
        description="Order 17",
        return_url="https://shop.example/paid",
        cancel_url="https://shop.example/cart",
        notification_url="https://shop.example/webhooks/xpay",
        customer=Customer(email="olena@example.com"),
        payment_method=PaymentMethod(type="card", fields={"phone": "+380 (67) 123-45-67"}),
    )

    (sent,), _ = run(gateway.sale(request), ok(link()))

    data = assert_sent(sent, 10005, mutation=True)
    transaction_of(data, "txn_1")
    assert list(data) == [
        "PaymentSum",
        "Order",
        "Purpose",
        "CallBackURL",
        "Callback",
        "TTL",
        "Email",
        "Phone",
    ]
    assert data == {
        "PaymentSum": 2500,
        "Order": "p_1",
        "Purpose": "Order 17",
        "CallBackURL": "https://shop.example/webhooks/xpay",
        "Callback": {
            "PaySuccess": {"URL": "https://shop.example/paid"},
            "PayFail": {"URL": "https://shop.example/cart"},
        },
        "TTL": 15,
        "Email": "olena@example.com",
        "Phone": "380671234567",
    }
    assert b"olena" not in sent.content  # the Data travels sealed


def test_a_bare_sale_sends_only_what_it_has_and_the_configured_page_settings():
    gateway = XpayGateway.from_config(config(page_ttl=60, locale="en"))

    (sent,), _ = run(gateway.sale(make_request()), ok(link()))

    partner, data = opened(sent)
    transaction_of(data, "txn_1")
    assert partner["Locale"] == "en"
    assert data == {"PaymentSum": 2500, "Order": "p_1", "Purpose": "Payment p_1", "TTL": 60}


def test_the_configured_callback_url_serves_when_the_request_names_none():
    gateway = XpayGateway.from_config(config(callback_url="https://shop.example/xpay"))
    named = make_request(notification_url="https://shop.example/other")

    (default,), _ = run(gateway.sale(make_request(return_url="https://shop.example/r")), ok(link()))
    (override,), _ = run(gateway.sale(named), ok(link()))

    assert opened(default)[1]["CallBackURL"] == "https://shop.example/xpay"
    assert opened(default)[1]["Callback"] == {
        "PaySuccess": {"URL": "https://shop.example/r"},
        "PayFail": {"URL": "https://shop.example/r"},
    }
    assert opened(override)[1]["CallBackURL"] == "https://shop.example/other"


def test_a_sale_sends_the_customer_to_the_hosted_page(gateway):
    _, result = run(gateway.sale(make_request()), ok(link()))

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert (result.next_action.url, result.next_action.method) == (PAGE, "GET")
    assert (result.gateway_reference, result.provider_status) == (str(OPERATION), "10")
    assert result.amount is None  # nothing is taken before the customer pays


def test_a_link_xpay_failed_to_make_is_a_decline(gateway):
    _, result = run(gateway.sale(make_request()), ok(link(OperationStatus="21", URI=None)))

    assert (result.outcome, result.decline_reason) == (
        Outcome.DECLINED,
        DeclineReason.PROCESSING_ERROR,
    )


@pytest.mark.parametrize(("code", "reason"), REFUSALS)
@pytest.mark.parametrize("mirrored", [True, False], ids=["http-status", "http-200"])
def test_a_refused_sale_is_a_decline_with_xpays_code(gateway, code, reason, mirrored):
    status = int(code) if mirrored else 200

    _, result = run(gateway.sale(make_request()), (status, error(code, "PaymentSum is invalid")))

    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, reason)
    assert (result.decline_code, result.message) == (code, "PaymentSum is invalid")


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("401", GatewayAuthError),
        ("403", GatewayAuthError),
        ("409", OutcomeUnknown),
        ("500", OutcomeUnknown),
        ("503", OutcomeUnknown),
        ("429", GatewayUnavailable),
        ("302", GatewayProtocolError),
    ],
)
@pytest.mark.parametrize("mirrored", [True, False], ids=["http-status", "http-200"])
def test_a_code_that_answers_nothing_about_the_sale_is_an_error(gateway, code, raised, mirrored):
    status = int(code) if mirrored else 200

    with pytest.raises(raised) as caught:
        run(gateway.sale(make_request()), (status, error(code)))

    assert PARTNER_TOKEN not in str(caught.value)


def test_an_idempotency_conflict_says_to_reconcile(gateway):
    with pytest.raises(OutcomeUnknown, match="reconcile with fetch_status"):
        run(gateway.sale(make_request()), (409, error("409")))


def envelopes() -> list[Any]:
    good = sealed(link())
    for_xpay = sealed(link())
    forged = sealed(link(), signer=generate_private_key())
    cases = [
        ("forged", forged, "Sign is not the sender's signature"),
        ("no-sign", {**good, "Sign": ""}, "Sign is missing"),
        ("not-base64", {**good, "Data": "%%%"}, "Data is not base64"),
        ("cut-data", {**good, "Data": good["Data"][:24]}, "Data is not a whole number"),
        ("swapped-key", {**good, "KeyAES": for_xpay["KeyAES"]}, "Sign is not"),
        ("no-code", {k: v for k, v in good.items() if k != "Code"}, "'Code' is missing"),
        ("not-json", b"<html>502 Bad Gateway</html>", "not JSON"),
        ("a-list", [good], "not a JSON object"),
    ]
    return [pytest.param(answer, problem, id=name) for name, answer, problem in cases]


@pytest.mark.parametrize(("answer", "problem"), envelopes())
def test_an_answer_that_does_not_open_is_a_protocol_error(gateway, answer, problem):
    with pytest.raises(GatewayProtocolError, match=problem):
        run(gateway.sale(make_request()), (200, answer))


def test_an_answer_sealed_for_another_partner_does_not_open(gateway):
    # RSA decryption with the wrong key gives random bytes (implicit rejection), so
    # what fails after it varies: the key's size, the padding, the JSON.
    envelope = seal(link(), recipient=generate_private_key().public_key(), signer=keys().xpay)
    answer = {"Code": "200", "Message": "OK", **envelope.as_fields()}

    with pytest.raises(GatewayProtocolError, match=r"envelope does not verify: (KeyAES|Data)"):
        run(gateway.sale(make_request()), (200, answer))


def test_a_success_code_on_an_http_error_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="HTTP status is not"):
        run(gateway.sale(make_request()), (400, sealed(link())))


@pytest.mark.parametrize(
    "data",
    [
        link(OperationID="245x"),
        link(OperationID=-1),
        link(OperationID=Decimal("245786.5")),
        link(OperationStatus=None),
        link(URI=None),
        link(URI="javascript:alert(1)"),
        link(OperationStatus="1"),
        ["not", "an", "object"],
    ],
)
def test_a_link_answer_not_as_documented_is_a_protocol_error(gateway, data):
    with pytest.raises(GatewayProtocolError):
        run(gateway.sale(make_request()), ok(data))


def test_ids_and_statuses_written_as_numbers_or_strings_read_alike(gateway):
    _, result = run(
        gateway.sale(make_request()), ok(link(OperationID="245786", OperationStatus=10))
    )

    assert (result.gateway_reference, result.outcome) == ("245786", Outcome.ACTION_REQUIRED)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"amount": Money(2500, "USD")}, "UAH only"),
        ({"payment_method": PaymentMethod(type="card", token="tok_1")}, "no saved"),
        ({"payment_method": PaymentMethod(type="card", save=True)}, "no saved"),
        ({"payment_method": PaymentMethod(type="card", off_session=True)}, "no saved"),
        ({"payment_method": PaymentMethod(type="apple_pay")}, "offers card"),
        (
            {"payment_method": PaymentMethod(type="card", fields={"phone": "12-34"})},
            "phone number",
        ),
    ],
)
def test_a_sale_xpay_would_refuse_is_refused_before_anything_is_sent(gateway, changes, problem):
    exchange = gateway.sale(make_request(**changes))

    with pytest.raises(InvalidRequest, match=problem):
        next(exchange)


# -- checkout pages ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK])
def test_a_hosted_page_and_a_payment_link_are_the_same_checkout_link(gateway, kind):
    request = make_request(return_url="https://shop.example/paid")

    (sent,), session = run(gateway.create_checkout(request, kind=kind), ok(link()))

    data = assert_sent(sent, 10005, mutation=True)
    transaction_of(data, "txn_1")
    assert data["PaymentSum"] == 2500
    assert (session.reference, session.gateway_reference, session.kind) == (
        str(OPERATION),
        str(OPERATION),
        kind,
    )
    assert session.next_action.url == PAGE


def test_a_widget_is_not_offered(gateway):
    with pytest.raises(UnsupportedOperation):
        next(gateway.create_checkout(make_request(), kind=CheckoutKind.WIDGET))


def test_an_authorization_has_no_checkout_page(gateway):
    with pytest.raises(InvalidRequest, match="a sale, not a authorize"):
        next(gateway.create_checkout(make_request("authorize")))


@pytest.mark.parametrize("mirrored", [True, False], ids=["http-status", "http-200"])
def test_a_refused_checkout_page_is_gateway_refused_with_the_code(gateway, mirrored):
    with pytest.raises(GatewayRefused, match=r"the hosted page \(code 422\)") as caught:
        run(gateway.create_checkout(make_request()), (422 if mirrored else 200, error("422")))

    assert caught.value.code == "422"


def test_a_checkout_link_xpay_failed_to_make_is_refused(gateway):
    data = link(OperationStatus="21", URI=None, Reason="declined")

    with pytest.raises(GatewayRefused, match="payment link"):
        run(gateway.create_checkout(make_request(), kind=CheckoutKind.PAYMENT_LINK), ok(data))


def test_a_checkout_page_conflict_is_an_unknown_outcome(gateway):
    with pytest.raises(OutcomeUnknown):
        run(gateway.create_checkout(make_request()), (200, error("409")))


# -- fetch status --------------------------------------------------------------------------


def test_fetch_status_asks_by_the_transaction_id_and_terminal(gateway):
    (sent,), _ = run(gateway.fetch_status(make_request()), ok(payment()))

    assert assert_sent(sent, 20003, mutation=False) == {
        "TransactionID": "txn_1",
        "TerminalID": TERMINAL,
    }


def test_a_paid_sale_is_approved_with_its_amount_and_txn_id(gateway):
    _, result = run(gateway.fetch_status(make_request()), ok(payment("10", RefundedSum=1000)))

    assert result == GatewayResult(
        outcome=Outcome.APPROVED,
        gateway_reference=str(OPERATION),
        transaction_reference=TXN_ID,
        amount=UAH_25,
        provider_status="10",
    )


def test_a_sale_waiting_for_the_customer_still_sends_them_to_the_page(gateway):
    _, result = run(gateway.fetch_status(make_request()), ok(payment("1")))

    assert (result.outcome, result.next_action.url) == (Outcome.ACTION_REQUIRED, PAGE)


def test_a_sale_waiting_without_a_page_is_processing(gateway):
    _, result = run(gateway.fetch_status(make_request()), ok(payment("1", URI=None)))

    assert (result.outcome, result.provider_status) == (Outcome.PROCESSING, "1")


@pytest.mark.parametrize("status", ["0", "2", "11", "99"])
def test_a_status_not_final_yet_is_processing_and_kept(gateway, status):
    _, result = run(gateway.fetch_status(make_request()), ok(payment(status)))

    assert (result.outcome, result.provider_status) == (Outcome.PROCESSING, status)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("declined", DeclineReason.CARD_DECLINED),
        ("insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("expired_card", DeclineReason.EXPIRED_CARD),
        ("fraud_suspected", DeclineReason.FRAUD_SUSPECTED),
        ("page_expired", DeclineReason.EXPIRED),
        ("rejected_by_partner", DeclineReason.CANCELED),
        ("check_failed", DeclineReason.PROCESSING_ERROR),
        ("something_new", DeclineReason.CARD_DECLINED),
    ],
)
def test_a_failed_sale_is_declined_for_its_reason(gateway, reason, expected):
    _, result = run(gateway.fetch_status(make_request()), ok(payment("21", Reason=reason)))

    assert (result.outcome, result.decline_reason, result.decline_code) == (
        Outcome.DECLINED,
        expected,
        reason,
    )


def test_a_failed_sale_without_a_reason_is_a_card_decline_coded_21(gateway):
    _, result = run(gateway.fetch_status(make_request()), ok(payment("21", Reason=None)))

    assert (result.decline_reason, result.decline_code) == (DeclineReason.CARD_DECLINED, "21")


def test_a_refund_is_found_by_its_own_transaction_id(gateway):
    request = make_request("refund", "txn_r", amount=UAH_10)

    (sent,), result = run(gateway.fetch_status(request), ok(refund_state()))

    assert opened(sent)[1] == {"TransactionID": "txn_r", "TerminalID": TERMINAL}
    assert result == GatewayResult(
        outcome=Outcome.APPROVED,
        gateway_reference=str(OPERATION),
        transaction_reference=str(REFUND_OPERATION),
        amount=UAH_10,
        provider_status="10",
    )


def test_a_failed_refund_is_declined(gateway):
    request = make_request("refund", "txn_r", amount=UAH_10)

    _, result = run(gateway.fetch_status(request), ok(refund_state("21", Reason="limit")))

    assert (result.outcome, result.decline_reason, result.decline_code) == (
        Outcome.DECLINED,
        DeclineReason.PROCESSING_ERROR,
        "limit",
    )


@pytest.mark.parametrize("kind", ["sale", "refund"])
@pytest.mark.parametrize("mirrored", [True, False], ids=["http-status", "http-200"])
def test_an_operation_xpay_never_made_is_not_found(gateway, kind, mirrored):
    request = make_request(kind)

    _, result = run(gateway.fetch_status(request), (404 if mirrored else 200, error("404")))

    assert result == GatewayResult.not_found(request)


@pytest.mark.parametrize(
    ("kind", "data", "problem"),
    [
        ("sale", payment(TransactionID="txn_2"), "another transaction"),
        ("sale", payment(TerminalID="8"), "another transaction"),
        ("sale", refund_state(TransactionID="txn_1"), "is a 30203, not the 10005"),
        ("refund", payment(TransactionID="txn_r"), "is a 10005, not the 30203"),
        ("sale", payment(Sum="25.00"), "'Sum'"),
        ("sale", payment(Sum=None), "'Sum'"),
        ("sale", payment(TransactionID=None), "'TransactionID'"),
    ],
)
def test_a_status_answer_about_something_else_is_a_protocol_error(gateway, kind, data, problem):
    request = make_request(kind, "txn_r" if kind == "refund" else "txn_1")

    with pytest.raises(GatewayProtocolError, match=problem):
        run(gateway.fetch_status(request), ok(data))


def test_a_refused_status_request_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="code 400"):
        run(gateway.fetch_status(make_request()), (200, error("400")))


def test_xpay_failing_on_a_status_request_is_safe_to_retry(gateway):
    with pytest.raises(GatewayUnavailable, match="safe to retry"):
        run(gateway.fetch_status(make_request()), (200, error("500")))


@pytest.mark.parametrize("kind", ["authorize", "capture", "void", "fetch_status"])
def test_only_sales_and_refunds_are_asked_about(gateway, kind):
    with pytest.raises(InvalidRequest):
        next(gateway.fetch_status(make_request(kind)))


# -- refund --------------------------------------------------------------------------------


def refund_request(amount: Money = UAH_25, **changes: Any):
    return make_request("refund", "txn_r", amount=amount, **changes)


def test_a_whole_first_refund_reads_the_payment_then_refunds_without_a_sum(gateway):
    request = refund_request()

    (status, refund), result = run(
        gateway.refund(request), ok(payment()), ok(refund_answer(Sum=2500))
    )

    assert assert_sent(status, 20003, mutation=False) == {"OperationID": OPERATION}
    data = assert_sent(refund, 30203, mutation=True)
    transaction_of(data, "txn_r")
    assert data == {"TxnID": TXN_ID}
    assert result == GatewayResult(
        outcome=Outcome.APPROVED,
        gateway_reference=str(OPERATION),
        transaction_reference=str(REFUND_OPERATION),
        amount=UAH_25,
        provider_status="10",
    )


def test_a_partial_refund_names_its_sum(gateway):
    (_, refund), result = run(
        gateway.refund(refund_request(UAH_10)), ok(payment()), ok(refund_answer())
    )

    data = opened(refund)[1]
    assert list(data) == ["Transaction", "TxnID", "Sum"]
    assert (data["TxnID"], data["Sum"]) == (TXN_ID, 1000)
    assert (result.outcome, result.amount) == (Outcome.APPROVED, UAH_10)


def test_the_rest_after_an_earlier_refund_names_its_sum_once_it_is_not_found(gateway):
    rest = Money(1500, "UAH")

    (_, lookup, refund), result = run(
        gateway.refund(refund_request(rest)),
        ok(payment(RefundedSum=1000)),
        (200, error("404")),
        ok(refund_answer(Sum=1500)),
    )

    assert opened(lookup)[1] == {"TransactionID": "txn_r", "TerminalID": TERMINAL}
    assert opened(refund)[1]["Sum"] == 1500
    assert (result.outcome, result.amount) == (Outcome.APPROVED, rest)


def test_a_refund_sent_before_and_done_is_not_sent_again(gateway):
    # Its first answer was lost: XPAY counts it in RefundedSum and knows its transaction.
    sent, result = run(
        gateway.refund(refund_request(UAH_10)),
        ok(payment(RefundedSum=1000)),
        ok(refund_state()),
    )

    assert len(sent) == 2
    assert (result.outcome, result.transaction_reference) == (
        Outcome.APPROVED,
        str(REFUND_OPERATION),
    )


def test_a_refund_found_under_another_payment_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="refunds another payment"):
        run(
            gateway.refund(refund_request(UAH_10)),
            ok(payment(RefundedSum=1000)),
            ok(refund_state(ParentOperationID=1)),
        )


@pytest.mark.parametrize("status", ["1", "21"])
def test_a_refund_of_an_unpaid_payment_is_declined_without_sending_it(gateway, status):
    sent, result = run(gateway.refund(refund_request()), ok(payment(status)))

    assert len(sent) == 1
    assert (result.outcome, result.decline_reason, result.decline_code) == (
        Outcome.DECLINED,
        DeclineReason.NOT_PERMITTED,
        "not_paid",
    )


def test_a_refund_over_what_is_left_is_declined_without_sending_it(gateway):
    sent, result = run(
        gateway.refund(refund_request(Money(1600, "UAH"))),
        ok(payment(RefundedSum=1000)),
        (200, error("404")),
    )

    assert len(sent) == 2
    assert (result.decline_reason, result.decline_code) == (
        DeclineReason.AMOUNT_INVALID,
        "over_refundable",
    )
    assert "15.00 UAH" in result.message


def test_a_refund_of_a_payment_xpay_does_not_know_is_declined_not_found(gateway):
    sent, result = run(gateway.refund(refund_request()), (404, error("404")))

    assert len(sent) == 1
    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, DeclineReason.NOT_FOUND)


def test_a_refund_xpay_declines_carries_its_reason(gateway):
    _, result = run(
        gateway.refund(refund_request(UAH_10)),
        ok(payment()),
        ok(refund_answer("21", Reason="declined")),
    )

    assert (result.outcome, result.decline_reason, result.decline_code) == (
        Outcome.DECLINED,
        DeclineReason.CARD_DECLINED,
        "declined",
    )
    assert result.transaction_reference == str(REFUND_OPERATION)


@pytest.mark.parametrize(("code", "reason"), REFUSALS)
@pytest.mark.parametrize("mirrored", [True, False], ids=["http-status", "http-200"])
def test_a_refused_refund_is_a_decline(gateway, code, reason, mirrored):
    _, result = run(
        gateway.refund(refund_request(UAH_10)),
        ok(payment()),
        (int(code) if mirrored else 200, error(code, "Sum exceeds the refundable")),
    )

    assert (result.outcome, result.decline_reason, result.decline_code) == (
        Outcome.DECLINED,
        reason,
        code,
    )
    assert result.gateway_reference == str(OPERATION)


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (error("409"), OutcomeUnknown),
        (error("500"), OutcomeUnknown),
        (error("401"), GatewayAuthError),
        (sealed(refund_answer(), signer=generate_private_key()), GatewayProtocolError),
        (sealed(refund_answer(ParentOperationID=1)), GatewayProtocolError),
        (sealed(refund_answer(Sum=None)), GatewayProtocolError),
    ],
    ids=["conflict", "xpay-failed", "auth", "forged", "other-payment", "done-without-sum"],
)
def test_a_refund_answer_that_says_nothing_sure_is_an_error(gateway, answer, raised):
    with pytest.raises(raised):
        run(gateway.refund(refund_request(UAH_10)), ok(payment()), (200, answer))


@pytest.mark.parametrize("reference", [None, "cpi_1", "12 3", "-5"])
def test_a_refund_needs_the_payments_operation_id(gateway, reference):
    with pytest.raises(InvalidRequest, match="OperationID"):
        next(gateway.refund(refund_request(gateway_reference=reference)))


def test_a_refund_in_another_currency_is_refused_before_anything_is_sent(gateway):
    with pytest.raises(InvalidRequest, match="UAH only"):
        next(gateway.refund(refund_request(Money(1000, "EUR"))))


def test_a_refund_whose_payment_is_no_payment_is_a_protocol_error(gateway):
    with pytest.raises(GatewayProtocolError, match="not the 10005"):
        run(gateway.refund(refund_request()), ok(refund_state(OperationID=OPERATION)))
