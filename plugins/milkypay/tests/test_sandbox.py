"""The MilkyPay sandbox over real HTTP: keys, validation, invoice documents, exact
amounts, duplicates, the test service, the Public API, reads, state and faults (the
status machine is in test_sandbox_operations)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from paycore_milkypay.sandbox import (
    DEFAULT_API_KEY,
    DEFAULT_COMMERCE_ACCOUNT_ID,
    DEFAULT_PUBLIC_KEY,
    MilkyPaySandbox,
    PaytoneSandbox,
)

from paycore.gateways.json_codec import decode_json
from plugins.milkypay.tests.sandbox_client import (
    AUTH,
    Merchant,
    basic,
    body_of,
    by_test_service,
    errors_of,
    serve,
)


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


# -- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        None,
        basic(DEFAULT_COMMERCE_ACCOUNT_ID, "wrong_key"),
        basic("coma_other", DEFAULT_API_KEY),
        "Basic !!!",
        f"Bearer {DEFAULT_API_KEY}",
    ],
    ids=["none", "wrong-key", "wrong-account", "garbled", "bearer"],
)
def test_the_private_api_refuses_a_request_without_the_account_and_key_401(merchant, auth):
    created = merchant.post("/api/payment-invoices", {"data": {}}, auth=auth)
    read = merchant.get("/api/payment-invoices", auth=auth)

    assert errors_of(created) == (401, ["invalid_credentials"])
    assert decode_json(created.content)["error_type"] == "authentication"
    assert read.status_code == 401
    assert "wrong_key" not in created.text
    assert merchant.state()["invoices"] == {}


@pytest.mark.parametrize("key", [None, "pk_test_other", 42])
def test_the_public_api_refuses_an_unknown_public_key_401(merchant, key):
    body = {"public_key": key, "currency": "USD", "amount": Decimal("10.00")}

    for path in ("/public-api/payment-prerequest", "/public-api/payment-invoices"):
        assert errors_of(merchant.post(path, body, auth=None)) == (401, ["invalid_public_key"])
    assert merchant.state()["invoices"] == {}


def test_every_answer_carries_a_request_id(merchant):
    answers = [
        merchant.create(),
        merchant.create(currency="XXX"),
        merchant.get("/api/payment-invoices/cpi_missing"),
        merchant.get("/api/payment-invoices", auth=None),
        merchant.browse("/hpp/?cpi=cpi_missing"),
        merchant.browse("/widget/payment-widget.js"),
    ]

    ids = [answer.headers.get("x-request-id", "") for answer in answers]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)


def test_the_gateway_config_holds_the_published_test_keys(merchant):
    config = merchant.sandbox.gateway_config("http://127.0.0.1:1")

    assert config == {
        "base_url": "http://127.0.0.1:1",
        "public_key": DEFAULT_PUBLIC_KEY,
        "commerce_account_id": DEFAULT_COMMERCE_ACCOUNT_ID,
        "api_key": DEFAULT_API_KEY,
        "secret_key": merchant.sandbox.webhook_secrets[0],
        "test_mode": True,
    }


def test_paytone_is_the_same_platform_under_its_own_name_and_keys(paycore_sandbox_server, http):
    paytone = serve(paycore_sandbox_server, http, PaytoneSandbox)
    config = paytone.sandbox.gateway_config(paytone.url)

    assert (PaytoneSandbox.name, MilkyPaySandbox.name) == ("paytone", "milkypay")
    assert (config["public_key"], config["commerce_account_id"]) == (
        "pk_test_paytone",
        "coma_paytone",
    )
    assert paytone.create().status_code == 401  # MilkyPay's account is not Paytone's
    auth = basic(config["commerce_account_id"], config["api_key"])
    created = paytone.post(
        "/api/payment-invoices",
        {"data": {"attributes": {"reference_id": "r", "currency": "UAH", "amount": 5}}},
        auth=auth,
    )
    assert body_of(created, 201)["data"]["attributes"]["amount"] == 5


# -- creating an invoice ---------------------------------------------------------------


def test_an_invoice_without_a_service_waits_on_the_hosted_page(merchant):
    created = merchant.create(
        reference_id="order-1",
        amount=Decimal("100.55"),
        description="Order 1",
        metadata={"paycore_payment_id": "p_1"},
        customer={"reference_id": "cus-1", "email": "a@shop.test"},
        callback_url="https://shop.test/cb",
    )

    body = body_of(created, 201)
    invoice, attributes = body["data"], body["data"]["attributes"]
    assert body["included"] == []
    assert invoice["type"] == "payment-invoices" and invoice["id"].startswith("cpi_")
    assert len(invoice["id"]) == len("cpi_") + 16
    assert invoice["links"] == {"self": f"/api/payment-invoices/{invoice['id']}"}
    assert invoice["relationships"] == {
        "payment-service": {"data": None},
        "refunds": {"data": []},
    }
    assert attributes["status"] == "created" and attributes["resolution"] is None
    assert (attributes["flow"], attributes["payment_flow"]) == ("hpp", "charge")
    assert attributes["flow_data"]["action"] == f"{merchant.url}/hpp/?cpi={invoice['id']}"
    assert attributes["flow_data"]["method"] == "GET"
    assert attributes["flow_data"]["metadata"]["sid"].startswith("cgi_")
    assert (attributes["reference_id"], attributes["description"]) == ("order-1", "Order 1")
    assert attributes["metadata"] == {"paycore_payment_id": "p_1"}
    assert attributes["customer"] == {"reference_id": "cus-1", "email": "a@shop.test"}
    assert attributes["test_mode"] is True and attributes["source"] == "api"
    assert attributes["created"] == 1_767_225_600
    assert attributes["expires"] == 1_767_225_600 + 24 * 3600
    assert b'"amount":100.55' in created.content


@pytest.mark.parametrize(
    ("amount", "currency", "written"),
    [
        (Decimal("0.29"), "USD", b'"amount":0.29,'),
        (Decimal("1.005"), "KWD", b'"amount":1.005,'),
        (1000, "JPY", b'"amount":1000,'),
        (Decimal("100.55"), "EUR", b'"amount":100.55,'),
    ],
)
def test_amounts_are_kept_exact_in_every_currency(merchant, amount, currency, written):
    created = merchant.create(amount=amount, currency=currency, **by_test_service(100, currency))

    assert written in created.content
    attributes = body_of(created, 201)["data"]["attributes"]
    assert attributes["processed_amount"] == amount
    cpi = body_of(created, 201)["data"]["id"]
    assert merchant.sandbox.snapshot()["invoices"][cpi]["amount"] == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(Decimal("1.005"), "USD"), (Decimal("10.5"), "JPY"), (Decimal("0.0001"), "KWD")],
)
def test_more_decimals_than_the_currency_has_is_refused_never_rounded(merchant, amount, currency):
    response = merchant.create(amount=amount, currency=currency)

    assert errors_of(response) == (422, ["invalid_amount_precision"])
    assert merchant.state()["invoices"] == {}


def test_a_422_lists_every_problem_with_its_pointer(merchant):
    body = {
        "data": {
            "type": "payment-invoices",
            "attributes": {"amount": "10.00", "currency": "XXX", "flow": "later", "extra": 1},
        }
    }

    response = merchant.post("/api/payment-invoices", body)

    status, codes = errors_of(response)
    assert status == 422
    assert codes == [
        "invalid_value",
        "required",
        "currency_not_supported",
        "invalid_type",
        "invalid_value",
    ]
    errors = decode_json(response.content)["errors"]
    assert [e["source"]["pointer"].rsplit("/", 1)[1] for e in errors] == [
        "extra",
        "reference_id",
        "currency",
        "amount",
        "flow",
    ]
    assert decode_json(response.content)["error_type"] == "validation"
    assert errors[0]["title"] == "Validation error"


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ({"test_mode": False}, "test_mode_mismatch"),
        ({"currency": "CHF"}, "currency_not_supported"),
        ({"amount": Decimal("0")}, "invalid_value"),
        ({"amount": -5}, "invalid_value"),
        ({"service": "payment_card_eur_hpp"}, "service_not_found"),
        ({"service": "bitcoin_btc_hpp"}, "service_not_found"),
        ({"service": "payment_card_usd_hpp", "amount": Decimal("0.29")}, "amount_too_small"),
        ({"service": "payment_card_usd_hpp", "amount": 10001}, "amount_too_large"),
        ({"amount": 100001}, "amount_too_large"),
        ({"service": "test_usd"}, "service_fields_invalid"),
        (by_test_service(101), "service_fields_invalid"),
        (by_test_service("ten"), "service_fields_invalid"),
        ({**by_test_service(50), "service_fields": {"x": "1"}}, "service_fields_invalid"),
        ({"return_url": "javascript:alert(1)"}, "invalid_value"),
        ({"return_urls": {"success": "ftp://x"}}, "invalid_value"),
        ({"customer": {"email": "a@shop.test"}}, "required"),
        ({"metadata": ["a"]}, "invalid_type"),
        ({"expires": 1_767_225_600}, "invalid_value"),
        ({"reference_id": 7}, "invalid_type"),
    ],
)
def test_an_invalid_invoice_is_refused_and_nothing_is_created(merchant, attributes, code):
    status, codes = errors_of(merchant.create(**attributes))

    assert (status, codes[0]) == (422, code)
    assert merchant.state()["invoices"] == {}


def test_a_reference_id_is_used_once_and_a_resend_is_told_so_first(merchant):
    first = merchant.invoice(reference_id="order-7")

    again = merchant.create(reference_id="order-7")
    again_and_wrong = merchant.create(reference_id="order-7", currency="XXX")

    assert errors_of(again) == (422, ["duplicate_reference_id"])
    pointer = decode_json(again.content)["errors"][0]["source"]["pointer"]
    assert pointer == "/data/attributes/reference_id"
    assert errors_of(again_and_wrong) == (422, ["duplicate_reference_id", "currency_not_supported"])
    assert list(merchant.state()["invoices"]) == [first["id"]]


def test_a_body_that_is_not_a_json_object_is_400(merchant):
    response = merchant.http.post(
        merchant.url + "/api/payment-invoices", content=b"[1, 2", headers={"Authorization": AUTH}
    )

    assert errors_of(response) == (400, ["invalid_json"])


# -- the test service ------------------------------------------------------------------


def test_the_test_service_pays_at_once_or_declines_at_rate_0(merchant):
    paid = merchant.invoice(**by_test_service(100))["attributes"]
    declined = merchant.invoice(**by_test_service(0))["attributes"]

    assert (paid["status"], paid["resolution"]) == ("processed", "ok")
    assert paid["processed"] == 1_767_225_600 and paid["processed_amount"] == Decimal("10.00")
    assert paid["rrn"] and paid["approval_code"] and paid["flow"] is None
    assert (declined["status"], declined["resolution"]) == ("process_failed", "declined")
    assert declined["processed_amount"] == 0


def test_the_success_rate_is_a_seeded_draw(paycore_sandbox_server, http):
    def outcomes(seed: int) -> list[str]:
        merchant = serve(paycore_sandbox_server, http, seed=seed)
        return [merchant.invoice(**by_test_service(50))["attributes"]["status"] for _ in range(24)]

    first, again, other = outcomes(0), outcomes(0), outcomes(1)

    assert first == again != other
    assert set(first) == {"processed", "process_failed"}


def test_prerequest_lists_the_services_that_take_the_amount(merchant):
    def services(currency: str, amount: Any) -> dict[str, Any]:
        body = {"public_key": DEFAULT_PUBLIC_KEY, "currency": currency, "amount": amount}
        answer = merchant.post("/public-api/payment-prerequest", body, auth=None)
        data: dict[str, Any] = body_of(answer)["data"]
        assert (data["currency"], data["amount"], data["test_mode"]) == (currency, amount, True)
        return data["services"]

    usd = services("USD", Decimal("10.50"))
    small = services("USD", Decimal("0.29"))
    kwd = services("KWD", Decimal("1.005"))

    assert list(usd) == ["payment_card_usd_hpp", "test_usd"]
    assert usd["payment_card_usd_hpp"]["min_amount"] == Decimal("0.50")
    assert usd["payment_card_usd_hpp"] | {"min_amount": 0, "max_amount": 0} == {
        "code": "payment_card_usd_hpp",
        "method": "payment_card",
        "name": "Bank card",
        "currency": "USD",
        "min_amount": 0,
        "max_amount": 0,
        "fields": [],
    }
    (field,) = usd["test_usd"]["fields"]
    assert (field["key"], field["required"], field["position"]) == (
        "test_details_success_rate",
        True,
        0,
    )
    assert field["label"]["en"] == "Success rate (%)" and field["regexp"]
    assert list(small) == ["test_usd"]
    assert kwd["test_kwd"]["min_amount"] == Decimal("0.001")


def test_prerequest_refuses_a_currency_the_account_lacks(merchant):
    body = {"public_key": DEFAULT_PUBLIC_KEY, "currency": "CHF", "amount": 10}

    answer = merchant.post("/public-api/payment-prerequest", body, auth=None)

    assert errors_of(answer) == (422, ["currency_not_supported"])


# -- the Public API --------------------------------------------------------------------


def test_the_public_api_creates_an_invoice_with_the_public_key(merchant):
    body = {"public_key": DEFAULT_PUBLIC_KEY, "currency": "USD", "amount": Decimal("5.25")}

    created = body_of(merchant.post("/public-api/payment-invoices", body, auth=None), 201)

    attributes = created["data"]["attributes"]
    assert (attributes["status"], attributes["source"]) == ("created", "public_api")
    assert attributes["amount"] == Decimal("5.25") and attributes["reference_id"] is None


def test_the_public_api_may_not_set_a_callback_url(merchant):
    body = {
        "public_key": DEFAULT_PUBLIC_KEY,
        "currency": "USD",
        "amount": 5,
        "callback_url": "https://evil.test/cb",
    }

    assert errors_of(merchant.post("/public-api/payment-invoices", body, auth=None)) == (
        422,
        ["invalid_value"],
    )


def test_an_account_may_forbid_public_creation_403(paycore_sandbox_server, http):
    merchant = serve(paycore_sandbox_server, http, public_creation=False)
    body = {"public_key": DEFAULT_PUBLIC_KEY, "currency": "USD", "amount": 5}

    answer = merchant.post("/public-api/payment-invoices", body, auth=None)

    assert errors_of(answer) == (403, ["public_creation_forbidden"])
    assert decode_json(answer.content)["error_type"] == "forbidden"
    assert merchant.create().status_code == 201  # the Private API still creates


def test_the_public_read_shows_only_what_the_page_needs(merchant):
    invoice = merchant.invoice(return_url="https://shop.test/back", metadata={"k": "v"})

    public = body_of(merchant.get(f"/public-api/payment-invoices/{invoice['id']}", auth=None))

    assert set(public["data"]["attributes"]) == {
        "status",
        "amount",
        "currency",
        "flow",
        "flow_data",
        "return_url",
        "return_urls",
    }


# -- reads -----------------------------------------------------------------------------


def test_an_unknown_invoice_is_404(merchant):
    answer = merchant.get("/api/payment-invoices/cpi_0000000000000000")

    assert errors_of(answer) == (404, ["not_found"])
    assert decode_json(answer.content)["error_type"] == "not_found"
    assert merchant.get("/public-api/payment-invoices/cpi_x", auth=None).status_code == 404


def test_invoices_are_found_by_reference_id_and_status_a_page_at_a_time(merchant):
    ids = [merchant.invoice(reference_id=f"order-{n}")["id"] for n in range(5)]
    paid = merchant.paid(reference_id="order-paid")
    merchant.refund(paid["id"], Decimal("1.00"))

    found = body_of(merchant.get("/api/payment-invoices", {"filter[reference_id]": "order-3"}))
    none = body_of(merchant.get("/api/payment-invoices", {"filter[reference_id]": "order-9"}))
    by_status = body_of(merchant.get("/api/payment-invoices", {"filter[status]": "created"}))
    page = body_of(merchant.get("/api/payment-invoices", {"page[number]": 2, "page[size]": 2}))
    refunded = body_of(
        merchant.get("/api/payment-invoices", {"filter[reference_id]": "order-paid"})
    )

    assert [i["id"] for i in found["data"]] == [ids[3]] and found["meta"] == {"total": 1}
    assert none == {"data": [], "included": [], "meta": {"total": 0}}
    assert [i["id"] for i in by_status["data"]] == ids[::-1]
    assert [i["id"] for i in page["data"]] == [ids[3], ids[2]] and page["meta"]["total"] == 6
    assert [r["attributes"]["amount"] for r in refunded["included"]] == [Decimal("1.00")]


def test_a_page_holds_at_most_100(merchant):
    answer = merchant.get("/api/payment-invoices", {"page[size]": 101})

    assert errors_of(answer) == (422, ["invalid_value"])
    assert decode_json(answer.content)["errors"][0]["source"] == {"parameter": "page[size]"}


# -- state and faults ------------------------------------------------------------------


def test_the_snapshot_holds_invoices_and_refunds_with_decimal_amounts(merchant):
    paid = merchant.paid(Decimal("100.55"))
    refund = body_of(merchant.refund(paid["id"], Decimal("0.55")), 201)["data"]

    state = merchant.sandbox.snapshot()

    invoice = state["invoices"][paid["id"]]
    assert invoice["id"] == paid["id"] and invoice["processed_amount"] == Decimal("100.55")
    assert isinstance(invoice["refunded_amount"], Decimal)
    assert state["refunds"][refund["id"]]["amount"] == Decimal("0.55")
    assert merchant.state() == state  # GET /_sandbox/state writes them exactly


def test_an_injected_error_is_a_500_in_the_platform_shape_and_changes_nothing(merchant):
    merchant.sandbox.queue_faults("error")

    faulted = merchant.create(reference_id="order-f")

    body = decode_json(faulted.content)
    assert faulted.status_code == 500 and body["error_type"] == "server_error"
    assert body["error_codes"] == ["sandbox_fault"]
    assert merchant.state()["invoices"] == {}
    assert merchant.create(reference_id="order-f").status_code == 201
