"""A customer pays on each provider sandbox's hosted page in a real browser.

paycore records the payment waiting for the customer, with the provider's page as its
next action; Chromium opens that page, the card number is typed into its form and the
pay button clicked; the provider sends the browser back to the shop's order page and
tells the shop by webhook, which settles the payment in the ledger.
"""

from __future__ import annotations

import re

import pytest
from paycore_wooshpay.sandbox import WooshPaySandbox
from playwright.sync_api import Page, expect

from paycore.money import Money
from paycore.transactions.model import DeclineReason, PaymentStatus, TransactionStatus
from tests.e2e.hosted_pages import DECLINING_CARD, HOSTED_PAGES, PAYING_CARD
from tests.e2e.shop import OpenShop

AMOUNT = 4999


def order_page_reached(page: Page, shop_url: str, order: str) -> None:
    expect(page).to_have_url(re.compile(rf"^{re.escape(shop_url)}/orders/{order}(\?.*)?$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Order page")


@pytest.mark.parametrize("gateway", sorted(HOSTED_PAGES))
def test_a_customer_who_pays_lands_on_the_order_page_and_the_webhook_settles_the_payment(
    page: Page, shop: OpenShop, gateway: str
) -> None:
    hosted = HOSTED_PAGES[gateway]
    store = shop(gateway)
    amount = Money(AMOUNT, hosted.currency)
    waiting = store.send_to_hosted_page(amount, order="order-1", sale=not hosted.authorizes)
    assert waiting.next_action is not None

    hosted.pay(page, waiting.next_action.url, PAYING_CARD)

    order_page_reached(page, store.url, "order-1")
    assert [visit.split("?")[0] for visit in store.orders.visits] == ["/orders/order-1"]
    assert store.transaction(waiting).status is TransactionStatus.REQUIRES_ACTION
    assert store.settle().get("applied", 0) >= 1  # the webhook, nothing else, settles it
    settled, payment = store.transaction(waiting), store.payment(waiting)
    assert settled.status is TransactionStatus.SUCCEEDED
    if hosted.authorizes:
        assert payment.status is PaymentStatus.AUTHORIZED
        assert (payment.authorized, payment.captured) == (amount, Money(0, hosted.currency))
    else:
        assert payment.status is PaymentStatus.CAPTURED
        assert payment.captured == amount


@pytest.mark.parametrize(
    "gateway", sorted(name for name, hosted in HOSTED_PAGES.items() if not hosted.declined_stays)
)
def test_a_declined_customer_is_sent_back_to_the_shop_and_the_payment_is_declined(
    page: Page, shop: OpenShop, gateway: str
) -> None:
    hosted = HOSTED_PAGES[gateway]
    store = shop(gateway)
    amount = Money(AMOUNT, hosted.currency)
    waiting = store.send_to_hosted_page(amount, order="order-2", sale=not hosted.authorizes)
    assert waiting.next_action is not None

    hosted.pay(page, waiting.next_action.url, DECLINING_CARD)

    order_page_reached(page, store.url, "order-2")
    store.settle()
    declined, payment = store.transaction(waiting), store.payment(waiting)
    assert declined.status is TransactionStatus.DECLINED
    assert declined.decline_reason is DeclineReason.CARD_DECLINED
    assert payment.status is PaymentStatus.FAILED
    assert (payment.authorized, payment.captured) == (Money(0, hosted.currency),) * 2


def test_wooshpay_keeps_a_declined_customer_on_its_page_and_another_card_pays(
    page: Page, shop: OpenShop
) -> None:
    hosted = HOSTED_PAGES["wooshpay"]
    store = shop("wooshpay")
    waiting = store.send_to_hosted_page(Money(AMOUNT, "USD"), order="order-3")
    assert waiting.next_action is not None
    checkout_page = waiting.next_action.url

    hosted.pay(page, checkout_page, DECLINING_CARD)

    expect(page.get_by_text("Your payment was declined")).to_be_visible()
    assert page.url == checkout_page
    assert store.orders.visits == []
    store.settle()  # the failed attempt is acknowledged: the customer may try again
    assert store.transaction(waiting).status is TransactionStatus.REQUIRES_ACTION

    hosted.pay(page, checkout_page, PAYING_CARD)

    order_page_reached(page, store.url, "order-3")
    store.settle()
    assert store.transaction(waiting).status is TransactionStatus.SUCCEEDED
    assert store.payment(waiting).status is PaymentStatus.AUTHORIZED


def test_wooshpay_declines_the_payment_once_a_declined_customer_leaves_and_the_page_lapses(
    page: Page, shop: OpenShop
) -> None:
    hosted = HOSTED_PAGES["wooshpay"]
    store = shop("wooshpay")
    waiting = store.send_to_hosted_page(Money(AMOUNT, "USD"), order="order-4")
    assert waiting.next_action is not None
    hosted.pay(page, waiting.next_action.url, DECLINING_CARD)
    expect(page.get_by_text("Your payment was declined")).to_be_visible()

    hosted.cancel(page)

    order_page_reached(page, store.url, "order-4")
    store.settle()
    assert store.transaction(waiting).status is TransactionStatus.REQUIRES_ACTION
    # The checkout session lapses (after 24 hours; here at once): its intent is canceled.
    assert isinstance(store.sandbox, WooshPaySandbox)
    store.sandbox.state.expire_session(waiting.next_action.url.rsplit("/", 1)[-1])
    store.settle()
    assert store.transaction(waiting).status is TransactionStatus.DECLINED
    assert store.payment(waiting).status is PaymentStatus.FAILED
