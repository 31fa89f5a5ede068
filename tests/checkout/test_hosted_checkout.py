"""A checkout through a provider's hosted page, with WooshPay's sandbox: split tender of a
card charged directly (the dummy) and a card paid on WooshPay's page, settled by its
webhook or by the customer's return, whichever comes first; and the customer's saved
cards, kept at WooshPay."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

pytest.importorskip("paycore_wooshpay")

from paycore_wooshpay.gateway import WooshPayGateway
from paycore_wooshpay.sandbox import DEFAULT_SECRET_KEY, WooshPaySandbox

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.demo_checkout import webhook_dispositions
from paycore.errors import NotFound, StateError
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.sandbox.browser import PageError, submit_form
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.testing.pytest_plugin import ServeSandbox
from paycore.transactions.model import PaymentMethod, PaymentStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

from .conftest import CARD, cart

PAYING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
BASE = "https://shop.example/paycore"


@pytest.fixture
def wooshpay(
    paycore_sandbox_server: ServeSandbox, paycore_webhook_receiver: WebhookReceiver
) -> WooshPaySandbox:
    sandbox = WooshPaySandbox(seed=1, webhook_url=paycore_webhook_receiver.url)
    sandbox.served_at = paycore_sandbox_server(sandbox).url  # type: ignore[attr-defined]
    return sandbox


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway, wooshpay: WooshPaySandbox
) -> Iterator[PaymentTransactionServices]:
    gateway = WooshPayGateway.from_config(wooshpay.gateway_config(wooshpay.served_at))  # type: ignore[attr-defined]
    services = PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway, "wooshpay": gateway}, hooks=None
    )
    yield services
    services.close()


@pytest.fixture
def deliver(
    services: PaymentTransactionServices,
    wooshpay: WooshPaySandbox,
    paycore_webhook_receiver: WebhookReceiver,
) -> Callable[[], dict[str, int]]:
    """Apply the webhooks WooshPay sent so far, as the web app would."""
    applied = 0

    def deliver() -> dict[str, int]:
        nonlocal applied
        wooshpay.wait_for_webhooks()
        received = paycore_webhook_receiver.received[applied:]
        applied += len(received)
        driver: GatewayDriver = services.drivers["wooshpay"]
        return webhook_dispositions(services, "wooshpay", driver, received)

    return deliver


def _split(checkout: CheckoutService) -> tuple[str, str, str]:
    """A 30.00 checkout: 10.00 by a card charged directly, 20.00 on WooshPay's page."""
    started = checkout.create(cart(3000), owner="customer-7")
    direct = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    on_page = checkout.add_payment(started.id, Money(2000, "USD"), gateway="wooshpay")
    return started.id, direct.id, on_page.id


