"""XPAY callbacks, unit: GET query strings confirmed with 20003 before any event, the
two-step check, and the replies XPAY expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from paycore_xpay.keys import generate_private_key

from paycore.errors import GatewayProtocolError, GatewayUnavailable, WebhookSignatureError
from paycore.gateways.base import RequestPolicy
from paycore.money import Money
from paycore.transactions.model import (
    DeclineReason,
    GatewayEvent,
    Outcome,
    PaymentCheck,
    TransactionType,
    WebhookReply,
    WebhookRequest,
)

from .conftest import (
    OPERATION,
    REFUND_OPERATION,
    REFUND_TXN_ID,
    TERMINAL,
    TXN_ID,
    UAH_25,
    error,
    opened,
    payment,
    refund_state,
    run,
    sealed,
)

RECEIVED = datetime(2026, 1, 2, 3, 4, 30, tzinfo=UTC)
TXN_DATE = "20260102030405"
AT_TXN_DATE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SENTINEL = "SENTINEL_value"


def query(command: str = "pay", **changes: str | None) -> dict[str, str]:
    """A callback's parameters as XPAY sends them: by default ``pay`` of the payment."""
    params = {
        "command": command,
        "txn_id": TXN_ID,
        "txn_id_own": "txn_1",
        "terminal_id": TERMINAL,
        "operation_id": str(OPERATION),
        "sum": "2500",
        "txn_date": TXN_DATE,
        "order": "p_1",
    }
    if command == "error":
        params["reason"] = "insufficient_funds"
    if command == "refund":
        params |= {
            "txn_id": REFUND_TXN_ID,
            "txn_id_own": "txn_r",
            "operation_id": str(REFUND_OPERATION),
            "sum": "1000",
            "parent_operation_id": str(OPERATION),
        }
        del params["order"]
    if command == "check":
        del params["txn_id"]
    params |= changes
    return {name: value for name, value in params.items() if value is not None}


def delivery(
    params: dict[str, str], *, method: str = "GET", body: bytes = b"", received_at: Any = RECEIVED
) -> WebhookRequest:
    return WebhookRequest(
        method=method, headers={}, body=body, query=params, received_at=received_at
    )


def handle(gateway, params: dict[str, str], *answers: Any, **options: Any):
    """Hand ``params`` to the gateway, answering its 20003 with ``answers``."""
    return run(gateway.handle_webhook(delivery(params, **options)), *answers)


