"""A customer checks out in a real browser, through paycore's web app.

The merchant (`tests.e2e.shop.CheckoutShop`) lists what can pay the cart, and the cart
is paid in two parts: a gift card charged at once (the dummy provider) and the rest
on the provider's hosted page. Chromium pays, or is declined, on that page; the
provider sends it back to paycore's web app (``/return/{gateway}``), which confirms
with the provider, completes the checkout and sends the customer on to the merchant's
page for the outcome. Both providers' webhooks reach the web app too: whichever comes
first completes the checkout, once.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from attrs import frozen
from paycore_wooshpay.sandbox import WooshPaySandbox
from playwright.sync_api import Page, expect

from paycore.checkout import CaptureMode, CheckoutStatus
from paycore.money import Money
from paycore.transactions.model import PaymentMethod, PaymentStatus
from paycore.transactions.records import Payment
from tests.e2e.hosted_pages import DECLINING_CARD, HOSTED_PAGES, PAYING_CARD, HostedPage
from tests.e2e.shop import CheckoutShop, OpenCheckoutShop

TOTAL = 4999
GIFT = 1500
# A test gift card of the dummy provider (sandbox only), holding 1,000.00 to begin with.
GIFT_CARD = PaymentMethod(type="gift_card", token="gc_test_100000")
GIFT_CARD_BALANCE = 100_000
CUSTOMER = "customer-42"

# What each provider's own record of the page's payment says once it went through
# (WooshPay and MilkyPay hold the money: authorized; XPAY sold it), and once declined.
PAID_AT_PROVIDER = {"wooshpay": "requires_capture", "milkypay": "processing", "xpay": "10"}
DECLINED_AT_PROVIDER = {"wooshpay": "canceled", "milkypay": "process_failed", "xpay": "21"}


@frozen
class Split:
    """A submitted checkout: the gift card's part paid, the rest waiting on ``page_url``."""

    checkout_id: str
    gift: Payment
    rest: Payment
    page_url: str


def split_checkout(shop: CheckoutShop) -> Split:
    """The merchant's side: a checkout of the cart, GIFT by gift card and the rest on
    the provider's page (no method given), submitted."""
    started = shop.checkout.create(shop.cart(TOTAL), owner=CUSTOMER)
    gift = shop.checkout.add_payment(
        started.id, Money(GIFT, shop.currency), gateway="dummy", payment_method=GIFT_CARD
    )
    rest = shop.checkout.add_payment(
        started.id, Money(TOTAL - GIFT, shop.currency), gateway=shop.gateway
    )

    submission = shop.checkout.submit(started.id)

    assert submission.checkout.status is CheckoutStatus.SUBMITTED
    assert set(submission.next_actions) == {rest.id}
    held = shop.checkout.capture is CaptureMode.AUTHORIZE
    paid = PaymentStatus.AUTHORIZED if held else PaymentStatus.CAPTURED
    assert shop.payment(gift.id).status is paid
    assert shop.payment(rest.id).status is PaymentStatus.REQUIRES_ACTION
    return Split(started.id, gift, rest, submission.next_actions[rest.id].url)


