"""The XPAY sandbox's endpoint over real HTTP: the envelope and its refusals, the fields
of each operation, the checkout link, the pair's idempotency, the status query, the
config it hands a gateway, its state and its faults (pages, refunds and callbacks are
in their own modules)."""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from paycore_xpay.envelope import encrypt_data, seal, seal_bytes
from paycore_xpay.keys import (
    generate_private_key,
    private_key_from_pem,
    private_pem,
    public_key_from_pem,
    public_pem,
)
from paycore_xpay.sandbox import DEFAULT_PARTNER_TOKEN, XpaySandbox

from paycore.errors import ConfigurationError
from plugins.xpay.tests.sandbox_client import (
    CHECKOUT,
    REFUND,
    STATUS,
    Partner,
    sandbox_keys,
    serve,
)


@pytest.fixture
def partner(paycore_sandbox_server, http, clock) -> Partner:
    return serve(paycore_sandbox_server, http, clock=clock)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def operations(partner: Partner) -> dict[str, Any]:
    found: dict[str, Any] = partner.state()["operations"]
    return found


# -- the config and the keys ---------------------------------------------------------------


def test_the_gateway_config_points_at_the_endpoint_with_the_partners_keys(partner):
    config = partner.sandbox.gateway_config("http://127.0.0.1:1/")

    assert config["base_url"] == "http://127.0.0.1:1/xpay"
    assert (config["partner_token"], config["terminal_id"], config["mode"]) == (
        DEFAULT_PARTNER_TOKEN,
        "1",
        "test",
    )
    keys = sandbox_keys()
    assert config["partner_private_key"] == keys["partner_private_key"]
    xpay = private_key_from_pem(keys["xpay_private_key"]).public_key()
    assert public_key_from_pem(config["xpay_public_key"]).public_numbers() == xpay.public_numbers()
    assert "callback_url" not in config


def test_the_gateway_config_names_the_webhook_url_as_the_callback_url(http):
    sandbox = XpaySandbox(**sandbox_keys(), webhook_url="http://127.0.0.1:9/hook")

    assert sandbox.gateway_config("http://x")["callback_url"] == "http://127.0.0.1:9/hook"


def test_without_keys_the_sandbox_makes_its_own_pair_and_the_partners():
    sandbox = XpaySandbox()
    config = sandbox.gateway_config("http://x")

    partner = private_key_from_pem(config["partner_private_key"])
    assert partner.key_size == 2048 and sandbox.xpay_key.key_size == 2048
    assert partner.public_key().public_numbers() == sandbox.partner_key.public_numbers()
    assert sandbox.xpay_key.public_key().public_numbers() != sandbox.partner_key.public_numbers()


def test_keys_that_cannot_serve_are_refused_without_being_quoted():
    small = generate_private_key(1024)
    other = generate_private_key().public_key()

    with pytest.raises(ConfigurationError) as raised:
        XpaySandbox(
            xpay_private_key=private_pem(small),
            partner_private_key=sandbox_keys()["partner_private_key"],
            partner_public_key=public_pem(other),
        )

    message = str(raised.value)
    assert "xpay_private_key: is a 1024-bit RSA key" in message
    assert "partner_public_key: is not the public half of partner_private_key" in message
    assert "BEGIN" not in message


# -- the envelope ------------------------------------------------------------------------


def test_a_sealed_request_is_answered_with_data_sealed_for_the_partner(partner):
    answer = partner.checkout(PaymentSum=12_345)

    assert answer.status == 200 and answer.message == "OK"
    assert set(answer.body) == {"Code", "Message", "Data", "KeyAES", "Sign"}
    assert set(answer.ok) == {"OperationID", "OperationStatus", "URI", "uuid"}
    assert partner.sandbox.rpc_calls[-1].as_dict() == {
        "operation_type": CHECKOUT,
        "key_padding": "pkcs1v15",
        "code": "200",
    }