def ok(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return (200, sealed(data))


def reply_of(handling) -> dict[str, Any]:
    reply = handling.reply
    assert (reply.status_code, reply.media_type) == (200, "application/json")
    return json.loads(reply.body)


# -- confirmed callbacks -------------------------------------------------------------------


def test_a_pay_callback_confirmed_by_20003_is_a_paid_sale(gateway):
    (sent,), handling = handle(gateway, query("pay"), ok(payment("10")))

    assert RequestPolicy.of(sent) == RequestPolicy(mutation=False, idempotent=True)
    partner, data = opened(sent)
    assert (partner["OperationType"], data) == (20003, {"OperationID": OPERATION})
    assert handling.events == (
        GatewayEvent(
            gateway="xpay",
            event_id=f"pay:{TXN_ID}",
            event_type="pay",
            occurred_at=AT_TXN_DATE,
            transaction_type=TransactionType.SALE,
            outcome=Outcome.APPROVED,
            gateway_reference=str(OPERATION),
            transaction_reference=TXN_ID,
            transaction_id="txn_1",
            amount=UAH_25,
            provider_status="10",
        ),
    )
    assert handling.check is None


def test_a_confirmed_callback_is_answered_done_as_xpay_expects(gateway):
    _, handling = handle(gateway, query("pay"), ok(payment("10")))

    assert handling.reply.body == (
        b'{"txn_id":"' + TXN_ID.encode() + b'","result":"10","message":"Done",'
        b'"txn_date":"20260102030430"}'
    )
    assert reply_of(handling)["txn_date"] == RECEIVED.strftime("%Y%m%d%H%M%S")


def test_the_replys_time_is_utc_and_now_without_a_receipt_time(gateway):
    kyiv = RECEIVED.astimezone(timezone(timedelta(hours=2)))
    _, in_kyiv = handle(gateway, query("pay"), ok(payment()), received_at=kyiv)
    _, unstamped = handle(gateway, query("pay"), ok(payment()), received_at=None)

    assert reply_of(in_kyiv)["txn_date"] == "20260102030430"
    stamped = datetime.strptime(reply_of(unstamped)["txn_date"], "%Y%m%d%H%M%S")
    assert abs(datetime.now(UTC) - stamped.replace(tzinfo=UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("page_expired", DeclineReason.EXPIRED),
        ("rejected_by_partner", DeclineReason.CANCELED),
    ],
)
def test_an_error_callback_confirmed_by_20003_is_a_declined_sale(gateway, reason, expected):
    # The reason is 20003's: the callback's own is only a hint.
    (_,), handling = handle(gateway, query("error"), ok(payment("21", Reason=reason)))

    (event,) = handling.events
    assert (event.event_id, event.event_type) == (f"error:{OPERATION}", "error")
    assert (event.outcome, event.decline_reason, event.decline_code) == (
        Outcome.DECLINED,
        expected,
        reason,
    )
    assert (event.transaction_type, event.transaction_id) == (TransactionType.SALE, "txn_1")
    assert (event.amount, event.occurred_at) == (UAH_25, AT_TXN_DATE)
    assert reply_of(handling)["result"] == "10"


def test_an_error_callback_without_a_txn_id_is_known_by_its_operation(gateway):
    params = query("error", txn_id=None)

    _, handling = handle(gateway, params, ok(payment("21", TxnID=None)))

    assert handling.events[0].event_id == f"error:{OPERATION}"
    assert reply_of(handling)["txn_id"] == ""


def test_a_refund_callback_confirmed_by_20003_is_a_refund_done(gateway):
    (sent,), handling = handle(gateway, query("refund"), ok(refund_state("10")))

    assert opened(sent)[1] == {"OperationID": REFUND_OPERATION}
    assert handling.events == (
        GatewayEvent(
            gateway="xpay",
            event_id=f"refund:{REFUND_TXN_ID}",
            event_type="refund",
            occurred_at=AT_TXN_DATE,
            transaction_type=TransactionType.REFUND,
            outcome=Outcome.APPROVED,
            gateway_reference=str(OPERATION),
            transaction_reference=str(REFUND_OPERATION),
            transaction_id="txn_r",
            amount=Money(1000, "UAH"),
            provider_status="10",
        ),
    )
    assert reply_of(handling)["txn_id"] == REFUND_TXN_ID


def test_a_repeated_callback_is_the_same_event_and_another_txn_id_another(gateway):
    _, first = handle(gateway, query("pay"), ok(payment()))
    _, again = handle(gateway, query("pay"), ok(payment()))
    _, other = handle(gateway, query("pay", txn_id="9009999"), ok(payment(TxnID="9009999")))

    assert first.events == again.events
    assert other.events[0].event_id == "pay:9009999"


# -- callbacks 20003 contradicts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "data", "contradiction"),
    [
        (query("pay"), payment("21"), "its status is '21', not '10'"),
        (query("pay"), payment("1"), "its status is '1', not '10'"),
        (query("error"), payment("10"), "its status is '10', not '21'"),
        (query("refund"), refund_state("21"), "its status is '21', not '10'"),
        (query("pay", sum="250000"), payment(), "its sum is another"),
        (query("pay", txn_id="9000000"), payment(), "its TxnID is another"),
        (query("pay", txn_id_own="txn_9"), payment(), "another transaction"),
        (query("pay"), payment(OperationID=OPERATION + 1), "about another operation"),
        (query("pay"), refund_state(OperationID=OPERATION), "is not a payment"),
        (query("refund"), payment(OperationID=REFUND_OPERATION), "is not a refund"),
        (query("refund", parent_operation_id="1"), refund_state(), "another payment"),
    ],
    ids=[
        "pay-of-failed",
        "pay-of-waiting",
        "error-of-paid",
        "refund-failed",
        "sum",
        "txn-id",
        "transaction",
        "operation",
        "pay-of-refund",
        "refund-of-payment",
        "parent",
    ],
)
def test_a_callback_20003_contradicts_is_refused_and_gives_no_event(
    gateway, params, data, contradiction
):
    with pytest.raises(WebhookSignatureError, match="not confirmed by XPAY") as caught:
        handle(gateway, params, ok(data))

    assert contradiction in str(caught.value)


def test_a_callback_about_an_operation_xpay_does_not_know_is_refused(gateway):
    with pytest.raises(WebhookSignatureError, match="it has no such operation"):
        handle(gateway, query("pay"), (200, error("404")))


def test_a_callback_for_another_terminal_is_refused_without_asking(gateway):
    exchange = gateway.handle_webhook(delivery(query("pay", terminal_id="99")))

    with pytest.raises(WebhookSignatureError, match="another terminal"):
        next(exchange)


@pytest.mark.parametrize(
    "options", [{"method": "POST"}, {"body": b"command=pay"}], ids=["post", "body"]
)
def test_a_delivery_xpay_does_not_make_is_refused(gateway, options):
    with pytest.raises(WebhookSignatureError, match="GET and no body"):
        next(gateway.handle_webhook(delivery(query("pay"), **options)))


