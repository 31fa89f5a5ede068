"""The WooshPay sandbox over real HTTP: checkout sessions and their hosted page driven
like a browser, payment links, and wallets."""

from __future__ import annotations

import pytest

from plugins.wooshpay.tests.sandbox_client import SESSION, Merchant, error_of, serve

DAY = 24 * 3600


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock, checkout_events=True)


def event_types(merchant: Merchant) -> list[str]:
    return [str(event["type"]) for event in merchant.sandbox.events]


def test_a_session_is_open_with_its_intent_waiting(merchant, clock):
    session = merchant.session(client_reference_id="txn_cs", customer_email="a@shop.test")

    assert session["id"].startswith("cs_test_") and session["object"] == "checkout.session"
    assert session["url"] == f"{merchant.url}/pay/{session['id']}"
    assert (session["status"], session["payment_status"]) == ("open", "unpaid")
    assert (session["amount_total"], session["amount_subtotal"], session["currency"]) == (
        4000,
        4000,
        "USD",
    )
    assert session["expires_at"] == int(clock.now) + DAY
    (item,) = session["line_items"]["data"]
    assert (item["description"], item["quantity"], item["amount_total"]) == ("apple", 2, 4000)
    pi = merchant.pi(session["payment_intent"])
    assert (pi["status"], pi["amount"]) == ("requires_payment_method", 4000)
    assert pi["metadata"] == {"paycore_transaction_id": "txn_cs"}
    assert merchant.ok(merchant.get(f"/v1/checkout/sessions/{session['id']}")) == session


def test_paying_on_the_hosted_page_completes_the_session_and_returns_to_the_shop(merchant):
    session = merchant.session()

    page = merchant.browse(session["url"])
    paid = merchant.browse(session["url"], {"action": "pay", "card_number": "4242424242424242"})

    assert page.status_code == 200
    assert f'action="/pay/{session["id"]}"' in page.text and 'name="card_number"' in page.text
    assert 'value="pay"' in page.text and 'value="cancel"' in page.text
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://shop.test/done?session={session['id']}"
    after = merchant.ok(merchant.get(f"/v1/checkout/sessions/{session['id']}"))
    assert (after["status"], after["payment_status"]) == ("complete", "paid")
    assert merchant.pi(session["payment_intent"])["status"] == "succeeded"
    assert event_types(merchant)[-2:] == ["payment_intent.succeeded", "checkout.session.completed"]
    assert merchant.browse(session["url"]).status_code == 409


def test_an_authorizing_session_stays_unpaid_until_captured(merchant):
    session = merchant.session(payment_intent_data={"capture_method": "manual"})
    merchant.browse(session["url"], {"action": "pay", "card_number": "4242424242424242"})

    authorized = merchant.ok(merchant.get(f"/v1/checkout/sessions/{session['id']}"))
    merchant.ok(merchant.post(f"/v1/payment_intents/{session['payment_intent']}/capture"))
    captured = merchant.ok(merchant.get(f"/v1/checkout/sessions/{session['id']}"))

    assert (authorized["status"], authorized["payment_status"]) == ("complete", "unpaid")
    assert captured["payment_status"] == "paid"


def test_a_declined_card_can_be_replaced_on_the_page(merchant):
    session = merchant.session()

    declined = merchant.browse(session["url"], {"action": "pay", "card_number": "4000000000009995"})
    invalid = merchant.browse(session["url"], {"action": "pay", "card_number": "1234"})
    paid = merchant.browse(session["url"], {"action": "pay", "card_number": "4242424242424242"})

    assert declined.status_code == 402 and "insufficient funds" in declined.text
    assert 'name="card_number"' in declined.text and "4000000000009995" not in declined.text
    assert invalid.status_code == 402 and "card number is incorrect" in invalid.text
    assert paid.status_code == 303
    assert event_types(merchant).count("payment_intent.payment_failed") == 1


