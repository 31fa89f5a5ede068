"""A hosted page that could not be opened because the provider was unreachable (nothing
sent: safe to retry) opens when retried; the checkout is not doomed by it."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("paycore_wooshpay")

from paycore_wooshpay.gateway import WooshPayGateway
from paycore_wooshpay.sandbox import WooshPaySandbox

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.errors import StateError
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.testing.pytest_plugin import ServeSandbox
from paycore.transactions.model import TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

from .conftest import CARD, cart


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def wooshpay_url(paycore_sandbox_server: ServeSandbox) -> str:
    return paycore_sandbox_server(WooshPaySandbox(seed=1)).url


def _services(store: Store, dummy: DummyGateway, url: str) -> PaymentTransactionServices:
    config = WooshPaySandbox(seed=1).gateway_config(url)
    gateway = WooshPayGateway.from_config(config)
    return PaymentTransactionServices(store, {"dummy": dummy, "wooshpay": gateway}, hooks=None)


def test_a_page_not_opened_for_an_outage_opens_when_retried(
    store: Store, paycore_dummy_gateway: DummyGateway, wooshpay_url: str
) -> None:
    down = _services(store, paycore_dummy_gateway, f"http://127.0.0.1:{_closed_port()}")
    shop = CheckoutService(down, return_base_url="https://shop.example/paycore")
    started = shop.create(cart(3000), owner="customer-1")
    card = shop.add_payment(started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD)
    on_page = shop.add_payment(started.id, Money(2000, "USD"), gateway="wooshpay")
    with pytest.raises(StateError):
        shop.start_payment(started.id, on_page.id)  # WooshPay unreachable
    (first,) = down.list_transactions(on_page.id)
    assert first.status is TransactionStatus.FAILED  # the ledger's "not sent, safe to retry"
    down.close()

    # WooshPay is back (the same database, the next request).
    with _services(store, paycore_dummy_gateway, wooshpay_url) as up:
        shop = CheckoutService(up, return_base_url="https://shop.example/paycore")
        try:
            action = shop.start_payment(started.id, on_page.id)
        except StateError as error:
            submission = shop.submit(started.id)
            pytest.fail(
                f"retry refused ({error}); submit then makes the checkout "
                f"{submission.checkout.status} and the card "
                f"{up.get_payment(card.id).status}"
            )
        assert action.url
        assert shop.get(started.id).status is CheckoutStatus.OPEN
