"""The MilkyPay sandbox's customer pages over real HTTP: the hosted page and its test
cards, 3-D Secure, Cancel, the payment link and the widget script."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from paycore_milkypay.sandbox_pages import WIDGET_SCRIPT

from paycore.sandbox.browser import PageError, submit_form
from plugins.milkypay.tests.sandbox_client import (
    FAIL_URL,
    RETURN_URLS,
    SUCCESS_URL,
    Merchant,
    serve,
)

PAYING = "4242424242424242"
CHALLENGE = "4000000000003220"


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


def page_of(merchant: Merchant, **attributes) -> tuple[str, str]:
    """A new invoice on the hosted page: (its id, its page's URL)."""
    invoice = merchant.invoice(return_urls=RETURN_URLS, **attributes)
    return invoice["id"], invoice["attributes"]["flow_data"]["action"]


# -- the hosted page -------------------------------------------------------------------


def test_the_page_asks_for_a_card_and_offers_the_services_when_none_is_named(merchant):
    _, url = page_of(merchant)
    _, named = page_of(merchant, service="payment_card_usd_hpp")

    page = merchant.browse(url)

    assert page.status_code == 200
    assert 'name="card_number"' in page.text and 'value="pay"' in page.text
    assert 'value="cancel"' in page.text
    assert '<select name="service"><option value="payment_card_usd_hpp" selected>' in page.text
    assert "<select" not in merchant.browse(named).text


def test_a_paying_card_charges_the_invoice_and_returns_to_success(merchant, http):
    cpi, url = page_of(merchant, amount=Decimal("100.55"))

    answer = submit_form(http, url, "pay", {"card_number": PAYING})

    assert (answer.status_code, answer.headers["location"]) == (303, SUCCESS_URL)
    after = merchant.read(cpi)
    assert (after["status"], after["resolution"]) == ("processed", "ok")
    assert after["processed_amount"] == Decimal("100.55")
    assert after["service"] == "payment_card_usd_hpp"


def test_a_delayed_charge_paid_on_the_page_is_held(merchant, http):
    cpi, url = page_of(merchant, flow="delayed_charge")

    answer = submit_form(http, url, "pay", {"card_number": "5555 5555 5555 4444"})

    assert answer.headers["location"] == SUCCESS_URL
    after = merchant.read(cpi)
    assert (after["status"], after["reserved_amount"]) == ("processing", Decimal("10.00"))


@pytest.mark.parametrize(
    ("card", "resolution"),
    [
        ("4000000000000002", "declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4100000000000019", "fraud_suspected"),
    ],
)
def test_a_declining_card_fails_the_invoice_and_returns_to_fail(merchant, http, card, resolution):
    cpi, url = page_of(merchant)

    answer = submit_form(http, url, "pay", {"card_number": card})

    assert (answer.status_code, answer.headers["location"]) == (303, FAIL_URL)
    assert (merchant.read(cpi)["status"], merchant.read(cpi)["resolution"]) == (
        "process_failed",
        resolution,
    )


def test_another_luhn_valid_number_pays(merchant, http):
    cpi, url = page_of(merchant)

    submit_form(http, url, "pay", {"card_number": "4111111111111111"})

    assert merchant.read(cpi)["status"] == "processed"


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "not a card", ""])
def test_a_wrong_number_shows_the_form_again_and_changes_nothing(merchant, number):
    cpi, url = page_of(merchant)

    answer = merchant.browse(url, {"action": "pay", "card_number": number})

    assert answer.status_code == 422
    assert 'name="card_number"' in answer.text and "incorrect" in answer.text
    if number:
        assert number not in answer.text
    assert merchant.read(cpi)["status"] == "created"


def test_a_service_the_invoice_cannot_use_is_refused_on_the_page(merchant):
    cpi, url = page_of(merchant)

    for service in ("test_usd", "payment_card_eur_hpp"):
        answer = merchant.browse(url, {"action": "pay", "card_number": PAYING, "service": service})
        assert answer.status_code == 422 and "Choose a payment service" in answer.text
    chosen = merchant.browse(
        url, {"action": "pay", "card_number": PAYING, "service": "payment_card_usd_hpp"}
    )
    assert chosen.status_code == 303 and merchant.read(cpi)["status"] == "processed"


