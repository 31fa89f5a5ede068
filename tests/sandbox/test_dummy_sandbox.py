"""The dummy sandbox over real HTTP: its rules, idempotency, faults, webhooks, 3-D Secure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from paycore.gateways.dummy_sandbox import DEFAULT_API_KEY, DummySandbox
from paycore.gateways.webhooks import verify_signature
from paycore.sandbox import WebhookReceiver


@pytest.fixture
def api(http: httpx.Client, paycore_dummy_server) -> Iterator[httpx.Client]:
    """The module's client, pointed at this test's sandbox with its API key."""
    http.base_url = httpx.URL(paycore_dummy_server.url)
    http.headers["Authorization"] = f"Bearer {DEFAULT_API_KEY}"
    yield http
    del http.headers["Authorization"]


PAYMENT = {
    "amount": 1000,
    "currency": "USD",
    "capture": False,
    "payment_method": {"type": "card", "token": "tok_visa"},
    "reference": "txn_auth",
}


def new_payment(api: httpx.Client, key: str | None = None, **changes: Any) -> httpx.Response:
    body = {**PAYMENT, **changes}
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/v1/payments", json=body, headers=headers)


def authorized(api: httpx.Client, amount: int = 1000) -> str:
    response = new_payment(api, amount=amount)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def capture(api: httpx.Client, payment_id: str, amount: int, **changes: Any) -> httpx.Response:
    body = {"amount": amount, "currency": "USD", "reference": f"txn_cap_{amount}", **changes}
    return api.post(f"/v1/payments/{payment_id}/captures", json=body)


def refund(api: httpx.Client, payment_id: str, amount: int, **changes: Any) -> httpx.Response:
    body = {"amount": amount, "currency": "USD", "reference": f"txn_ref_{amount}", **changes}
    return api.post(f"/v1/payments/{payment_id}/refunds", json=body)


def error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def state(api: httpx.Client) -> dict[str, Any]:
    return dict(api.get("/_sandbox/state").json())


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer sk_test_wrong", f"Basic {DEFAULT_API_KEY}"]
)
def test_the_api_needs_the_bearer_api_key(http, paycore_dummy_server, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get(f"{paycore_dummy_server.url}/v1/payments", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert DEFAULT_API_KEY not in response.text


# -- payments and their rules --------------------------------------------------------------


def test_an_authorization_reserves_the_amount(api):
    payment = new_payment(api).json()

    assert payment["status"] == "authorized"
    assert (payment["amount_capturable"], payment["amount_captured"]) == (1000, 0)
    assert payment["id"].startswith("pay_")
    assert [(op["type"], op["reference"]) for op in payment["operations"]] == [
        ("authorize", "txn_auth")
    ]
    assert "token" not in payment["payment_method"]


def test_a_sale_captures_at_once(api):
    payment = new_payment(api, capture=True).json()

    assert payment["status"] == "captured"
    assert payment["amount_captured"] == 1000
    assert payment["operations"][0]["type"] == "sale"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_expired_card", "expired_card"),
    ],
)
def test_a_declining_test_card_answers_402_and_records_the_declined_payment(api, token, code):
    response = new_payment(api, payment_method={"type": "card", "token": token})

    assert error_code(response) == (402, code)
    assert response.json()["error"]["type"] == "card_error"
    payment_id = response.json()["error"]["payment_id"]
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["decline_code"]) == ("declined", code)


@pytest.mark.parametrize("amount", [10.0, "1000", True, 0, -5, None, 2**63])
def test_an_amount_must_be_a_positive_integer_of_minor_units(api, amount):
    response = new_payment(api, amount=amount)

    assert error_code(response) == (400, "amount_invalid")
    assert state(api)["payments"] == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"currency": "XYZ"}, "parameter_invalid"),
        ({"capture": "yes"}, "parameter_invalid"),
        ({"payment_method": {"type": "card", "token": "4242424242424242"}}, "token_invalid"),
        ({"payment_method": {"type": "cash"}}, "parameter_invalid"),
        ({"colour": "blue"}, "parameter_unknown"),
    ],
)
def test_an_invalid_payment_is_refused_and_changes_nothing(api, changes, code):
    assert error_code(new_payment(api, **changes)) == (400, code)
    assert state(api)["payments"] == []


def test_a_body_that_is_not_a_json_object_is_refused(api):
    response = api.post("/v1/payments", content=b"[1, 2]")

    assert error_code(response) == (400, "parameter_invalid")


def test_partial_captures_add_up_to_at_most_the_authorized_amount(api):
    payment_id = authorized(api)

    assert capture(api, payment_id, 400).status_code == 201
    assert capture(api, payment_id, 500).status_code == 201
    assert error_code(capture(api, payment_id, 200)) == (400, "amount_too_large")

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "partially_captured"
    assert (payment["amount_captured"], payment["amount_capturable"]) == (900, 100)


def test_a_final_capture_releases_the_rest(api):
    payment_id = authorized(api)

    operation = capture(api, payment_id, 300, final=True).json()

    assert (operation["type"], operation["amount"], operation["status"]) == (
        "capture",
        300,
        "succeeded",
    )
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_capturable"]) == ("captured", 0)
    assert error_code(capture(api, payment_id, 1)) == (409, "invalid_state")


def test_a_void_releases_what_stays_uncaptured(api):
    payment_id = authorized(api)
    capture(api, payment_id, 300)

    void = api.post(f"/v1/payments/{payment_id}/void", json={"reference": "txn_void"}).json()

    assert (void["type"], void["amount"], void["reference"]) == ("void", 700, "txn_void")
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_captured"]) == ("captured", 300)


def test_a_void_before_any_capture_voids_the_payment(api):
    payment_id = authorized(api)

    api.post(f"/v1/payments/{payment_id}/void", json={})

    assert api.get(f"/v1/payments/{payment_id}").json()["status"] == "voided"
    assert error_code(capture(api, payment_id, 100)) == (409, "invalid_state")


def test_a_fully_captured_payment_cannot_be_voided(api):
    payment_id = authorized(api)
    capture(api, payment_id, 1000)

    response = api.post(f"/v1/payments/{payment_id}/void", json={})

    assert error_code(response) == (409, "invalid_state")


def test_refunds_add_up_to_at_most_what_was_captured(api):
    payment_id = authorized(api)
    assert error_code(refund(api, payment_id, 100)) == (409, "invalid_state")
    capture(api, payment_id, 600)

    assert refund(api, payment_id, 200).status_code == 201
    assert error_code(refund(api, payment_id, 401)) == (400, "amount_too_large")
    assert refund(api, payment_id, 400).status_code == 201

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["amount_refunded"], payment["status"]) == (600, "partially_refunded")
    api.post(f"/v1/payments/{payment_id}/void", json={})
    assert api.get(f"/v1/payments/{payment_id}").json()["status"] == "refunded"


def test_an_authorization_expires_after_seven_days(paycore_sandbox_server, http, clock):
    server = paycore_sandbox_server(DummySandbox(clock=clock))
    http.base_url = httpx.URL(server.url)
    http.headers["Authorization"] = f"Bearer {DEFAULT_API_KEY}"
    try:
        payment = new_payment(http).json()
        assert payment["capture_before"] == int(clock.now) + 7 * 24 * 3600

        clock.now += 7 * 24 * 3600
        assert capture(http, payment["id"], 100).status_code == 201
        clock.now += 1
        assert error_code(capture(http, payment["id"], 100)) == (409, "authorization_expired")
        response = http.post(f"/v1/payments/{payment['id']}/void", json={})
        assert error_code(response) == (409, "authorization_expired")
    finally:
        del http.headers["Authorization"]


def test_captures_and_refunds_must_be_in_the_payments_currency(api):
    payment_id = authorized(api)

    assert error_code(capture(api, payment_id, 100, currency="EUR")) == (400, "currency_mismatch")
    capture(api, payment_id, 100)
    assert error_code(refund(api, payment_id, 100, currency="EUR")) == (400, "currency_mismatch")


def test_an_unknown_payment_is_404(api):
    assert error_code(api.get("/v1/payments/pay_nope")) == (404, "resource_missing")
    assert error_code(capture(api, "pay_nope", 100)) == (404, "resource_missing")


def test_payments_are_found_by_the_reference_they_were_created_with(api):
    payment_id = authorized(api)
    new_payment(api, reference="txn_other")

    found = api.get("/v1/payments", params={"reference": "txn_auth"}).json()["data"]

    assert [payment["id"] for payment in found] == [payment_id]
    assert api.get("/v1/payments", params={"reference": "txn_none"}).json()["data"] == []


def test_payment_methods_are_filtered_by_currency_and_minimum_amount(api):
    def methods(**params: Any) -> list[tuple[str, Any]]:
        data = api.get("/v1/payment_methods", params=params).json()["data"]
        return [(method["type"], method["min_amount"]) for method in data]

    card, transfer, gift_card = ("card", None), ("bank_transfer", 1000), ("gift_card", None)
    assert methods(currency="USD") == [card, transfer, gift_card]
    assert methods(currency="KWD") == [card, gift_card]
    assert methods(currency="EUR", amount="999") == [card, gift_card]
    assert methods(currency="EUR", amount="1000") == [card, transfer, gift_card]
    listed = api.get("/v1/payment_methods", params={"currency": "JPY"}).json()["data"]
    assert {m["type"]: m["display_name"] for m in listed}["gift_card"] == "Gift card"
    assert error_code(api.get("/v1/payment_methods", params={"currency": "??"})) == (
        400,
        "parameter_invalid",
    )


def test_a_bank_transfer_is_processing_until_the_sandbox_settles_it(api):
    transfer = {"type": "bank_transfer"}
    assert error_code(new_payment(api, payment_method=transfer)) == (400, "method_not_supported")
    assert error_code(new_payment(api, payment_method=transfer, capture=True, amount=999)) == (
        400,
        "amount_too_small",
    )
    payment = new_payment(api, payment_method=transfer, capture=True).json()
    assert payment["status"] == "processing"

    settled = api.post(f"/_sandbox/payments/{payment['id']}/settle", json={"outcome": "succeeded"})

    assert settled.json()["status"] == "captured"
    assert settled.json()["operations"][0]["status"] == "succeeded"


# -- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_stored_answer_without_doing_it_again(api):
    first = new_payment(api, key="key-1")
    again = new_payment(api, key="key-1")

    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(state(api)["payments"]) == 1


def test_a_replayed_decline_is_the_same_decline(api):
    card = {"type": "card", "token": "tok_declined"}
    first = new_payment(api, key="key-1", payment_method=card)
    again = new_payment(api, key="key-1", payment_method=card)

    assert again.status_code == first.status_code == 402
    assert again.json() == first.json()
    assert len(state(api)["payments"]) == 1


def test_the_same_key_with_a_different_body_is_a_409_and_changes_nothing(api):
    new_payment(api, key="key-1")

    response = new_payment(api, key="key-1", amount=2000)

    assert error_code(response) == (409, "idempotency_error")
    assert [p["amount"] for p in state(api)["payments"]] == [1000]


def test_the_same_key_on_another_route_is_a_409(api):
    payment_id = authorized(api)
    body = {"amount": 100, "currency": "USD", "reference": "txn_x"}
    headers = {"Idempotency-Key": "key-2"}
    api.post(f"/v1/payments/{payment_id}/captures", json=body, headers=headers)

    response = api.post(f"/v1/payments/{payment_id}/refunds", json=body, headers=headers)

    assert error_code(response) == (409, "idempotency_error")


def test_a_request_refused_by_validation_may_be_corrected_under_the_same_key(api):
    assert new_payment(api, key="key-1", amount="10.00").status_code == 400

    assert new_payment(api, key="key-1").status_code == 201


def test_without_a_key_every_request_is_carried_out(api):
    new_payment(api)
    new_payment(api)

    assert len(state(api)["payments"]) == 2


# -- faults --------------------------------------------------------------------------------


def queue(api: httpx.Client, *faults: str, **knobs: Any) -> None:
    response = api.post("/_sandbox/faults", json={"next": list(faults), **knobs})
    assert response.status_code == 200, response.text


def test_a_dropped_answer_leaves_the_payment_made_and_a_retry_with_the_key_replays_it(api):
    queue(api, "drop")

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        new_payment(api, key="key-1")

    (made,) = state(api)["payments"]
    retry = new_payment(api, key="key-1")
    assert retry.json()["id"] == made["id"]
    assert len(state(api)["payments"]) == 1


def test_an_injected_error_answers_500_and_nothing_happened(api):
    queue(api, "error")

    response = new_payment(api, key="key-1")

    assert error_code(response) == (500, "sandbox_fault")
    assert state(api)["payments"] == []
    assert new_payment(api, key="key-1").status_code == 201


def test_an_injected_timeout_stalls_after_the_payment_was_made(api):
    queue(api, "timeout", stall_seconds=10)

    with pytest.raises(httpx.ReadTimeout):
        api.post("/v1/payments", json=PAYMENT, timeout=0.2)

    assert len(state(api)["payments"]) == 1


def test_control_routes_answer_while_faults_are_queued(api):
    queue(api, "error", "error")

    assert api.get("/_sandbox/state").status_code == 200
    assert api.get("/_sandbox/faults").json()["pending"] == ["error", "error"]
    assert new_payment(api).status_code == 500
    assert api.get("/_sandbox/faults").json()["pending"] == ["error"]


def test_the_sandbox_counts_every_api_request_it_received_faulted_or_not(api, sandbox):
    queue(api, "error")
    new_payment(api)
    new_payment(api)
    api.get("/_sandbox/state")

    expected = [("POST", "/v1/payments"), ("POST", "/v1/payments")]
    assert list(sandbox.requests_received) == expected
    listed = api.get("/_sandbox/requests").json()["requests"]
    assert [(r["method"], r["path"]) for r in listed] == expected


def test_a_bad_fault_plan_is_refused(api):
    response = api.post("/_sandbox/faults", json={"error_rate": 2})

    assert error_code(response) == (400, "parameter_invalid")
    assert "error_rate: must be between 0 and 1" in response.json()["error"]["message"]


# -- webhooks and 3-D Secure ---------------------------------------------------------------


@pytest.fixture
def paycore_dummy_sandbox(request) -> DummySandbox:
    """The dummy sandbox; for tests that use a receiver, delivering webhooks to it."""
    if "paycore_webhook_receiver" not in request.fixturenames:
        return DummySandbox(seed=0)
    receiver = request.getfixturevalue("paycore_webhook_receiver")
    return DummySandbox(webhook_url=receiver.url, webhook_time_scale=0.01, seed=0)


@pytest.fixture
def sandbox(paycore_dummy_sandbox: DummySandbox) -> DummySandbox:
    return paycore_dummy_sandbox


@pytest.fixture
def receiver(paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return paycore_webhook_receiver


def test_each_change_is_announced_by_a_signed_webhook(api, sandbox, receiver):
    payment_id = authorized(api)
    capture(api, payment_id, 400)

    first, second = receiver.wait_for(2)
    for delivery in (first, second):
        verify_signature(
            delivery.headers["dummy-signature"],
            delivery.body,
            sandbox.webhook_secrets[0],
            gateway="dummy",
        )
    events = [json.loads(delivery.body) for delivery in (first, second)]
    assert [event["type"] for event in events] == ["payment.authorized", "payment.captured"]
    assert all(event["id"].startswith("evt_") for event in events)
    assert events[1]["data"]["operation"]["reference"] == "txn_cap_400"
    assert events[1]["data"]["payment"]["amount_captured"] == 400
    assert sandbox.wait_for_webhooks(5)
    recorded = api.get("/_sandbox/webhooks").json()
    assert [attempt["status_code"] for attempt in recorded["attempts"]] == [200, 200]
    assert [event["id"] for event in recorded["events"]] == [event["id"] for event in events]


def test_a_webhook_refused_by_the_merchant_is_retried(api, sandbox, receiver):
    receiver.fail_first = 1

    authorized(api)

    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert (first.answered, second.answered) == (500, 200)


def test_the_3ds_page_is_a_form_whose_approval_completes_the_payment(api, receiver):
    response = new_payment(
        api,
        capture=True,
        payment_method={"type": "card", "token": "tok_3ds"},
        return_url="https://shop.test/back?order=7",
    )
    payment = response.json()
    assert payment["status"] == "requires_action"
    page_url = payment["next_action"]["url"]

    page = api.get(page_url)
    assert page.status_code == 200
    assert f'<form method="post" action="/3ds/{payment["id"]}">' in page.text
    assert 'name="result" value="approve"' in page.text

    done = api.post(page_url, data={"result": "approve"})

    assert done.status_code == 303
    assert done.headers["location"] == f"https://shop.test/back?order=7&payment_id={payment['id']}"
    completed = api.get(f"/v1/payments/{payment['id']}").json()
    assert (completed["status"], completed["amount_captured"]) == ("captured", 1000)
    (delivery,) = receiver.wait_for(1)
    assert json.loads(delivery.body)["type"] == "payment.captured"
    assert "already captured" in api.get(page_url).text


def test_declining_on_the_3ds_page_declines_the_payment(api, receiver):
    payment = new_payment(api, payment_method={"type": "card", "token": "tok_3ds"}).json()

    done = api.post(payment["next_action"]["url"], data={"result": "decline"})

    assert done.status_code == 200
    assert "declined" in done.text
    declined = api.get(f"/v1/payments/{payment['id']}").json()
    assert (declined["status"], declined["decline_code"]) == ("declined", "authentication_failed")
    (delivery,) = receiver.wait_for(1)
    assert json.loads(delivery.body)["type"] == "payment.declined"
    again = api.post(payment["next_action"]["url"], data={"result": "approve"})
    assert again.status_code == 409


def test_the_3ds_page_of_an_unknown_payment_is_404(api):
    assert api.get("/3ds/pay_nope").status_code == 404


# -- gift cards ----------------------------------------------------------------------------


def gift_card(token: str = "gc_test_5000") -> dict[str, str]:
    return {"type": "gift_card", "token": token}


def balance(api: httpx.Client, token: str = "gc_test_5000") -> tuple[int, int]:
    """What the gift card may still spend, and what its authorizations hold."""
    card = state(api)["gift_cards"][token]
    return card["balance"], card["held"]


def test_the_sandbox_starts_with_the_published_test_gift_cards(api):
    cards = state(api)["gift_cards"]

    assert {token: (c["balance"], c["held"], c["currency"]) for token, c in cards.items()} == {
        "gc_test_5000": (5000, 0, None),
        "gc_test_100000": (100_000, 0, None),
        "gc_test_empty": (0, 0, None),
    }


def test_a_gift_card_authorization_holds_the_amount_and_captures_take_it(api):
    payment = new_payment(api, amount=2000, payment_method=gift_card()).json()

    assert (payment["status"], payment["next_action"]) == ("authorized", None)
    assert payment["payment_method"] == {"type": "gift_card"}
    assert "gc_test_5000" not in json.dumps(payment)
    assert balance(api) == (3000, 2000)
    assert capture(api, payment["id"], 500).status_code == 201
    assert balance(api) == (3000, 1500)
    # The final capture takes 700 and gives the 800 still held back to the card.
    assert capture(api, payment["id"], 700, final=True).status_code == 201
    assert balance(api) == (3800, 0)


def test_a_void_gives_the_gift_cards_hold_back(api):
    payment_id = new_payment(api, amount=2000, payment_method=gift_card()).json()["id"]
    capture(api, payment_id, 600)

    void = api.post(f"/v1/payments/{payment_id}/void", json={}).json()

    assert void["amount"] == 1400
    assert balance(api) == (4400, 0)


def test_a_gift_card_sale_takes_the_amount_and_refunds_give_it_back(api):
    payment = new_payment(api, capture=True, amount=4000, payment_method=gift_card()).json()
    assert (payment["status"], balance(api)) == ("captured", (1000, 0))

    assert refund(api, payment["id"], 1500).status_code == 201
    assert balance(api) == (2500, 0)
    assert refund(api, payment["id"], 2500).status_code == 201
    assert balance(api) == (5000, 0)
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "refunded"


def test_more_than_the_gift_cards_balance_is_declined_like_a_card_and_takes_nothing(api):
    new_payment(api, amount=3000, payment_method=gift_card())  # holds 3000 of the 5000

    response = new_payment(api, amount=2001, capture=True, payment_method=gift_card())

    assert error_code(response) == (402, "insufficient_funds")
    assert response.json()["error"]["type"] == "card_error"
    declined = api.get(f"/v1/payments/{response.json()['error']['payment_id']}").json()
    assert (declined["status"], declined["decline_code"]) == ("declined", "insufficient_funds")
    assert balance(api) == (2000, 3000)
    assert (
        new_payment(api, amount=2000, capture=True, payment_method=gift_card()).status_code == 201
    )
    assert balance(api) == (0, 3000)


def test_an_empty_gift_card_declines_any_amount(api):
    response = new_payment(api, amount=1, payment_method=gift_card("gc_test_empty"))

    assert error_code(response) == (402, "insufficient_funds")
    assert balance(api, "gc_test_empty") == (0, 0)


def test_an_unknown_gift_card_number_is_declined_as_an_incorrect_number(api):
    response = new_payment(api, payment_method=gift_card("gc_test_mistyped"))

    assert error_code(response) == (402, "incorrect_number")
    assert response.json()["error"]["type"] == "card_error"
    assert "gc_test_mistyped" not in response.text
    (declined,) = state(api)["payments"]
    assert (declined["status"], declined["decline_code"]) == ("declined", "incorrect_number")


@pytest.mark.parametrize("token", [None, 5000, "tok_visa", "gc_", "gc_a b", "gc_" + "9" * 65])
def test_a_malformed_gift_card_number_is_refused_and_changes_nothing(api, token):
    response = new_payment(api, payment_method={"type": "gift_card", "token": token})

    assert error_code(response) == (400, "token_invalid")
    assert response.json()["error"]["param"] == "payment_method.token"
    assert state(api)["payments"] == []


def test_a_gift_cards_currency_is_fixed_by_its_first_approved_payment(api):
    too_much = new_payment(api, currency="EUR", amount=6000, payment_method=gift_card())
    assert error_code(too_much) == (402, "insufficient_funds")
    assert state(api)["gift_cards"]["gc_test_5000"]["currency"] is None  # a decline fixes none

    new_payment(api, amount=1000, payment_method=gift_card())

    assert state(api)["gift_cards"]["gc_test_5000"]["currency"] == "USD"
    response = new_payment(api, currency="EUR", amount=100, payment_method=gift_card())
    assert error_code(response) == (402, "currency_not_supported")
    assert balance(api) == (4000, 1000)


def test_a_replayed_gift_card_payment_spends_once(api):
    first = new_payment(api, key="key-gc", capture=True, amount=1500, payment_method=gift_card())
    again = new_payment(api, key="key-gc", capture=True, amount=1500, payment_method=gift_card())

    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert balance(api) == (3500, 0)
    assert len(state(api)["payments"]) == 1


def test_an_expired_gift_card_authorization_gives_its_hold_back(
    paycore_sandbox_server, http, clock
):
    server = paycore_sandbox_server(DummySandbox(clock=clock))
    http.base_url = httpx.URL(server.url)
    http.headers["Authorization"] = f"Bearer {DEFAULT_API_KEY}"
    try:
        payment_id = new_payment(http, amount=2000, payment_method=gift_card()).json()["id"]
        capture(http, payment_id, 500)
        assert balance(http) == (3000, 1500)

        clock.now += 7 * 24 * 3600 + 1

        assert balance(http) == (4500, 0)
        assert error_code(capture(http, payment_id, 100)) == (409, "authorization_expired")
    finally:
        del http.headers["Authorization"]


def test_the_sandbox_issues_gift_cards_on_request(api):
    issued = api.post("/_sandbox/gift_cards", json={"balance": 250, "currency": "JPY"})

    assert issued.status_code == 201
    card = issued.json()
    assert card["token"].startswith("gc_")
    assert (card["balance"], card["held"], card["currency"]) == (250, 0, "JPY")
    usd = new_payment(api, amount=100, payment_method=gift_card(card["token"]))
    assert error_code(usd) == (402, "currency_not_supported")
    jpy = new_payment(
        api, currency="JPY", amount=250, capture=True, payment_method=gift_card(card["token"])
    )
    assert jpy.status_code == 201
    assert balance(api, card["token"]) == (0, 0)


def test_a_gift_card_number_is_issued_once(api):
    assert api.post("/_sandbox/gift_cards", json={"balance": 0, "token": "gc_mine"}).is_success

    again = api.post("/_sandbox/gift_cards", json={"balance": 900, "token": "gc_mine"})

    assert error_code(again) == (409, "gift_card_exists")
    assert balance(api, "gc_mine") == (0, 0)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"balance": -1},
        {"balance": 1.5},
        {"balance": True},
        {"balance": 1, "token": "card_1"},
        {"balance": 1, "currency": "XYZ"},
        {"balance": 1, "colour": "blue"},
    ],
)
def test_a_bad_gift_card_to_issue_is_refused(api, body):
    response = api.post("/_sandbox/gift_cards", json=body)

    assert response.status_code == 400
    assert set(state(api)["gift_cards"]) == {"gc_test_5000", "gc_test_100000", "gc_test_empty"}


def test_gift_card_payments_are_announced_by_webhooks_as_card_payments_are(api, receiver):
    payment_id = new_payment(api, amount=2000, payment_method=gift_card()).json()["id"]
    capture(api, payment_id, 2000)
    new_payment(api, amount=9000, payment_method=gift_card())

    deliveries = receiver.wait_for(3)

    events = [json.loads(delivery.body) for delivery in deliveries]
    assert sorted(event["type"] for event in events) == [
        "payment.authorized",
        "payment.captured",
        "payment.declined",
    ]
    assert {event["data"]["payment"]["payment_method"]["type"] for event in events} == {"gift_card"}
    assert not any(b"gc_test_5000" in delivery.body for delivery in deliveries)