def test_a_3ds_card_on_the_page_goes_through_the_challenge(merchant):
    session = merchant.session()

    to_challenge = merchant.browse(
        session["url"], {"action": "pay", "card_number": "4000000000003220"}
    )
    declined = merchant.browse(to_challenge.headers["location"], {"result": "decline"})
    merchant.browse(session["url"], {"action": "pay", "card_number": "4000000000003220"})
    approved = merchant.browse(to_challenge.headers["location"], {"result": "approve"})

    assert to_challenge.status_code == 303
    assert to_challenge.headers["location"] == f"{merchant.url}/3ds/{session['payment_intent']}"
    assert (declined.status_code, declined.headers["location"]) == (303, session["url"])
    assert approved.headers["location"].startswith("https://shop.test/done?session=cs_test_")
    assert merchant.pi(session["payment_intent"])["status"] == "succeeded"


def test_cancel_returns_to_the_shop_and_the_session_stays_open(merchant):
    session = merchant.session()

    back = merchant.browse(session["url"], {"action": "cancel"})

    assert (back.status_code, back.headers["location"]) == (303, "https://shop.test/cart")
    assert merchant.ok(merchant.get(f"/v1/checkout/sessions/{session['id']}"))["status"] == "open"


def test_expiring_a_session_abandons_its_intent(merchant):
    session = merchant.session()

    expired = merchant.ok(merchant.post(f"/v1/checkout/sessions/{session['id']}/expire"))
    again = merchant.post(f"/v1/checkout/sessions/{session['id']}/expire")

    assert expired["status"] == "expired"
    pi = merchant.pi(session["payment_intent"])
    assert (pi["status"], pi["cancellation_reason"]) == ("canceled", "abandoned")
    assert error_of(again) == (400, "checkout_session_unexpected_state")
    page = merchant.browse(session["url"], {"action": "pay", "card_number": "4242424242424242"})
    assert page.status_code == 410
    assert "checkout.session.expired" in event_types(merchant)


def test_a_session_expires_by_itself_at_its_time(merchant, clock):
    session = merchant.session(expires_at=int(clock.now) + 3600)
    clock.now += 3600

    assert merchant.browse(session["url"]).status_code == 410
    assert merchant.pi(session["payment_intent"])["cancellation_reason"] == "abandoned"


def test_the_intent_of_an_open_session_is_canceled_by_expiring_the_session(merchant):
    session = merchant.session()

    response = merchant.post(f"/v1/payment_intents/{session['payment_intent']}/cancel")

    assert error_of(response) == (400, "payment_intent_unexpected_state")


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"mode": "subscription"}, "mode"),
        ({"success_url": "not a url"}, "success_url"),
        ({"line_items": []}, "line_items"),
        ({"line_items": [{"quantity": 1}]}, "line_items[0][price]"),
        ({"line_items": [{"price": "price_missing", "quantity": 1}]}, "line_items[0][price]"),
        ({"expires_at": 1}, "expires_at"),
    ],
)
def test_a_bad_session_is_refused_and_nothing_is_made(merchant, changes, param):
    response = merchant.post("/v1/checkout/sessions", {**SESSION, **changes})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert merchant.state()["checkout_sessions"] == merchant.state()["payment_intents"] == []


def test_a_session_saving_the_method_gets_a_customer_who_keeps_the_card(merchant):
    session = merchant.session(
        customer_email="ann@shop.test", payment_intent_data={"setup_future_usage": "off_session"}
    )
    merchant.browse(session["url"], {"action": "pay", "card_number": "4242424242424242"})

    saved = merchant.ok(merchant.get(f"/v1/customers/{session['customer']}/payment_methods"))

    assert [pm["card"]["last4"] for pm in saved["data"]] == ["4242"]


def test_sessions_list_by_their_intent(merchant):
    session = merchant.session()
    merchant.session()

    found = merchant.ok(
        merchant.get("/v1/checkout/sessions", {"payment_intent": session["payment_intent"]})
    )

    assert [s["id"] for s in found["data"]] == [session["id"]]


