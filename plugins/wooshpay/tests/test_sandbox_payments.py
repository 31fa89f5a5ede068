"""The WooshPay sandbox over real HTTP: refunds, lapsed authorizations, lists and search,
customers and saved payment methods."""

from __future__ import annotations

import pytest

from plugins.wooshpay.tests.sandbox_client import Merchant, error_of, serve

WEEK = 7 * 24 * 3600


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


# -- refunds ---------------------------------------------------------------------------


def test_several_partial_refunds_until_nothing_remains(merchant):
    pi = merchant.paid(1000)

    first = merchant.ok(merchant.refund(pi["id"], "300", reason="requested_by_customer"))
    second = merchant.ok(merchant.refund(pi["id"], 500))
    rest = merchant.ok(merchant.refund(pi["id"]))
    after = merchant.refund(pi["id"], "1")

    assert [r["amount"] for r in (first, second, rest)] == [300, 500, 200]
    assert first["status"] == "succeeded" and first["reason"] == "requested_by_customer"
    assert first["charge"] == pi["latest_charge"] and first["currency"] == "USD"
    assert error_of(after) == (400, "charge_already_refunded")
    listed = merchant.ok(merchant.get("/v1/refunds", {"payment_intent": pi["id"]}))
    assert [r["id"] for r in listed["data"]] == [rest["id"], second["id"], first["id"]]
    assert merchant.ok(merchant.get(f"/v1/refunds/{first['id']}")) == first


def test_refunding_more_than_remains_is_refused(merchant):
    pi = merchant.paid(1000)
    merchant.ok(merchant.refund(pi["id"], "600"))

    response = merchant.refund(pi["id"], "401")

    assert error_of(response) == (400, "amount_too_large")
    assert len(merchant.state()["refunds"]) == 1


def test_a_partly_captured_payment_refunds_only_what_was_captured(merchant):
    pi = merchant.authorized(1000)
    merchant.ok(
        merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 700})
    )

    assert error_of(merchant.refund(pi["id"], 701)) == (400, "amount_too_large")
    assert merchant.ok(merchant.refund(pi["id"]))["amount"] == 700


@pytest.mark.parametrize("method", ["pm_card_visa", "pm_card_declined"])
def test_a_payment_not_taken_cannot_be_refunded(merchant, method):
    pi = merchant.intent(payment_method=method).json()
    pi_id = pi.get("id") or pi["error"]["payment_intent"]["id"]

    assert error_of(merchant.refund(pi_id, "100")) == (400, "payment_intent_unexpected_state")


@pytest.mark.parametrize("amount", ["5.00", "0", "-5", 0, 2.5, True, "1e3"])
def test_a_refund_amount_is_a_positive_whole_number_of_minor_units(merchant, amount):
    pi = merchant.paid(1000)

    response = merchant.refund(pi["id"], amount)

    assert error_of(response) == (400, "parameter_invalid_integer")
    assert merchant.state()["refunds"] == []


def test_a_refund_of_an_unknown_intent_names_the_parameter(merchant):
    response = merchant.refund("pi_1111111111111111111", "100")

    assert error_of(response) == (400, "resource_missing")
    assert response.json()["error"]["param"] == "payment_intent"


@pytest.fixture
def pending_merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock, refunds_pending=True)


def test_a_pending_refund_settles_through_the_control_route(pending_merchant):
    merchant = pending_merchant
    pi = merchant.paid(1000)
    refund = merchant.ok(merchant.refund(pi["id"], "1000"))
    assert refund["status"] == "pending"
    assert error_of(merchant.refund(pi["id"], "1")) == (400, "charge_already_refunded")

    settled = merchant.http.post(
        f"{merchant.url}/_sandbox/refunds/{refund['id']}/settle",
        json={"outcome": "failed", "failure_reason": "expired_or_canceled_card"},
    ).json()

    assert (settled["status"], settled["failure_reason"]) == ("failed", "expired_or_canceled_card")
    updates = [e for e in merchant.sandbox.events if e["type"] == "charge.refund.updated"]
    assert [e["data"]["object"]["status"] for e in updates] == ["pending", "failed"]
    assert merchant.ok(merchant.refund(pi["id"]))["amount"] == 1000  # the failed one is free again
    again = merchant.http.post(
        f"{merchant.url}/_sandbox/refunds/{refund['id']}/settle", json={"outcome": "succeeded"}
    )
    assert error_of(again) == (400, "refund_unexpected_state")


