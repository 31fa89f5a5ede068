"""A checkout service over the dummy sandbox, on every database (``store`` is parametrized)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paycore.checkout import Cart, CartItem, CheckoutService
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")
DECLINED = PaymentMethod(type="card", token="tok_declined")


def cart(total: int = 3000, currency: str = "USD") -> Cart:
    """A one-line cart of ``total`` minor units."""
    return Cart(
        currency=currency,
        items=[CartItem(sku="tea", name="Tea", quantity=1, unit_price=Money(total, currency))],
    )


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    services = PaymentTransactionServices(store, {"dummy": paycore_dummy_gateway}, hooks=None)
    yield services
    services.close()


@pytest.fixture
def checkout(services: PaymentTransactionServices) -> CheckoutService:
    return CheckoutService(services, return_base_url="https://shop.example/paycore")


@pytest.fixture
def sandbox(paycore_dummy_sandbox: DummySandbox) -> DummySandbox:
    return paycore_dummy_sandbox