def test_a_signature_by_another_key_is_401_and_nothing_is_made(partner):
    body = partner.envelope(CHECKOUT, partner.checkout_data())
    forged = seal(
        partner.checkout_data(), recipient=partner.xpay_key, signer=generate_private_key()
    )
    body["Sign"] = forged.sign

    answer = partner.send(body)

    assert (answer.code, answer.message) == ("401", "Sign is not the sender's signature of KeyAES")
    assert operations(partner) == {}


def test_a_signature_of_another_key_aes_is_401(partner):
    body = partner.envelope(CHECKOUT, partner.checkout_data())
    other = partner.envelope(CHECKOUT, partner.checkout_data())
    body["Sign"] = other["Sign"]

    assert partner.send(body).code == "401"


@pytest.mark.parametrize("token", ["", "72a8ddb8-0000-4a41-af1a-8c48ecaa4be1", 42])
def test_an_unknown_partner_token_is_401_and_never_quoted(partner, token):
    answer = partner.call(CHECKOUT, partner.checkout_data(), token=token)

    assert answer.code == "401" and "PartnerToken" in answer.message
    assert "0000" not in answer.message
    assert operations(partner) == {}


def test_a_key_aes_sealed_for_another_key_is_401(partner):
    stranger = generate_private_key().public_key()
    sealed = seal(partner.checkout_data(), recipient=stranger, signer=partner.key)
    body = {**partner.envelope(CHECKOUT, {}), **sealed.as_fields()}

    answer = partner.send(body)

    assert answer.code == "401" and answer.message.startswith("KeyAES does not decrypt")
    assert partner.sandbox.rpc_calls[-1].key_padding is None
    assert operations(partner) == {}


def test_a_key_aes_encrypted_with_oaep_is_accepted_and_logged_as_such(partner):
    key, iv = os.urandom(16), os.urandom(16)
    sha1 = hashes.SHA1()  # noqa: S303 - OAEP's usual default, the one a partner may use
    oaep = padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
    encrypted_key = partner.xpay_key.encrypt(key, oaep)
    plaintext = b'{"OperationID": 1}'
    body = {
        "Partner": {"PartnerToken": partner.token, "OperationType": STATUS, "Locale": "en"},
        "Data": b64(encrypt_data(plaintext, key=key, iv=iv)),
        "KeyAES": b64(encrypted_key),
        "Sign": b64(partner.key.sign(encrypted_key, padding.PKCS1v15(), hashes.SHA256())),
    }

    answer = partner.send(body)

    assert answer.code == "404"  # opened: the operation asked about does not exist
    assert partner.sandbox.rpc_calls[-1].as_dict() == {
        "operation_type": STATUS,
        "key_padding": "oaep",
        "code": "404",
    }


def test_data_that_is_not_json_is_400(partner):
    sealed = seal_bytes(b"PaymentSum=100", recipient=partner.xpay_key, signer=partner.key)
    body = {**partner.envelope(CHECKOUT, {}), **sealed.as_fields()}

    assert (partner.send(body).code, partner.send(body).message) == (
        "400",
        "Data does not decrypt to JSON",
    )


def test_data_that_is_not_a_json_object_is_400(partner):
    answer = partner.call(CHECKOUT, [1, 2])

    assert (answer.code, answer.message) == ("400", "Data must be a JSON object")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Data": None}, "Data is missing"),
        ({"KeyAES": ""}, "KeyAES is missing"),
        ({"Sign": "not base64!"}, "Sign is not base64"),
        ({"Data": b64(b"short")}, "Data is not a whole number of AES blocks holding an IV"),
    ],
    ids=["no-data", "no-key", "sign-not-base64", "data-not-blocks"],
)
def test_a_malformed_envelope_is_400_naming_the_field(partner, change, message):
    body = {**partner.envelope(CHECKOUT, partner.checkout_data()), **change}

    answer = partner.send(body)

    assert (answer.code, answer.message) == ("400", message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[]", "the body must be a JSON object"),
        (b"{}", "Partner is missing"),
    ],
)
def test_a_body_that_is_not_an_envelope_is_400(partner, body, message):
    answer = partner.send(body)

    assert (answer.code, answer.message) == ("400", message)