# -- payment links ---------------------------------------------------------------------


def new_link(merchant: Merchant) -> dict:
    product = merchant.ok(merchant.post("/v1/products", {"name": "pear"}, key="t:product"))
    price = merchant.ok(
        merchant.post(
            "/v1/prices",
            {"product": product["id"], "unit_amount": 1500, "currency": "eur"},
            key="t:price",
        )
    )
    return merchant.ok(
        merchant.post(
            "/v1/payment_links",
            {
                "line_items": [{"price": price["id"], "quantity": 1}],
                "metadata": {"paycore_transaction_id": "txn_link"},
                "payment_intent_data": {
                    "capture_method": "manual",
                    "metadata": {"paycore_transaction_id": "txn_link"},
                },
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"url": "https://shop.test/thanks"},
                },
            },
            key="t:link",
        )
    )


def test_a_payment_link_makes_a_session_per_visit_which_is_paid_like_any(merchant):
    link = new_link(merchant)
    assert link["url"] == f"{merchant.url}/link/{link['id']}" and link["active"]

    visit = merchant.browse(link["url"])
    second_visit = merchant.browse(link["url"])
    paid = merchant.browse(
        visit.headers["location"], {"action": "pay", "card_number": "4242424242424242"}
    )

    assert (
        visit.status_code == 303 and visit.headers["location"] != second_visit.headers["location"]
    )
    assert paid.headers["location"] == "https://shop.test/thanks"
    query = "metadata['paycore_transaction_id']:'txn_link' AND status:'requires_capture'"
    found = merchant.ok(merchant.get("/v1/payment_intents/search", {"query": query}))
    (pi,) = found["data"]
    assert (pi["amount"], pi["currency"]) == (1500, "EUR")
    assert merchant.ok(merchant.get(f"/v1/payment_links/{link['id']}")) == link


def test_a_deactivated_link_is_gone(merchant):
    link = new_link(merchant)

    merchant.ok(merchant.post(f"/v1/payment_links/{link['id']}", {"active": False}))

    assert merchant.browse(link["url"]).status_code == 410


def test_a_price_needs_an_existing_product(merchant):
    response = merchant.post(
        "/v1/prices", {"product": "prod_missing", "unit_amount": 100, "currency": "USD"}
    )

    assert error_of(response) == (400, "resource_missing")


# -- wallets ---------------------------------------------------------------------------


def test_a_wallet_payment_redirects_to_the_wallet_page(merchant):
    pi = merchant.ok(
        merchant.intent(
            payment_method=None,
            payment_method_data={"type": "alipay"},
            payment_method_types=["alipay"],
            capture_method="automatic",
            return_url="https://shop.test/back?x=1",
        )
    )

    assert pi["status"] == "requires_action"
    assert pi["next_action"]["type"] == "redirect_to_url"
    assert pi["next_action"]["redirect_to_url"]["url"] == f"{merchant.url}/wallet/{pi['id']}"
    back = merchant.challenge(pi, "approve")
    assert back.headers["location"].startswith(
        f"https://shop.test/back?x=1&payment_intent={pi['id']}"
    )
    assert merchant.pi(pi["id"])["status"] == "succeeded"
    assert merchant.browse(f"/3ds/{pi['id']}").status_code == 200  # nothing waits there


def test_a_session_offers_a_button_per_wallet(merchant):
    session = merchant.session(payment_method_types=["card", "wechat_pay"])

    page = merchant.browse(session["url"])
    redirected = merchant.browse(session["url"], {"action": "pay:wechat_pay"})
    declined = merchant.browse(redirected.headers["location"], {"result": "decline"})

    assert 'value="pay:wechat_pay"' in page.text
    assert redirected.headers["location"].endswith(f"/wallet/{session['payment_intent']}")
    assert declined.headers["location"] == session["url"]
    assert "declined" in merchant.browse(session["url"]).text
