"""Services over the dummy sandbox, on every database (``store`` is parametrized)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.transactions.model import PaymentMethod
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    """Services with the dummy gateway (named ``dummy``), no hooks, on ``store``."""
    services = PaymentTransactionServices(store, {"dummy": paycore_dummy_gateway}, hooks=None)
    yield services
    services.close()


@pytest.fixture
def sandbox(paycore_dummy_sandbox: DummySandbox) -> DummySandbox:
    return paycore_dummy_sandbox


@pytest.fixture
def new_payment(services: PaymentTransactionServices) -> Callable[..., Payment]:
    """Create a payment (10.00 USD by card unless told otherwise)."""

    def create(
        minor_units: int = 1000, currency: str = "USD", token: str = "tok_visa", **options: object
    ) -> Payment:
        method = PaymentMethod(type="card", token=token)
        return services.create_payment(
            Money(minor_units, currency), gateway="dummy", payment_method=method, **options
        )

    return create
