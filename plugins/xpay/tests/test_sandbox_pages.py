"""The XPAY sandbox's hosted page over real HTTP: paying and failing, the test cards, a
number that is not a card, the redirect back with ``state`` and ``xrayOperationID``,
the page's lifetime, and the card number kept nowhere."""

from __future__ import annotations

import json

import pytest
from paycore_xpay.sandbox_cards import TEST_CARDS

from paycore.sandbox.browser import submit_form
from plugins.xpay.tests.sandbox_client import (
    FAIL_URL,
    PAYING_CARD,
    SUCCESS_URL,
    Partner,
    redirect_of,
    serve,
)

DECLINING = [(card, reason) for card, reason in TEST_CARDS.items() if reason != "paid"]


@pytest.fixture
def partner(paycore_sandbox_server, http, clock) -> Partner:
    return serve(paycore_sandbox_server, http, clock=clock)


# -- the page ------------------------------------------------------------------------------


def test_the_page_shows_the_amount_in_uah_and_asks_for_a_card(partner):
    link = partner.link(PaymentSum=123_456, Purpose="Order 42 at the shop")

    page = partner.browse(link["URI"])

    assert page.status_code == 200
    assert "Amount: 1234.56 UAH" in page.text and "Order 42 at the shop" in page.text
    assert 'name="card_number"' in page.text
    assert 'value="pay"' in page.text and 'value="fail"' in page.text
    assert f'action="/checkout/{link["uuid"]}"' in page.text


def test_an_unknown_page_is_404(partner):
    partner.link()

    assert partner.browse(f"{partner.url}/checkout/no-such-page").status_code == 404
    assert partner.pay(f"{partner.url}/checkout/no-such-page").status_code == 404


# -- paying and failing --------------------------------------------------------------------


def test_a_paying_card_pays_and_sends_the_customer_to_success(partner, http):
    link = partner.link(PaymentSum=100_55)

    answer = submit_form(http, link["URI"], "pay", {"card_number": PAYING_CARD})

    assert redirect_of(answer) == (
        SUCCESS_URL,
        {"state": "10", "xrayOperationID": str(link["OperationID"])},
    )
    paid = partner.operation(link["OperationID"])
    assert (paid["OperationStatus"], paid["Sum"]) == ("10", 100_55)
    assert paid["TxnID"].isdigit()
    assert "URI" not in paid and "Reason" not in paid


@pytest.mark.parametrize(("card", "reason"), DECLINING)
def test_a_declining_card_fails_the_payment_with_its_reason(partner, card, reason):
    link = partner.link()

    answer = partner.pay(link["URI"], card)

    assert redirect_of(answer) == (
        FAIL_URL,
        {"state": "21", "xrayOperationID": str(link["OperationID"])},
    )
    failed = partner.operation(link["OperationID"])
    assert (failed["OperationStatus"], failed["Reason"]) == ("21", reason)


def test_the_fail_button_declines_the_payment(partner, http):
    link = partner.link()

    answer = submit_form(http, link["URI"], "fail")

    assert redirect_of(answer)[1]["state"] == "21"
    assert partner.operation(link["OperationID"])["Reason"] == "declined"


@pytest.mark.parametrize("card", ["4111111111111111", "5555 5555 5555 4444", "378282246310005"])
def test_any_other_card_number_that_passes_luhn_pays(partner, card):
    link = partner.link()

    assert redirect_of(partner.pay(link["URI"], card))[1]["state"] == "10"


@pytest.mark.parametrize("card", ["4242424242424241", "4242", "4242x42424242424", ""])
def test_a_number_that_is_not_a_card_shows_the_form_again_400(partner, card):
    link = partner.link()

    page = partner.pay(link["URI"], card)

    assert page.status_code == 400
    assert "The card number is incorrect." in page.text and 'name="card_number"' in page.text
    assert not card or card not in page.text
    assert partner.operation(link["OperationID"])["OperationStatus"] == "1"


def test_a_submission_without_a_known_button_is_400(partner):
    link = partner.link()

    page = partner.browse(link["URI"], {"action": "later", "card_number": PAYING_CARD})

    assert page.status_code == 400 and "Choose Pay or Fail." in page.text
    assert partner.operation(link["OperationID"])["OperationStatus"] == "1"