# -- authorizations lapse --------------------------------------------------------------


def test_an_authorization_can_be_captured_until_seven_days_have_passed(merchant, clock):
    pi = merchant.authorized(1000)
    clock.now += WEEK - 1

    assert merchant.ok(merchant.post(f"/v1/payment_intents/{pi['id']}/capture"))["status"] == (
        "succeeded"
    )


def test_an_authorization_not_captured_in_seven_days_is_canceled(merchant, clock):
    pi = merchant.authorized(1000)
    clock.now += WEEK

    after = merchant.pi(pi["id"])
    capture = merchant.post(f"/v1/payment_intents/{pi['id']}/capture")

    assert (after["status"], after["cancellation_reason"]) == ("canceled", "automatic")
    assert after["amount_capturable"] == 0 and after["latest_charge"] is not None
    assert error_of(capture) == (400, "payment_intent_unexpected_state")
    (canceled,) = [e for e in merchant.sandbox.events if e["type"] == "payment_intent.canceled"]
    assert canceled["created"] == int(clock.now)


# -- lists and search ------------------------------------------------------------------


def test_lists_are_newest_first_and_paged_by_cursor(merchant, clock):
    ids = []
    for amount in range(101, 106):
        ids.append(merchant.paid(amount)["id"])
        clock.now += 1
    newest_first = ids[::-1]

    first = merchant.ok(merchant.get("/v1/payment_intents", {"limit": 2}))
    second = merchant.ok(
        merchant.get("/v1/payment_intents", {"limit": 2, "starting_after": first["data"][-1]["id"]})
    )
    last = merchant.ok(merchant.get("/v1/payment_intents", {"starting_after": newest_first[3]}))
    before = merchant.ok(
        merchant.get("/v1/payment_intents", {"limit": 2, "ending_before": newest_first[3]})
    )

    assert first["object"] == "list" and first["url"] == "/v1/payment_intents"
    assert [p["id"] for p in first["data"]] == newest_first[:2] and first["has_more"]
    assert [p["id"] for p in second["data"]] == newest_first[2:4] and second["has_more"]
    assert [p["id"] for p in last["data"]] == newest_first[4:] and not last["has_more"]
    assert [p["id"] for p in before["data"]] == newest_first[1:3] and before["has_more"]


def test_lists_filter_by_creation_time_in_milliseconds(merchant, clock):
    early = merchant.paid(100)
    clock.now += 10
    late = merchant.paid(200)

    found = merchant.ok(merchant.get("/v1/payment_intents", {"created[gte]": late["created"]}))
    exact = merchant.ok(merchant.get("/v1/payment_intents", {"created": early["created"]}))

    assert [p["id"] for p in found["data"]] == [late["id"]]
    assert [p["id"] for p in exact["data"]] == [early["id"]]


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 101}, {"starting_after": "pi_0"}, {"colour": "x"}]
)
def test_bad_list_parameters_are_refused(merchant, query):
    assert merchant.get("/v1/payment_intents", query).status_code == 400


def test_search_finds_intents_by_metadata_status_and_order(merchant):
    wanted = merchant.authorized(metadata={"paycore_transaction_id": "txn_a'1"})
    merchant.paid(metadata={"paycore_transaction_id": "txn_b"})
    merchant.authorized(metadata={"paycore_transaction_id": "txn_c"}, merchant_order_id="o-7")

    by_metadata = merchant.ok(
        merchant.get(
            "/v1/payment_intents/search",
            {"query": r"metadata['paycore_transaction_id']:'txn_a\'1'"},
        )
    )
    combined = merchant.ok(
        merchant.get(
            "/v1/payment_intents/search",
            {"query": "status:'requires_capture' AND merchant_order_id:\"o-7\""},
        )
    )
    none = merchant.ok(
        merchant.get("/v1/payment_intents/search", {"query": "metadata['x']:'missing'"})
    )

    assert by_metadata["object"] == "search_result"
    assert [p["id"] for p in by_metadata["data"]] == [wanted["id"]]
    assert [p["merchant_order_id"] for p in combined["data"]] == ["o-7"]
    assert (none["data"], none["has_more"]) == ([], False)