def test_an_unknown_operation_type_is_404_and_an_ill_typed_one_400(partner):
    unknown = partner.call(10101, {})
    textual = partner.call("10005", partner.checkout_data())

    assert (unknown.code, unknown.message) == ("404", "OperationType 10101 is not served")
    assert (textual.code, textual.message) == ("400", "Partner.OperationType must be an integer")


def test_an_unknown_locale_is_400(partner):
    answer = partner.call(CHECKOUT, partner.checkout_data(), Locale="de")

    assert (answer.code, answer.message) == ("400", "Partner.Locale must be one of uk, en, ru")


def test_the_endpoint_takes_only_post(partner):
    assert partner.http.get(partner.endpoint).status_code == 405


# -- [10005] fields ----------------------------------------------------------------------


def _without(name: str) -> dict[str, Any]:
    return {name: None}


def _transaction(**changes: Any) -> dict[str, Any]:
    """A ``Transaction`` field changed (a value None leaves its key out)."""
    block = {"TransactionID": "t", "TerminalID": "1", "DateTime": "2026-01-01 00:00:00"}
    block.update(changes)
    return {"Transaction": {key: value for key, value in block.items() if value is not None}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (_without("PaymentSum"), "PaymentSum is missing"),
        ({"PaymentSum": "10000"}, "PaymentSum must be an integer"),
        ({"PaymentSum": Decimal("100.50")}, "PaymentSum must be an integer"),
        ({"PaymentSum": True}, "PaymentSum must be an integer"),
        ({"PaymentSum": 0}, "PaymentSum must be from 1 to 1000000000000"),
        (_without("Transaction"), "Transaction is missing"),
        ({"Transaction": "txn_1"}, "Transaction must be a JSON object"),
        (_transaction(TransactionID=None), "Transaction.TransactionID is missing"),
        (_transaction(TransactionID=7), "Transaction.TransactionID must be a string"),
        (_transaction(TerminalID="2"), "Transaction.TerminalID is not a terminal of this partner"),
        (_transaction(DateTime=None), "Transaction.DateTime is missing"),
        (_transaction(DateTime="01.01.2026"), "Transaction.DateTime must read YYYY-MM-DD HH:MM:SS"),
        (_transaction(Extra=1), "Transaction.Extra is not a field of this operation"),
        ({"CallBackURL": "ftp://shop.test/cb"}, "CallBackURL must be an http or https URL"),
        ({"Callback": {"PaySuccess": {"URL": 5}}}, "Callback.PaySuccess.URL must be a string"),
        ({"Callback": {"PayLater": {}}}, "Callback.PayLater is not a field of this operation"),
        ({"TTL": 0}, "TTL must be from 1 to 1440"),
        ({"TTL": "15"}, "TTL must be an integer"),
        ({"Currency": "USD"}, "Currency: this terminal takes UAH only"),
        (
            {"Phone": "+380501234567"},
            "Phone must be 7 to 15 digits, in international form without +",
        ),
        ({"Order": ["o"]}, "Order must be a string"),
        ({"Amount": 100}, "Amount is not a field of this operation"),
    ],
)
def test_a_checkout_with_a_field_missing_or_ill_typed_is_400_naming_it(partner, fields, message):
    answer = partner.checkout(**fields)

    assert (answer.code, answer.message) == ("400", message)
    assert operations(partner) == {}


def test_documented_fields_the_sandbox_does_not_simulate_are_accepted(partner):
    answer = partner.checkout(
        PayType="7",
        PaymentInfo=[{"Caption": "Призначення", "Value": "order"}],
        Currency="UAH",
        Email="buyer@shop.test",
        Phone="380501234567",
        DateTime=None,
    )

    assert answer.code == "200"