def test_an_amount_no_card_service_takes_offers_only_cancel(merchant):
    _, url = page_of(merchant, amount=Decimal("0.29"))

    page = merchant.browse(url)

    assert 'value="pay"' not in page.text and 'value="cancel"' in page.text
    assert "No payment service accepts this amount" in page.text


def test_cancel_terminates_the_invoice_and_returns_to_fail(merchant, http):
    cpi, url = page_of(merchant)

    answer = submit_form(http, url, "cancel")

    assert answer.headers["location"] == FAIL_URL
    after = merchant.read(cpi)
    assert (after["status"], after["resolution"]) == ("terminated", "terminated")


def test_without_return_urls_the_page_says_how_it_ended(merchant, http):
    paid = merchant.invoice(return_url=None)["attributes"]["flow_data"]["action"]
    one_url = merchant.invoice(return_url="https://shop.test/back")
    url = one_url["attributes"]["flow_data"]["action"]

    answer = submit_form(http, paid, "pay", {"card_number": "4000000000000002"})
    back = submit_form(http, url, "cancel")

    assert answer.status_code == 200 and "The payment failed (declined)" in answer.text
    assert back.headers["location"] == "https://shop.test/back"


def test_a_closed_invoice_shows_a_message_and_takes_no_second_payment(merchant, http):
    cpi, url = page_of(merchant)
    submit_form(http, url, "pay", {"card_number": PAYING})

    page = merchant.browse(url)
    again = merchant.browse(url, {"action": "pay", "card_number": PAYING})

    assert page.status_code == 200 and "is processed" in page.text and "<form" not in page.text
    assert again.status_code == 409
    assert merchant.read(cpi)["processed_amount"] == Decimal("10.00")
    with pytest.raises(PageError):
        submit_form(http, url, "pay", {"card_number": PAYING})


def test_an_expired_invoice_cannot_be_paid(merchant, http, clock):
    cpi, url = page_of(merchant)
    clock.now += 24 * 3600

    page = merchant.browse(url)

    assert "is expired" in page.text and "<form" not in page.text
    assert merchant.read(cpi)["status"] == "expired"


def test_an_unknown_invoice_is_a_404_page(merchant):
    assert merchant.browse("/hpp/?cpi=cpi_missing").status_code == 404
    assert merchant.browse("/hpp/?cpi=cpi_missing", {"action": "pay"}).status_code == 404
    assert merchant.browse("/hpp/").status_code == 400


# -- 3-D Secure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("button", "status", "resolution", "location"),
    [
        ("approve", "processed", "ok", SUCCESS_URL),
        ("decline", "process_failed", "authentication_failed", FAIL_URL),
    ],
)
def test_a_challenge_card_asks_for_3ds_first(merchant, http, button, status, resolution, location):
    cpi, url = page_of(merchant)

    asked = submit_form(http, url, "pay", {"card_number": CHALLENGE})

    assert (asked.status_code, asked.headers["location"]) == (303, f"/hpp/3ds/{cpi}")
    assert merchant.read(cpi)["status"] == "processing"
    assert "waits for 3-D Secure" in merchant.browse(url).text
    answered = submit_form(http, merchant.url + asked.headers["location"], button)
    assert answered.headers["location"] == location
    after = merchant.read(cpi)
    assert (after["status"], after["resolution"]) == (status, resolution)
    again = merchant.browse(f"/hpp/3ds/{cpi}", {"action": "approve"})
    assert again.status_code == 409


def test_a_challenge_left_unanswered_expires_with_the_invoice(merchant, http, clock):
    cpi, url = page_of(merchant)
    submit_form(http, url, "pay", {"card_number": CHALLENGE})
    clock.now += 24 * 3600

    assert merchant.read(cpi)["status"] == "expired"
    assert "is expired" in merchant.browse(f"/hpp/3ds/{cpi}").text


def test_the_3ds_page_of_an_invoice_not_challenged_has_no_form(merchant):
    cpi, _ = page_of(merchant)

    assert "<form" not in merchant.browse(f"/hpp/3ds/{cpi}").text
    assert merchant.browse("/hpp/3ds/cpi_missing").status_code == 404
    assert merchant.browse(f"/hpp/3ds/{cpi}", {"action": "maybe"}).status_code == 400