def test_the_page_payment_comes_back_as_the_next_action_with_urls_into_the_web_app(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    checkout_id, direct, on_page = _split(checkout)
    assert (
        services.get_payment(on_page).return_url == f"{BASE}/return/wooshpay?checkout={checkout_id}"
    )
    assert services.get_payment(on_page).notification_url == f"{BASE}/webhooks/wooshpay"

    submission = checkout.submit(checkout_id)

    assert submission.checkout.status is CheckoutStatus.SUBMITTED
    assert set(submission.next_actions) == {on_page}
    assert services.get_payment(direct).status is PaymentStatus.AUTHORIZED
    # Submitting again sends nothing twice: the same page comes back.
    again = checkout.submit(checkout_id)
    assert again.next_actions[on_page].url == submission.next_actions[on_page].url
    assert len(services.list_transactions(direct)) == 1


def test_paid_on_the_page_then_webhook_completes_and_the_return_is_a_no_op(
    checkout: CheckoutService,
    services: PaymentTransactionServices,
    browser: httpx.Client,
    deliver: Callable[[], dict[str, int]],
) -> None:
    checkout_id, direct, on_page = _split(checkout)
    page = checkout.submit(checkout_id).next_actions[on_page].url

    answer = submit_form(browser, page, "pay", {"card_number": PAYING_CARD})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{BASE}/return/wooshpay?checkout={checkout_id}")

    assert deliver().get("applied", 0) >= 1
    completed = checkout.complete(checkout_id)  # what the webhook route does
    assert completed.status is CheckoutStatus.COMPLETED
    order = completed.order_id
    returned = checkout.complete(checkout_id, confirm=True)  # the customer's return, later
    assert returned == completed
    assert {p.id for p in services.payments_of(order or "")} == {direct, on_page}


def test_the_return_before_the_webhook_confirms_with_the_provider(
    checkout: CheckoutService,
    services: PaymentTransactionServices,
    browser: httpx.Client,
    deliver: Callable[[], dict[str, int]],
) -> None:
    checkout_id, _, on_page = _split(checkout)
    page = checkout.submit(checkout_id).next_actions[on_page].url
    submit_form(browser, page, "pay", {"card_number": PAYING_CARD})

    # No webhook applied yet: without confirming, the checkout still waits …
    assert checkout.complete(checkout_id).status is CheckoutStatus.SUBMITTED
    # … the return asks WooshPay, which says paid.
    completed = checkout.complete(checkout_id, confirm=True)
    assert completed.status is CheckoutStatus.COMPLETED
    assert services.get_payment(on_page).status is PaymentStatus.AUTHORIZED
    # The webhook arriving afterwards changes nothing.
    deliver()
    assert checkout.complete(checkout_id) == completed


def test_a_declined_card_on_the_page_waits_for_another_then_expiry_fails_it(
    checkout: CheckoutService,
    services: PaymentTransactionServices,
    browser: httpx.Client,
    deliver: Callable[[], dict[str, int]],
    wooshpay: WooshPaySandbox,
) -> None:
    checkout_id, direct, on_page = _split(checkout)
    page = checkout.submit(checkout_id).next_actions[on_page].url
    with pytest.raises(PageError, match="402"):
        submit_form(browser, page, "pay", {"card_number": DECLINED_CARD})
    deliver()
    # WooshPay keeps the page open for another card: the checkout waits.
    assert checkout.complete(checkout_id, confirm=True).status is CheckoutStatus.SUBMITTED

    # The customer gives up; the session expires.
    (opened,) = services.list_transactions(on_page)
    expired = browser.post(
        f"{wooshpay.served_at}/v1/checkout/sessions/{opened.gateway_transaction_id}/expire",  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {DEFAULT_SECRET_KEY}"},
    )
    assert expired.status_code == 200, expired.text
    failed = checkout.complete(checkout_id, confirm=True)

    assert failed.status is CheckoutStatus.FAILED
    assert failed.failure is not None and failed.failure.payment_id == on_page
    assert services.get_payment(direct).status is PaymentStatus.VOIDED


def test_saved_cards_are_listed_paid_without_a_page_and_deleted_at_the_gateway(
    checkout: CheckoutService, services: PaymentTransactionServices, wooshpay: WooshPaySandbox
) -> None:
    stored = checkout.save_method(
        "customer-7",
        gateway="wooshpay",
        payment_method=PaymentMethod(type="card", token="pm_card_visa"),
        idempotency_key="save-visa-1",
    )
    assert stored.method.last4 == "4242"
    assert stored.method.token.startswith("pm_")
    options = checkout.payment_options(cart(3000), owner="customer-7")
    assert [m.id for m in options.saved] == [stored.id]
    assert {m.gateway for m in options.methods} == {"dummy", "wooshpay"}
    assert options.unavailable == {}
    # Another customer neither sees nor uses it.
    assert checkout.payment_options(cart(3000), owner="customer-8").saved == ()

    started = checkout.create(cart(3000), owner="customer-7")
    payment = checkout.add_payment(started.id, Money(3000, "USD"), saved_method=stored.id)
    submission = checkout.submit(started.id)
    assert submission.checkout.status is CheckoutStatus.COMPLETED
    assert submission.next_actions == {}
    assert services.get_payment(payment.id).gateway == "wooshpay"

    other = checkout.create(cart(3000), owner="customer-8")
    with pytest.raises(NotFound):
        checkout.add_payment(other.id, Money(3000, "USD"), saved_method=stored.id)

    checkout.delete_saved_method("customer-7", stored.id)
    assert checkout.saved_methods("customer-7") == ()
    (method,) = [
        m for m in wooshpay.snapshot()["payment_methods"] if m["id"] == stored.method.token
    ]
    assert method["customer"] is None


def test_a_card_the_customer_asked_to_save_is_stored_when_the_checkout_completes(
    checkout: CheckoutService,
) -> None:
    started = checkout.create(cart(3000), owner="customer-9")
    checkout.add_payment(
        started.id,
        Money(3000, "USD"),
        gateway="wooshpay",
        payment_method=PaymentMethod(type="card", token="pm_card_visa", save=True),
    )
    assert checkout.saved_methods("customer-9") == ()

    assert checkout.submit(started.id).checkout.status is CheckoutStatus.COMPLETED

    (stored,) = checkout.saved_methods("customer-9")
    assert stored.gateway == "wooshpay"
    assert stored.method.last4 == "4242"
    assert stored.method.customer_reference.startswith("cus_")
    options = checkout.payment_options(cart(1000), owner="customer-9")
    assert [m.id for m in options.saved] == [stored.id]


def test_start_payment_opens_a_payment_link_once_and_submit_keeps_it(
    checkout: CheckoutService, services: PaymentTransactionServices
) -> None:
    checkout_id, direct, on_page = _split(checkout)

    link = checkout.start_payment(checkout_id, on_page, kind="payment_link")
    again = checkout.start_payment(checkout_id, on_page, kind="payment_link")
    submission = checkout.submit(checkout_id)

    assert link.url == again.url
    assert submission.next_actions[on_page].url == link.url
    assert len(services.list_transactions(on_page)) == 1
    assert services.get_payment(direct).status is PaymentStatus.AUTHORIZED
    with pytest.raises(StateError, match="needs no customer action"):
        checkout.start_payment(checkout_id, direct)


def test_two_customers_saving_with_the_same_key_save_two_methods(
    checkout: CheckoutService,
) -> None:
    visa = PaymentMethod(type="card", token="pm_card_visa")
    first = checkout.save_method("customer-1", gateway="wooshpay", payment_method=visa,
                                 idempotency_key="save-1")  # fmt: skip
    second = checkout.save_method("customer-2", gateway="wooshpay", payment_method=visa,
                                  idempotency_key="save-1")  # fmt: skip
    again = checkout.save_method("customer-1", gateway="wooshpay", payment_method=visa,
                                 idempotency_key="save-1")  # fmt: skip

    assert first.method.token != second.method.token
    assert again == first
    assert [m.id for m in checkout.saved_methods("customer-2")] == [second.id]
