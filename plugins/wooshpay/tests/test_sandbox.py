"""The WooshPay sandbox over real HTTP: keys, validation, bodies, payment intents, test
cards, 3-D Secure, idempotency and faults."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from paycore_wooshpay.sandbox import DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY

from plugins.wooshpay.tests.sandbox_client import Merchant, basic, error_of, serve

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "731"}


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


# -- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, basic("sk_test_wrong"), basic(DEFAULT_PUBLISHABLE_KEY), "Basic !!!", "Token x"],
    ids=["none", "wrong", "publishable", "garbled", "other-scheme"],
)
def test_a_request_without_the_secret_key_is_refused_401(merchant, auth):
    response = merchant.post("/v1/payment_intents", {"amount": 1000}, auth=auth)

    assert error_of(response) == (401, "api_key_invalid")
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong" not in response.text
    assert merchant.state()["payment_intents"] == []


def test_the_secret_key_is_also_accepted_as_a_bearer_token(merchant):
    response = merchant.get("/v1/payment_intents", auth=f"Bearer {DEFAULT_SECRET_KEY}")

    assert response.status_code == 200


def test_the_publishable_key_may_create_a_payment_method_only(merchant):
    auth = basic(DEFAULT_PUBLISHABLE_KEY)
    created = merchant.post("/v1/payment_methods", {"type": "card", "card": CARD}, auth=auth)

    assert created.status_code == 200
    assert merchant.get(f"/v1/payment_methods/{created.json()['id']}", auth=auth).status_code == 401


def test_every_answer_carries_a_request_id(merchant):
    answers = [
        merchant.intent(),
        merchant.get("/v1/payment_intents/pi_0"),
        merchant.post("/v1/payment_intents", auth=None),
        merchant.browse("/pay/cs_test_missing"),
    ]

    ids = [answer.headers["request-id"] for answer in answers]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "code", "param"),
    [
        ({"amount": None}, 400, "parameter_missing", "amount"),
        ({"amount": 10.5}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": True}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": 0}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": -100}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": "1000"}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": 100_000_000}, 400, "amount_too_large", "amount"),
        ({"currency": "XXY"}, 400, "currency_not_supported", "currency"),
        ({"capture_method": "later"}, 400, "parameter_invalid_string", "capture_method"),
        ({"metadata": {"order": 42}}, 400, "parameter_invalid_string", "metadata[order]"),
        ({"colour": "blue"}, 400, "parameter_unknown", "colour"),
        ({"payment_method": "pm_missing"}, 400, "resource_missing", "payment_method"),
        ({"customer": "cus_missing"}, 400, "resource_missing", "customer"),
        ({"payment_method_types": ["bitcoin"]}, 400, "payment_method_unactivated", None),
        ({"setup_future_usage": "off_session"}, 400, "parameter_missing", "customer"),
        (
            {"payment_method_options": {"card": {"request_three_d_secure": "never"}}},
            400,
            "parameter_invalid_string",
            "payment_method_options[card][request_three_d_secure]",
        ),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it_and_changes_nothing(
    merchant, changes, status, code, param
):
    body = {k: v for k, v in {**merchant_defaults(), **changes}.items() if v is not None}

    response = merchant.post("/v1/payment_intents", body)

    assert error_of(response) == (status, code)
    if param is not None:
        assert response.json()["error"]["param"] == param
    assert merchant.state()["payment_intents"] == []
    assert merchant.sandbox.events == ()


def merchant_defaults() -> dict[str, Any]:
    return {"amount": 1000, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"}


def test_a_body_that_is_not_json_is_refused(merchant):
    response = merchant.http.post(
        merchant.url + "/v1/payment_intents",
        content=b"amount=10",
        headers={"Authorization": basic(DEFAULT_SECRET_KEY), "Content-Type": "application/json"},
    )

    assert error_of(response) == (400, "body_invalid")


def test_a_form_encoded_body_in_bracket_notation_reads_like_json(merchant):
    form = (
        "amount=1500&currency=usd&confirm=true&capture_method=manual"
        "&payment_method=pm_card_visa&metadata[order]=42&metadata[paycore_transaction_id]=txn_f"
        "&payment_method_types[]=card"
    )

    pi = merchant.ok(merchant.post("/v1/payment_intents", form=form))

    assert (pi["amount"], pi["currency"], pi["status"]) == (1500, "USD", "requires_capture")
    assert pi["metadata"] == {"order": "42", "paycore_transaction_id": "txn_f"}
    assert pi["payment_method_types"] == ["card"]


def test_a_malformed_form_is_refused(merchant):
    response = merchant.post("/v1/payment_intents", form="amount=1&amount[x]=2")

    assert error_of(response) == (400, "body_invalid")


# -- payment intents -------------------------------------------------------------------


def test_an_authorization_holds_the_amount_and_reports_the_charge(merchant, clock):
    pi = merchant.authorized(1000, metadata={"paycore_transaction_id": "txn_1"})

    assert re.fullmatch(r"pi_[1-9][0-9]{18}", pi["id"])
    assert pi["client_secret"].startswith(pi["id"] + "_secret_")
    assert (pi["amount_capturable"], pi["amount_received"]) == (1000, 0)
    assert pi["latest_charge"].startswith("ch_")
    assert pi["created"] == int(clock.now * 1000)
    assert pi["livemode"] is False and pi["confirmation_method"] == "automatic"
    assert merchant.pi(pi["id"]) == pi


def test_a_sale_takes_the_money_at_once(merchant):
    pi = merchant.paid(2500)

    assert (pi["amount_received"], pi["amount_capturable"]) == (2500, 0)


def test_a_partial_capture_releases_the_rest(merchant):
    pi = merchant.authorized(1000)

    captured = merchant.ok(
        merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 600})
    )

    assert captured["status"] == "succeeded"
    assert (captured["amount_received"], captured["amount_capturable"]) == (600, 0)


def test_capturing_without_an_amount_captures_everything(merchant):
    pi = merchant.authorized(1000)

    captured = merchant.ok(merchant.post(f"/v1/payment_intents/{pi['id']}/capture"))

    assert captured["amount_received"] == 1000


def test_a_second_capture_is_refused(merchant):
    pi = merchant.authorized(1000)
    merchant.ok(
        merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 400})
    )

    again = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 100})

    assert error_of(again) == (400, "payment_intent_unexpected_state")
    assert again.json()["error"]["payment_intent"]["amount_received"] == 400


def test_capturing_more_than_is_capturable_is_refused_and_keeps_the_hold(merchant):
    pi = merchant.authorized(1000)

    response = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 1001})

    assert error_of(response) == (400, "amount_too_large")
    assert merchant.pi(pi["id"])["status"] == "requires_capture"


def test_canceling_an_authorization_releases_it(merchant, clock):
    pi = merchant.authorized(1000)

    canceled = merchant.ok(
        merchant.post(
            f"/v1/payment_intents/{pi['id']}/cancel",
            {"cancellation_reason": "requested_by_customer"},
        )
    )

    assert (canceled["status"], canceled["amount_capturable"]) == ("canceled", 0)
    assert canceled["cancellation_reason"] == "requested_by_customer"
    assert canceled["canceled_at"] == int(clock.now * 1000)


def test_a_captured_payment_cannot_be_canceled(merchant):
    pi = merchant.paid(1000)

    response = merchant.post(f"/v1/payment_intents/{pi['id']}/cancel")

    assert error_of(response) == (400, "payment_intent_unexpected_state")


def test_an_intent_waits_for_its_method_and_its_confirmation(merchant):
    bare = merchant.ok(merchant.intent(confirm=False, payment_method=None))
    assert bare["status"] == "requires_payment_method"
    refused = merchant.post(f"/v1/payment_intents/{bare['id']}/confirm")
    assert error_of(refused) == (400, "parameter_missing")

    ready = merchant.ok(merchant.intent(confirm=False))
    assert ready["status"] == "requires_confirmation"
    confirmed = merchant.ok(merchant.post(f"/v1/payment_intents/{ready['id']}/confirm"))
    assert confirmed["status"] == "requires_capture"


def test_an_unknown_intent_is_404(merchant):
    assert error_of(merchant.get("/v1/payment_intents/pi_1234567890123456789")) == (
        404,
        "resource_missing",
    )


# -- test cards ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "code", "decline_code"),
    [
        ("pm_card_declined", "card_declined", "generic_decline"),
        ("pm_card_insufficient_funds", "card_declined", "insufficient_funds"),
        ("pm_card_expired", "expired_card", "expired_card"),
    ],
)
def test_a_declining_card_is_a_402_with_the_intent_waiting_for_another_method(
    merchant, method, code, decline_code
):
    response = merchant.intent(payment_method=method)

    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        code,
        decline_code,
    )
    pi = error["payment_intent"]
    assert (pi["status"], pi["latest_charge"]) == ("requires_payment_method", None)
    assert pi["last_payment_error"]["code"] == code
    assert pi["last_payment_error"]["decline_code"] == decline_code
    assert merchant.pi(pi["id"]) == pi


def test_a_card_number_decides_the_outcome_and_only_brand_and_last4_are_kept(merchant):
    card = {**CARD, "number": "4000000000009995"}
    pm = merchant.ok(merchant.post("/v1/payment_methods", {"type": "card", "card": card}))

    assert pm["card"] == {
        "brand": "visa",
        "last4": "9995",
        "exp_month": 12,
        "exp_year": 2030,
        "country": "US",
        "funding": "credit",
    }
    response = merchant.intent(payment_method=pm["id"])
    assert response.json()["error"]["decline_code"] == "insufficient_funds"


def test_an_unknown_valid_card_number_succeeds_and_an_invalid_one_is_refused(merchant):
    good = merchant.post(
        "/v1/payment_methods", {"type": "card", "card": {**CARD, "number": "5105105105105100"}}
    )
    bad = merchant.post(
        "/v1/payment_methods", {"type": "card", "card": {**CARD, "number": "4242424242424241"}}
    )

    assert merchant.authorized(payment_method=good.json()["id"])["status"] == "requires_capture"
    assert good.json()["card"]["brand"] == "mastercard"
    assert error_of(bad) == (402, "incorrect_number")
    assert bad.json()["error"]["type"] == "card_error"


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ({"exp_month": 13}, "invalid_expiry_month"),
        ({"exp_year": 2020}, "invalid_expiry_year"),
        ({"cvc": "12"}, "invalid_cvc"),
    ],
)
def test_a_card_with_bad_details_is_refused(merchant, card, code):
    response = merchant.post("/v1/payment_methods", {"type": "card", "card": {**CARD, **card}})

    assert error_of(response) == (402, code)
    assert merchant.state()["payment_methods"] == []


def test_a_3ds_card_asks_for_the_challenge_and_approval_authorizes(merchant):
    pi = merchant.ok(
        merchant.intent(payment_method="pm_card_3ds", return_url="https://shop.test/r")
    )

    assert pi["status"] == "requires_action"
    assert pi["next_action"] == {
        "type": "challenge_redirect",
        "challenge_redirect": {
            "url": f"{merchant.url}/3ds/{pi['id']}",
            "return_url": "https://shop.test/r",
        },
    }
    back = merchant.challenge(pi, "approve")

    assert back.status_code == 303
    assert back.headers["location"].startswith(f"https://shop.test/r?payment_intent={pi['id']}")
    assert "redirect_status=succeeded" in back.headers["location"]
    assert merchant.pi(pi["id"])["status"] == "requires_capture"


def test_a_declined_challenge_leaves_an_authentication_failure(merchant):
    pi = merchant.ok(merchant.intent(payment_method="pm_card_3ds", capture_method="automatic"))

    page = merchant.challenge(pi, "decline")

    assert page.status_code == 200  # no return_url: a message page
    after = merchant.pi(pi["id"])
    assert after["status"] == "requires_payment_method"
    assert after["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert merchant.browse(f"/3ds/{pi['id']}", {"result": "approve"}).status_code == 409


def test_3ds_can_be_asked_for_any_card(merchant):
    options = {"card": {"request_three_d_secure": "any"}}

    pi = merchant.ok(merchant.intent(payment_method_options=options))

    assert pi["status"] == "requires_action"


@pytest.mark.parametrize("flag", ["off_session", "off-session"])
def test_a_3ds_card_off_session_needs_authentication(merchant, flag):
    response = merchant.intent(payment_method="pm_card_3ds", **{flag: True})

    assert error_of(response) == (402, "authentication_required")
    assert response.json()["error"]["payment_intent"]["status"] == "requires_payment_method"


# -- idempotency -----------------------------------------------------------------------


def test_the_same_key_and_request_replays_the_answer_without_a_second_payment(merchant):
    first = merchant.intent(key="txn_1")
    events = len(merchant.sandbox.events)

    again = merchant.intent(key="txn_1")

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(merchant.state()["payment_intents"]) == 1
    assert len(merchant.sandbox.events) == events


def test_a_replayed_decline_is_the_same_decline(merchant):
    first = merchant.intent(key="txn_d", payment_method="pm_card_declined")

    again = merchant.intent(key="txn_d", payment_method="pm_card_declined")

    assert (again.status_code, again.json()) == (402, first.json())
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("other", ["body", "path"])
def test_the_same_key_with_another_request_is_a_409_conflict(merchant, other):
    pi = merchant.authorized(key="txn_1")

    if other == "body":
        response = merchant.intent(key="txn_1", amount=999)
    else:
        response = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", key="txn_1")

    assert error_of(response) == (409, "idempotency_key_reused")
    assert response.json()["error"]["type"] == "idempotency_error"
    assert len(merchant.state()["payment_intents"]) == 1
    assert merchant.pi(pi["id"])["status"] == "requires_capture"


def test_a_request_refused_by_validation_is_not_remembered(merchant):
    refused = merchant.intent(key="txn_v", amount=0)

    corrected = merchant.intent(key="txn_v")

    assert refused.status_code == 400
    assert corrected.status_code == 200 and "idempotent-replayed" not in corrected.headers


def test_a_key_is_remembered_for_24_hours(merchant, clock):
    merchant.intent(key="txn_1")
    clock.now += 24 * 3600 + 1

    later = merchant.intent(key="txn_1", amount=999)

    assert later.status_code == 200
    assert len(merchant.state()["payment_intents"]) == 2


def test_the_same_key_under_a_form_or_json_is_the_same_request(merchant):
    merchant.ok(merchant.post("/v1/customers", {"email": "a@shop.test"}, key="k"))

    again = merchant.post("/v1/customers", form="email=a%40shop.test", key="k")

    assert again.headers["idempotent-replayed"] == "true"


# -- faults ----------------------------------------------------------------------------


def test_an_injected_error_answers_500_before_anything_happens(merchant):
    merchant.http.post(merchant.url + "/_sandbox/faults", json={"next": ["error"]})

    response = merchant.intent(key="txn_f")

    assert error_of(response) == (500, "sandbox_fault")
    assert response.json()["error"]["type"] == "api_error"
    assert merchant.state()["payment_intents"] == []
    assert merchant.intent(key="txn_f").status_code == 200


def test_a_dropped_answer_happened_and_the_retry_under_its_key_replays_it(merchant):
    merchant.http.post(merchant.url + "/_sandbox/faults", json={"next": ["drop"]})

    with pytest.raises(httpx.HTTPError):
        merchant.intent(key="txn_drop")
    retry = merchant.intent(key="txn_drop")

    assert retry.headers["idempotent-replayed"] == "true"
    assert [pi["id"] for pi in merchant.state()["payment_intents"]] == [retry.json()["id"]]
    assert ("POST", "/v1/payment_intents") in merchant.sandbox.requests_received


# -- card data -------------------------------------------------------------------------


def test_no_card_number_or_security_code_is_ever_shown_or_kept(merchant):
    numbers = ("4242424242424242", "4000000000009995", "4000000000003220")
    with_card = {"type": "card", "card": {**CARD, "cvc": "8642"}}
    answers = [
        merchant.post("/v1/payment_methods", with_card),
        merchant.intent(
            payment_method=None,
            payment_method_data={"type": "card", "card": {**CARD, "number": numbers[1]}},
        ),
    ]
    session = merchant.session()
    answers.append(merchant.browse(session["url"], {"action": "pay", "card_number": numbers[2]}))
    answers.append(merchant.get("/v1/events"))
    webhooks = merchant.http.get(merchant.url + "/_sandbox/webhooks")

    shown = [answer.text for answer in answers] + [webhooks.text, json.dumps(merchant.state())]
    for text in shown:
        assert not any(number in text for number in numbers)
        assert "4242 4242" not in text and "8642" not in text and '"cvc"' not in text
    last4 = {pm["card"]["last4"] for pm in merchant.state()["payment_methods"]}
    assert last4 == {"4242", "9995", "3220"}