def test_the_date_time_may_be_written_as_in_xpays_docs(partner):
    answer = partner.checkout(Transaction=partner.transaction(date_time="20220406 08:07:09"))

    assert answer.code == "200"


# -- [10005] the link ----------------------------------------------------------------------


def test_a_checkout_link_is_made_and_the_payment_waits_on_its_page(partner, clock):
    link = partner.link(PaymentSum=12_345, TTL=30)

    assert link["OperationStatus"] == "10"
    assert isinstance(link["OperationID"], int)
    assert link["URI"] == f"{partner.url}/checkout/{link['uuid']}"
    status = partner.operation(link["OperationID"])
    assert status == {
        "OperationID": link["OperationID"],
        "OperationType": CHECKOUT,
        "TransactionID": "txn_2",
        "TerminalID": "1",
        "OperationStatus": "1",
        "Sum": 12_345,
        "DateTime": "2026-01-01 00:00:00",
        "URI": link["URI"],
        "RefundedSum": 0,
    }
    stored = operations(partner)[str(link["OperationID"])]
    assert stored["expires"] == int(clock.now) + 30 * 60


def test_two_links_have_their_own_ids_and_pages(partner):
    first, second = partner.link(), partner.link()

    assert second["OperationID"] != first["OperationID"]
    assert second["uuid"] != first["uuid"] and second["URI"] != first["URI"]


def test_a_seeded_sandbox_repeats_its_page_ids(paycore_sandbox_server, http):
    first = serve(paycore_sandbox_server, http, seed=7).link()
    again = serve(paycore_sandbox_server, http, seed=7).link()

    assert first["uuid"] == again["uuid"]


# -- idempotency by the pair ---------------------------------------------------------------


def test_a_repeated_pair_with_the_same_data_answers_the_first_answer_again(partner):
    data = partner.checkout_data()
    first = partner.call(CHECKOUT, data).ok

    later = {**data, "Transaction": {**data["Transaction"], "DateTime": "2026-01-01 00:05:00"}}
    again = partner.call(CHECKOUT, later).ok

    assert again == first
    assert list(operations(partner)) == [str(first["OperationID"])]


def test_a_repeated_pair_answers_the_first_answer_even_after_the_payment(partner):
    data = partner.checkout_data()
    first = partner.call(CHECKOUT, data).ok
    partner.pay(first["URI"])

    assert partner.call(CHECKOUT, data).ok == first


def test_a_repeated_pair_with_other_data_is_409_and_nothing_changes(partner):
    data = partner.checkout_data()
    first = partner.call(CHECKOUT, data).ok

    conflict = partner.call(CHECKOUT, {**data, "PaymentSum": data["PaymentSum"] + 1})

    assert conflict.code == "409"
    assert "TransactionID is already used" in conflict.message
    assert list(operations(partner)) == [str(first["OperationID"])]
    assert partner.operation(first["OperationID"])["Sum"] == data["PaymentSum"]


def test_a_refund_reusing_a_payments_pair_is_409(partner):
    paid = partner.paid()

    answer = partner.refund(paid["TxnID"], 100, transaction_id=paid["TransactionID"])

    assert answer.code == "409"
    assert partner.operation(paid["OperationID"])["RefundedSum"] == 0


def test_the_same_transaction_id_on_another_terminal_is_another_pair(paycore_sandbox_server, http):
    partner = serve(paycore_sandbox_server, http, terminal_id="2")
    data = partner.checkout_data()

    assert partner.call(CHECKOUT, data).code == "200"
    assert (
        partner.status(TransactionID=data["Transaction"]["TransactionID"], TerminalID="1").code
        == "404"
    )


def test_a_refused_request_leaves_its_pair_free(partner):
    data = partner.checkout_data(PaymentSum=0)
    assert partner.call(CHECKOUT, data).code == "400"

    assert partner.call(CHECKOUT, {**data, "PaymentSum": 500}).code == "200"