def landed_on(page: Page, shop: CheckoutShop, outcome: str, title: str) -> dict[str, str]:
    """Wait for the merchant's ``outcome`` page titled ``title``; its query."""
    expect(page).to_have_url(re.compile(rf"^{re.escape(shop.outcome_url(outcome))}\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return dict(parse_qsl(urlsplit(page.url).query))


def assert_released(shop: CheckoutShop, hosted: HostedPage, split: Split) -> None:
    """The checkout failed on the page's payment, and the gift card got its money back:
    voided where held, refunded where sold, in the ledger and at the dummy provider."""
    failed = shop.checkout.get(split.checkout_id)
    assert failed.status is CheckoutStatus.FAILED
    assert failed.failure is not None and failed.failure.payment_id == split.rest.id
    assert failed.order_id is None
    gift, rest = shop.payment(split.gift.id), shop.payment(split.rest.id)
    released = PaymentStatus.VOIDED if hosted.authorizes else PaymentStatus.REFUNDED
    assert (gift.status, rest.status) == (released, PaymentStatus.FAILED)
    assert shop.at_provider(gift)["status"] == str(released)
    assert shop.at_provider(rest)["status"] == DECLINED_AT_PROVIDER[shop.gateway]
    card = shop.gift_card(GIFT_CARD.token or "")
    assert (card["balance"], card["held"]) == (GIFT_CARD_BALANCE, 0)


@pytest.mark.parametrize("gateway", sorted(HOSTED_PAGES))
def test_a_gift_card_and_the_provider_s_page_pay_the_cart_and_the_customer_is_thanked(
    page: Page, checkout_shop: OpenCheckoutShop, gateway: str
) -> None:
    hosted = HOSTED_PAGES[gateway]
    shop = checkout_shop(gateway)
    options = shop.checkout.payment_options(shop.cart(TOTAL), owner=CUSTOMER)
    offered = {(option.gateway, option.type) for option in options.methods}
    assert ("dummy", "gift_card") in offered
    assert {name for name, _ in offered} == {"dummy", gateway}
    assert options.unavailable == {}
    split = split_checkout(shop)
    assert shop.gift_card(GIFT_CARD.token or "")["balance"] == GIFT_CARD_BALANCE - GIFT

    hosted.pay(page, split.page_url, PAYING_CARD)

    query = landed_on(page, shop, "thanks", "Thank you")
    completed = shop.checkout.get(split.checkout_id)
    assert completed.status is CheckoutStatus.COMPLETED
    order = completed.order_id
    assert order is not None
    assert query == {"checkout": split.checkout_id, "order": order}
    expect(page.locator("#order")).to_have_text(order)
    assert shop.pages.visits == [f"/thanks?{urlsplit(page.url).query}"]
    assert shop.settle() == []  # the web app took every webhook of both providers
    paid = PaymentStatus.AUTHORIZED if hosted.authorizes else PaymentStatus.CAPTURED
    gift, rest = shop.payment(split.gift.id), shop.payment(split.rest.id)
    assert (gift.status, gift.owner) == (rest.status, rest.owner) == (paid, order)
    assert {payment.id for payment in shop.services.payments_of(order)} == {gift.id, rest.id}
    assert shop.at_provider(gift)["status"] == str(paid)
    assert shop.at_provider(rest)["status"] == PAID_AT_PROVIDER[gateway]
    card = shop.gift_card(GIFT_CARD.token or "")
    held = GIFT if hosted.authorizes else 0
    assert (card["balance"], card["held"]) == (GIFT_CARD_BALANCE - GIFT, held)


@pytest.mark.parametrize(
    "gateway", sorted(name for name, hosted in HOSTED_PAGES.items() if not hosted.declined_stays)
)
def test_a_customer_declined_on_the_page_is_told_the_payment_failed_and_the_gift_card_is_released(
    page: Page, checkout_shop: OpenCheckoutShop, gateway: str
) -> None:
    hosted = HOSTED_PAGES[gateway]
    shop = checkout_shop(gateway)
    split = split_checkout(shop)

    hosted.pay(page, split.page_url, DECLINING_CARD)

    query = landed_on(page, shop, "failed", "Payment failed")
    assert query == {"checkout": split.checkout_id}
    expect(page.locator("#checkout")).to_have_text(split.checkout_id)
    expect(page.locator("#order")).to_have_text("")
    assert shop.settle() == []
    assert_released(shop, hosted, split)


def test_wooshpay_keeps_a_declined_customer_who_leaves_waiting_until_the_page_lapses(
    page: Page, checkout_shop: OpenCheckoutShop
) -> None:
    hosted = HOSTED_PAGES["wooshpay"]
    shop = checkout_shop("wooshpay")
    split = split_checkout(shop)
    hosted.pay(page, split.page_url, DECLINING_CARD)
    expect(page.get_by_text("Your payment was declined")).to_be_visible()
    assert page.url == split.page_url

    hosted.cancel(page)

    # Back without paying, while the page could still be paid: the checkout waits.
    query = landed_on(page, shop, "pending", "Payment pending")
    assert query == {"checkout": split.checkout_id, "status": "submitted"}
    assert shop.settle() == []
    assert shop.checkout.get(split.checkout_id).status is CheckoutStatus.SUBMITTED
    assert shop.gift_card(GIFT_CARD.token or "")["held"] == GIFT

    # The checkout session lapses (after 24 hours; here at once): WooshPay cancels its
    # intent and says so by webhook, on which the web app fails the checkout.
    assert isinstance(shop.provider, WooshPaySandbox)
    shop.provider.state.expire_session(split.page_url.rsplit("/", 1)[-1])
    assert shop.settle() == []
    assert_released(shop, hosted, split)

    # The customer follows WooshPay's link back again: now they learn it failed.
    return_url = shop.payment(split.rest.id).return_url
    assert return_url is not None
    page.goto(return_url)
    assert landed_on(page, shop, "failed", "Payment failed") == {"checkout": split.checkout_id}