CONTROL_PATHS = ("/_sandbox/webhooks", "/_sandbox/state")


def test_a_card_number_is_never_kept_or_shown(merchant, http):
    cpi, url = page_of(merchant)
    _, challenged = page_of(merchant)

    submit_form(http, url, "pay", {"card_number": PAYING})
    submit_form(http, challenged, "pay", {"card_number": CHALLENGE})

    control = [merchant.http.get(merchant.url + path) for path in CONTROL_PATHS]
    assert [answer.status_code for answer in control] == [200, 200]
    seen = [
        json.dumps(merchant.sandbox.snapshot(), default=str),
        *(answer.text for answer in control),
        merchant.browse(url).text,
        merchant.browse(challenged).text,
        merchant.get(f"/api/payment-invoices/{cpi}").text,
    ]
    for text in seen:
        assert PAYING not in text and CHALLENGE not in text


# -- the payment link and the widget ---------------------------------------------------


def test_a_payment_link_creates_its_invoice_once_per_reference_id(merchant, http):
    link = merchant.link(
        reference_id="order-L",
        description="Link order",
        return_url=SUCCESS_URL,
        locale="uk",
        **{"metadata[cart]": "42", "customer[reference_id]": "cus-9"},
    )

    first = merchant.browse(link)
    second = merchant.browse(link)

    assert first.status_code == second.status_code == 200
    (invoice,) = merchant.state()["invoices"].values()
    assert (invoice["reference_id"], invoice["source"]) == ("order-L", "hpp")
    assert (invoice["amount"], invoice["payment_flow"]) == (Decimal("10.50"), "charge")
    assert invoice["metadata"] == {"cart": "42"}
    assert invoice["customer"] == {"reference_id": "cus-9"}
    assert invoice["description"] == "Link order" and invoice["callback_url"] is None
    answer = submit_form(http, link, "pay", {"card_number": PAYING})
    assert answer.headers["location"] == SUCCESS_URL
    assert merchant.read(invoice["id"])["status"] == "processed"
    assert "is processed" in merchant.browse(link).text
    assert len(merchant.state()["invoices"]) == 1


def test_a_link_naming_the_test_service_pays_at_once(merchant):
    link = merchant.link(service="test_usd", **{"service_fields[test_details_success_rate]": "100"})

    page = merchant.browse(link)

    (invoice,) = merchant.state()["invoices"].values()
    assert (invoice["status"], invoice["service"]) == ("processed", "test_usd")
    assert page.status_code == 200 and "is processed" in page.text


def test_a_link_without_a_reference_id_opens_a_new_invoice_each_time(merchant):
    merchant.browse(merchant.link())
    merchant.browse(merchant.link())

    assert len(merchant.state()["invoices"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"public_key": "pk_test_other"},
        {"amount": "ten"},
        {"amount": "10.505"},
        {"currency": "XXX"},
        {"amount": "0"},
        {"callback_url": "https://evil.test/cb"},
    ],
)
def test_a_bad_link_is_a_400_page_and_creates_nothing(merchant, params):
    page = merchant.browse(merchant.link(**params))

    assert page.status_code == 400 and "<form" not in page.text
    assert merchant.state()["invoices"] == {}


def test_a_link_is_403_when_the_account_forbids_public_creation(paycore_sandbox_server, http):
    merchant = serve(paycore_sandbox_server, http, public_creation=False)

    assert merchant.browse(merchant.link()).status_code == 403
    assert merchant.state()["invoices"] == {}


def test_a_link_whose_reference_id_a_refund_used_is_refused(merchant):
    paid = merchant.paid()
    merchant.refund(paid["id"], 1, reference_id="rf-used")

    page = merchant.browse(merchant.link(reference_id="rf-used"))

    assert page.status_code == 400 and "already used" in page.text


def test_the_widget_script_opens_the_link_from_hppconfig(merchant):
    script = merchant.browse("/widget/payment-widget.js")

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert script.text == WIDGET_SCRIPT
    assert all(name in script.text for name in ("metadata", "service_fields", "customer"))
    for needed in ("window.HPPConfig", "payment_widget", "iframe", "public_key", '"["'):
        assert needed in script.text