def test_an_unverifiable_confirmation_is_a_protocol_error(gateway):
    forged = sealed(payment(), signer=generate_private_key())

    with pytest.raises(GatewayProtocolError, match="envelope does not verify"):
        handle(gateway, query("pay"), (200, forged))


def test_xpay_failing_to_confirm_leaves_the_callback_for_its_retry(gateway):
    with pytest.raises(GatewayUnavailable):
        handle(gateway, query("pay"), (200, error("500")))


# -- malformed callbacks -------------------------------------------------------------------

REQUIRED = {
    "pay": ["txn_id", "txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"],
    "error": ["txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"],
    "refund": ["txn_id", "txn_id_own", "operation_id", "sum", "txn_date", "parent_operation_id"],
    "check": ["txn_id_own", "terminal_id", "operation_id", "sum", "txn_date"],
}


@pytest.mark.parametrize(
    ("command", "name"),
    [(command, name) for command, names in REQUIRED.items() for name in names],
)
def test_a_callback_missing_a_parameter_is_refused_naming_it(gateway, command, name):
    with pytest.raises(GatewayProtocolError, match=f"has no '{name}'"):
        next(gateway.handle_webhook(delivery(query(command, **{name: None}))))


def test_a_callback_without_a_command_is_refused(gateway):
    with pytest.raises(GatewayProtocolError, match="no 'command'"):
        next(gateway.handle_webhook(delivery(query(command=""))))


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("operation_id", f"{SENTINEL}1", "is not a whole number"),
        ("operation_id", "-245786", "is not a whole number"),
        ("sum", "25.00", "is not a whole number"),
        ("sum", "0", "is zero"),
        ("parent_operation_id", "x1", "is not a whole number"),
        ("txn_date", "2026-01-02 03:04:05", "is not a YYYYMMDDhhmmss time"),
        ("txn_date", "20261340250000", "is not a YYYYMMDDhhmmss time"),
        ("txn_id", f"{SENTINEL} 1", "is not an identifier"),
        ("txn_id_own", "t" * 256, "is not an identifier"),
        ("order", f"{SENTINEL}\n", "is not an identifier"),
    ],
)
def test_a_malformed_parameter_is_named_never_quoted(gateway, name, value, problem):
    with pytest.raises(GatewayProtocolError, match=f"'{name}' {problem}") as caught:
        next(gateway.handle_webhook(delivery(query("refund", **{name: value}))))

    assert SENTINEL not in str(caught.value)


def test_a_command_paycore_does_not_follow_is_acknowledged_without_an_event(gateway):
    sent, handling = handle(gateway, {"command": "notify", "txn_id": "123"})

    assert (sent, handling.events, handling.check) == ([], (), None)
    assert reply_of(handling)["txn_id"] == "123"


# -- the two-step check --------------------------------------------------------------------


def test_a_check_asks_the_ledger_without_asking_xpay(gateway):
    sent, handling = handle(gateway, query("check"))

    assert sent == []
    assert handling.events == ()
    check = handling.check
    assert isinstance(check, PaymentCheck)
    assert (check.transaction_id, check.amount, check.payment_id) == ("txn_1", UAH_25, "p_1")
    assert handling.reply == check.reject  # unless the ledger accepts


def test_a_check_is_accepted_with_result_10_and_rejected_with_21(gateway):
    _, handling = handle(gateway, query("check"))

    accept, reject = handling.check.accept, handling.check.reject
    for reply in (accept, reject):
        assert isinstance(reply, WebhookReply)
        assert (reply.status_code, reply.media_type) == (200, "application/json")
    assert json.loads(accept.body) == {
        "txn_id": "",
        "result": "10",
        "message": "Accepted",
        "txn_date": "20260102030430",
    }
    assert json.loads(reject.body) == {
        "txn_id": "",
        "result": "21",
        "message": "Rejected",
        "txn_date": "20260102030430",
    }


def test_a_check_without_an_order_names_no_payment(gateway):
    _, handling = handle(gateway, query("check", order=None))

    assert handling.check.payment_id is None


def test_a_check_for_another_terminal_is_refused(gateway):
    with pytest.raises(WebhookSignatureError, match="another terminal"):
        handle(gateway, query("check", terminal_id="99"))


def test_a_callback_dated_otherwise_than_xpay_says_is_refused(gateway):
    # Its time orders it among the payment's events: a claim like any other.
    with pytest.raises(WebhookSignatureError, match="at another time"):
        handle(gateway, query("pay", txn_date="20990102030405"), ok(payment("10")))