# -- [20003] -----------------------------------------------------------------------------


def test_the_status_is_found_by_operation_id_and_by_the_pair(partner):
    data = partner.checkout_data()
    link = partner.call(CHECKOUT, data).ok
    pair = data["Transaction"]

    by_id = partner.operation(link["OperationID"])
    by_pair = partner.status(TransactionID=pair["TransactionID"], TerminalID=pair["TerminalID"])
    with_empty_id = partner.status(
        OperationID="", TransactionID=pair["TransactionID"], TerminalID=pair["TerminalID"]
    )

    assert by_pair.ok == by_id == with_empty_id.ok


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"OperationID": 1}, "there is no operation of this OperationID"),
        (
            {"TransactionID": "txn_none", "TerminalID": "1"},
            "there is no operation of this TransactionID and TerminalID",
        ),
    ],
)
def test_the_status_of_an_unknown_operation_is_404(partner, query, message):
    partner.link()

    answer = partner.status(**query)

    assert (answer.code, answer.message) == ("404", message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "OperationID, or TransactionID and TerminalID, is missing"),
        ({"OperationID": "245786"}, "OperationID must be an integer"),
        (
            {"OperationID": 245786, "TransactionID": "txn_1", "TerminalID": "1"},
            "send OperationID, or TransactionID and TerminalID, not both",
        ),
        ({"TransactionID": "txn_1"}, "TerminalID is missing"),
        ({"Order": "o"}, "Order is not a field of this operation"),
    ],
)
def test_a_status_query_that_is_not_one_is_400(partner, query, message):
    answer = partner.status(**query)

    assert (answer.code, answer.message) == ("400", message)


# -- [30203] fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Transaction is missing"),
        ({"TxnID": 12633661}, "TxnID must be a string"),
        ({"Sum": "100"}, "Sum must be an integer"),
        ({"Sum": -5}, "Sum must be from 1 to 1000000000000"),
        ({"OperationID": 1}, "OperationID is not a field of this operation"),
    ],
)
def test_a_refund_with_a_field_missing_or_ill_typed_is_400(partner, data, message):
    paid = partner.paid()
    base = {"Transaction": partner.transaction(), "TxnID": paid["TxnID"]}

    answer = partner.call(REFUND, {**base, **data} if data else data)

    assert (answer.code, answer.message) == ("400", message)
    assert partner.operation(paid["OperationID"])["RefundedSum"] == 0


# -- state and faults ----------------------------------------------------------------------


def test_the_state_holds_integers_and_no_key_token_or_card(partner, http):
    paid = partner.paid(Email="buyer@shop.test", Phone="380501234567")
    partner.refund(paid["TxnID"], 2_500)

    raw = http.get(partner.url + "/_sandbox/state").text
    state = partner.state()

    operation = state["operations"][str(paid["OperationID"])]
    assert (operation["sum"], operation["refunded_sum"], operation["status"]) == (
        10_000,
        2_500,
        "10",
    )
    assert all(isinstance(op["sum"], int) for op in state["operations"].values())
    for secret in (partner.token, "PRIVATE KEY", "4242424242424242", "380501234567", "buyer@"):
        assert secret not in raw


def test_the_request_log_is_served_without_content(partner, http):
    partner.link()
    partner.call(CHECKOUT, {}, token="wrong")

    calls = http.get(partner.url + "/_sandbox/rpc").json()["calls"]

    assert calls == [
        {"operation_type": CHECKOUT, "key_padding": "pkcs1v15", "code": "200"},
        {"operation_type": None, "key_padding": None, "code": "401"},
    ]


def test_an_injected_error_is_a_500_in_xpays_shape_and_nothing_is_made(partner):
    partner.sandbox.queue_faults("error")

    answer = partner.checkout()

    assert (answer.status, answer.code, answer.message) == (500, "500", "injected fault")
    assert operations(partner) == {}
    assert partner.checkout().code == "200"
