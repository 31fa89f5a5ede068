"""``/return/{gateway}``: the customer back from the provider's page, sent on to the shop.

A checkout pays by card with 3-D Secure on the dummy sandbox's page; the customer
approves (or declines, or leaves) there and the sandbox redirects them to the app's
return URL, which confirms with the gateway and redirects to the merchant's page.
The sandbox delivers no webhook here: the return alone must find the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from paycore.checkout import CheckoutStatus
from paycore.config import WebSettings
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import (
    FAILURE_URL,
    PENDING_URL,
    SUCCESS_URL,
    WebApp,
    on_the_page,
    start_checkout,
)

LOG = Callable[[], list[dict[str, Any]]]


def redirect_of(answer: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert answer.status_code == 303, answer.text
    parts = urlsplit(answer.headers["location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


@pytest.fixture
def app(web_app: Callable[..., WebApp]) -> WebApp:
    return web_app(
        deliver=False,
        web=WebSettings(success_url=SUCCESS_URL, failure_url=FAILURE_URL, pending_url=PENDING_URL),
    )


def test_an_approved_payment_sends_the_customer_to_the_success_url_with_the_order(
    app: WebApp, services: PaymentTransactionServices, http: httpx.Client, web_log: LOG
) -> None:
    started = start_checkout(services, app)
    back = on_the_page(http, started, "approve")
    assert back.startswith(f"{app.url}/return/dummy?checkout={started.checkout_id}")

    page, query = redirect_of(http.get(back))

    checkout = started.shop.get(started.checkout_id)
    assert checkout.status is CheckoutStatus.COMPLETED and checkout.order_id
    assert page == "https://shop.example/thanks"
    assert query == {
        "lang": ["en"],  # the merchant's own parameter is kept
        "checkout": [checkout.id],
        "order": [checkout.order_id],
    }
    (line,) = web_log()
    assert (line["reason"], line["checkout"], line["gateway"], line["level"]) == (
        "completed",
        checkout.id,
        "dummy",
        "INFO",
    )
    assert "payment_id" not in line["message"]  # no query value but the checkout id


def test_a_declined_payment_sends_the_customer_to_the_failure_url(
    app: WebApp, services: PaymentTransactionServices, http: httpx.Client, web_log: LOG
) -> None:
    started = start_checkout(services, app)
    back = on_the_page(http, started, "decline")

    page, query = redirect_of(http.get(back))

    assert started.shop.get(started.checkout_id).status is CheckoutStatus.FAILED
    assert page == "https://shop.example/cart"
    assert query == {"payment": ["failed"], "checkout": [started.checkout_id]}
    assert [line["reason"] for line in web_log()] == ["failed"]


def test_a_customer_back_before_paying_is_sent_to_the_pending_url(
    app: WebApp, services: PaymentTransactionServices, http: httpx.Client, web_log: LOG
) -> None:
    started = start_checkout(services, app)

    answer = http.get(f"{app.url}/return/dummy", params={"checkout": started.checkout_id})

    page, query = redirect_of(answer)
    assert page == PENDING_URL
    assert query == {"checkout": [started.checkout_id], "status": ["submitted"]}
    assert started.shop.get(started.checkout_id).status is CheckoutStatus.SUBMITTED
    assert [line["reason"] for line in web_log()] == ["pending"]


def test_without_a_pending_url_a_waiting_customer_goes_to_the_success_url(
    web_app: Callable[..., WebApp], services: PaymentTransactionServices, http: httpx.Client
) -> None:
    app = web_app(deliver=False, web=WebSettings(success_url=SUCCESS_URL))
    started = start_checkout(services, app)

    answer = http.get(f"{app.url}/return/dummy", params={"checkout": started.checkout_id})

    page, query = redirect_of(answer)
    assert page == "https://shop.example/thanks"
    assert query == {"lang": ["en"], "checkout": [started.checkout_id], "status": ["submitted"]}


def test_without_merchant_urls_a_short_page_says_the_outcome(
    web_app: Callable[..., WebApp], services: PaymentTransactionServices, http: httpx.Client
) -> None:
    app = web_app(deliver=False, web=WebSettings())
    started = start_checkout(services, app)
    back = on_the_page(http, started, "approve")

    answer = http.get(back)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    order_id = started.shop.get(started.checkout_id).order_id
    assert order_id and order_id in answer.text
    assert "went through" in answer.text


UNKNOWN = "chk_000000000000000000000000000000"


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/return/dummy", {"checkout": UNKNOWN}, "unknown_checkout"),
        ("/return/dummy", {}, "unknown_checkout"),
        ("/return/dummy", {"checkout": "<script>"}, "unknown_checkout"),
        ("/return/nosuchpay", {"checkout": UNKNOWN}, "unknown_gateway"),
    ],
    ids=["unknown checkout", "no checkout", "not a checkout id", "unknown gateway"],
)
def test_an_unknown_checkout_or_gateway_is_a_404_page(
    app: WebApp,
    http: httpx.Client,
    web_log: LOG,
    path: str,
    params: dict[str, str],
    reason: str,
) -> None:
    answer = http.get(f"{app.url}{path}", params=params)

    assert answer.status_code == 404
    assert "<script>" not in answer.text
    assert len(answer.text) < 400
    (line,) = web_log()
    assert (line["reason"], line["level"]) == (reason, "WARNING")