def test_search_pages_through_its_results(merchant):
    for _ in range(3):
        merchant.paid(metadata={"batch": "1"})

    first = merchant.ok(
        merchant.get("/v1/payment_intents/search", {"query": "metadata['batch']:'1'", "limit": 2})
    )
    rest = merchant.ok(
        merchant.get(
            "/v1/payment_intents/search",
            {"query": "metadata['batch']:'1'", "limit": 2, "page": first["next_page"]},
        )
    )

    assert (len(first["data"]), first["has_more"]) == (2, True)
    assert (len(rest["data"]), rest["has_more"], rest["next_page"]) == (1, False, None)


@pytest.mark.parametrize("query", ["", "amount:'5'", "status:succeeded", "status:'a' and x"])
def test_a_search_query_outside_the_syntax_is_refused(merchant, query):
    response = merchant.get("/v1/payment_intents/search", {"query": query})

    assert response.status_code == 400


# -- customers and saved methods -------------------------------------------------------


def new_customer(merchant: Merchant) -> str:
    customer = merchant.ok(
        merchant.post("/v1/customers", {"email": "ann@shop.test", "metadata": {"ref": "c1"}})
    )
    assert customer["object"] == "customer" and customer["id"].startswith("cus_")
    assert merchant.ok(merchant.get(f"/v1/customers/{customer['id']}")) == customer
    return str(customer["id"])


def test_attaching_a_ready_made_method_attaches_a_new_copy(merchant):
    customer = new_customer(merchant)

    first = merchant.ok(
        merchant.post("/v1/payment_methods/pm_card_visa/attach", {"customer": customer})
    )
    second = merchant.ok(
        merchant.post("/v1/payment_methods/pm_card_visa/attach", {"customer": customer})
    )

    assert first["id"] != second["id"] and first["id"].startswith("pm_")
    assert first["customer"] == customer and first["card"]["last4"] == "4242"
    listed = merchant.ok(merchant.get(f"/v1/customers/{customer}/payment_methods"))
    assert [pm["id"] for pm in listed["data"]] == [second["id"], first["id"]]


def test_a_method_of_one_customer_cannot_be_attached_to_or_used_for_another(merchant):
    ann, bob = new_customer(merchant), new_customer(merchant)
    pm = merchant.ok(merchant.post("/v1/payment_methods/pm_card_visa/attach", {"customer": ann}))

    attach = merchant.post(f"/v1/payment_methods/{pm['id']}/attach", {"customer": bob})
    pay = merchant.intent(payment_method=pm["id"], customer=bob)

    assert error_of(attach) == (400, "payment_method_unexpected_state")
    assert error_of(pay) == (400, "payment_method_unexpected_state")
    assert merchant.authorized(payment_method=pm["id"], customer=ann)["customer"] == ann


def test_a_detached_method_cannot_be_used_with_a_customer_again(merchant):
    customer = new_customer(merchant)
    pm = merchant.ok(
        merchant.post("/v1/payment_methods/pm_card_visa/attach", {"customer": customer})
    )

    detached = merchant.ok(merchant.post(f"/v1/payment_methods/{pm['id']}/detach"))

    assert detached["customer"] is None
    assert error_of(merchant.intent(payment_method=pm["id"], customer=customer)) == (
        400,
        "payment_method_unexpected_state",
    )
    assert error_of(merchant.post(f"/v1/payment_methods/{pm['id']}/detach")) == (
        400,
        "payment_method_unexpected_state",
    )
    assert merchant.ok(merchant.get(f"/v1/customers/{customer}/payment_methods"))["data"] == []


def test_a_method_is_saved_for_the_customer_once_the_payment_succeeds(merchant):
    customer = new_customer(merchant)

    pi = merchant.authorized(customer=customer, setup_future_usage="off_session")
    declined = merchant.intent(
        payment_method="pm_card_declined", customer=customer, setup_future_usage="off_session"
    )

    assert pi["setup_future_usage"] == "off_session"
    assert declined.status_code == 402
    saved = merchant.ok(merchant.get(f"/v1/customers/{customer}/payment_methods"))["data"]
    assert [pm["id"] for pm in saved] == [pi["payment_method"]]
    off_session = merchant.paid(payment_method=saved[0]["id"], customer=customer, off_session=True)
    assert off_session["customer"] == customer


def test_an_unknown_payment_method_or_customer_is_404(merchant):
    assert error_of(merchant.get("/v1/payment_methods/pm_nope")) == (404, "resource_missing")
    assert error_of(merchant.get("/v1/customers/cus_nope")) == (404, "resource_missing")
    assert error_of(
        merchant.post("/v1/payment_methods/pm_card_visa/attach", {"customer": "cus_nope"})
    ) == (400, "resource_missing")
