"""Payment options: every configured gateway is asked at once; a slow or failing one is
reported unavailable within the bound and hides none of the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from paycore.checkout import AsyncCheckoutService, CheckoutService
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.sandbox.faults import FaultPlan
from paycore.testing.pytest_plugin import ServeSandbox
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

from .conftest import cart

BOUND = 1.0


@pytest.fixture
def dummy_at(paycore_sandbox_server: ServeSandbox) -> Callable[..., DummyGateway]:
    """A dummy gateway whose sandbox has ``faults``; its timeouts are the default's."""

    def make(faults: FaultPlan | None = None) -> DummyGateway:
        sandbox = DummySandbox(seed=0, faults=faults)
        server = paycore_sandbox_server(sandbox)
        return DummyGateway.from_config(sandbox.gateway_config(server.url))

    return make


@pytest.fixture
def three_gateways(dummy_at: Callable[..., DummyGateway]) -> dict[str, DummyGateway]:
    """One healthy, one answering after 5 s, one answering every request with a 500."""
    return {
        "healthy": dummy_at(),
        "slow": dummy_at(FaultPlan(latency=5.0)),
        "broken": dummy_at(FaultPlan(error_rate=1.0)),
    }


def test_a_slow_and_a_broken_gateway_do_not_hide_the_healthy_one(
    store: Store, three_gateways: dict[str, DummyGateway]
) -> None:
    with PaymentTransactionServices(store, three_gateways, hooks=None) as services:
        checkout = CheckoutService(services, options_timeout=BOUND)
        started = time.monotonic()
        options = checkout.payment_options(cart(3000))
        elapsed = time.monotonic() - started

    assert elapsed < BOUND + 0.5
    assert {option.gateway for option in options.methods} == {"healthy"}
    assert {option.type for option in options.methods} >= {"card", "bank_transfer"}
    assert set(options.unavailable) == {"slow", "broken"}
    assert "no answer within 1 s" in options.unavailable["slow"]


def test_options_follow_the_carts_currency_and_amount(
    store: Store, dummy_at: Callable[..., DummyGateway]
) -> None:
    with PaymentTransactionServices(store, {"dummy": dummy_at()}, hooks=None) as services:
        checkout = CheckoutService(services)
        small = checkout.payment_options(cart(500, "USD"))
        large = checkout.payment_options(cart(5000, "USD"))
        yen = checkout.payment_options(cart(5000, "JPY"))
    # A bank transfer takes at least 10.00, in EUR, GBP or USD.
    assert "bank_transfer" not in {o.type for o in small.methods}
    assert "bank_transfer" in {o.type for o in large.methods}
    assert "bank_transfer" not in {o.type for o in yen.methods}
    assert "card" in {o.type for o in yen.methods}


def test_the_async_service_asks_the_gateways_concurrently_too(
    store: Store, three_gateways: dict[str, DummyGateway]
) -> None:
    async def ask() -> tuple[float, object]:
        async with AsyncPaymentTransactionServices(store, three_gateways, hooks=None) as services:
            checkout = AsyncCheckoutService(services, options_timeout=BOUND)
            started = time.monotonic()
            options = await checkout.payment_options(cart(3000))
            return time.monotonic() - started, options

    elapsed, options = asyncio.run(ask())
    assert elapsed < BOUND + 0.5
    assert {o.gateway for o in options.methods} == {"healthy"}  # type: ignore[attr-defined]
    assert set(options.unavailable) == {"slow", "broken"}  # type: ignore[attr-defined]