def test_a_paid_page_says_so_and_takes_no_second_payment(partner):
    link = partner.link()
    partner.pay(link["URI"])
    paid = partner.operation(link["OperationID"])

    shown = partner.browse(link["URI"])
    again = partner.pay(link["URI"], "4000000000000002")

    assert shown.status_code == 200 and "This payment is paid." in shown.text
    assert 'name="card_number"' not in shown.text
    assert again.status_code == 409
    assert partner.operation(link["OperationID"]) == paid


def test_a_failed_page_says_so(partner):
    link = partner.link()
    partner.pay(link["URI"], "4000000000000002")

    shown = partner.browse(link["URI"])

    assert "This payment failed." in shown.text


def test_the_redirect_keeps_the_query_of_the_partners_url(partner):
    link = partner.link(
        Callback={"PaySuccess": {"URL": "https://shop.test/back?order=42"}},
    )

    location = partner.pay(link["URI"]).headers["location"]

    assert (
        location
        == f"https://shop.test/back?order=42&state=10&xrayOperationID={link['OperationID']}"
    )


def test_without_return_urls_a_page_says_how_the_payment_ended(partner):
    link = partner.link(Callback=None)

    paid = partner.pay(link["URI"])

    assert paid.status_code == 200 and "the payment is done" in paid.text


# -- the page's lifetime ---------------------------------------------------------------------


def test_a_page_past_its_fifteen_minutes_is_410_and_the_payment_fails(partner, clock):
    link = partner.link()
    clock.now += 15 * 60 - 1
    assert partner.browse(link["URI"]).status_code == 200

    clock.now += 1
    page = partner.browse(link["URI"])

    assert page.status_code == 410 and "expired" in page.text
    expired = partner.operation(link["OperationID"])
    assert (expired["OperationStatus"], expired["Reason"]) == ("21", "page_expired")
    assert expired["DateTime"] == "2026-01-01 00:15:00"
    assert partner.pay(link["URI"]).status_code == 410


def test_a_page_lives_its_ttl(partner, clock):
    link = partner.link(TTL=2)
    clock.now += 2 * 60

    assert partner.browse(link["URI"]).status_code == 410


def test_the_expiry_is_noticed_by_a_status_query_too(partner, clock):
    link = partner.link()
    clock.now += 3600

    status = partner.operation(link["OperationID"])

    assert (status["OperationStatus"], status["Reason"]) == ("21", "page_expired")
    assert "URI" not in status
    assert partner.browse(link["URI"]).status_code == 410


def test_a_control_call_expires_a_page_now(partner, http):
    link = partner.link()
    route = f"{partner.url}/_sandbox/operations/{link['OperationID']}/expire"

    expired = http.post(route)
    again = http.post(route)

    assert expired.status_code == 200
    assert (expired.json()["OperationStatus"], expired.json()["Reason"]) == ("21", "page_expired")
    assert again.status_code == 409
    assert http.post(f"{partner.url}/_sandbox/operations/1/expire").status_code == 404
    assert partner.browse(link["URI"]).status_code == 410


# -- the card stays nowhere ------------------------------------------------------------------


def test_the_card_number_is_never_kept_shown_or_answered(partner, http):
    link = partner.link()
    refused = partner.pay(link["URI"], "4242424242424241")
    partner.pay(link["URI"], PAYING_CARD)
    declined = partner.link()
    partner.pay(declined["URI"], "4000000000009995")

    seen = [
        refused.text,
        partner.browse(link["URI"]).text,
        partner.browse(declined["URI"]).text,
        http.get(partner.url + "/_sandbox/state").text,
        http.get(partner.url + "/_sandbox/webhooks").text,
        http.get(partner.url + "/_sandbox/rpc").text,
        json.dumps(partner.operation(link["OperationID"])),
        json.dumps(partner.operation(declined["OperationID"])),
    ]

    for text in seen:
        for number in ("4242424242424241", PAYING_CARD, "4000000000009995", "424242"):
            assert number not in text
