"""`AsyncCheckoutService` is the same checkout on an event loop: one logic, two runners."""

from __future__ import annotations

import asyncio

import pytest

from paycore.checkout import AsyncCheckoutService, CheckoutStatus
from paycore.errors import StateError
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.model import PaymentStatus
from paycore.transactions.store import Store

from .conftest import CARD, DECLINED, cart


def test_a_split_tender_completes_and_a_decline_releases_the_rest(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> None:
    async def shop() -> None:
        async with AsyncPaymentTransactionServices(
            store, {"dummy": paycore_dummy_gateway}, hooks=None
        ) as services:
            checkout = AsyncCheckoutService(services)
            good = await checkout.create(cart(3000), owner="customer-1")
            for part in (1000, 2000):
                await checkout.add_payment(
                    good.id, Money(part, "USD"), gateway="dummy", payment_method=CARD
                )
            completed = (await checkout.submit(good.id)).checkout
            assert completed.status is CheckoutStatus.COMPLETED
            assert await checkout.complete(good.id) == completed

            bad = await checkout.create(cart(3000), owner="customer-1")
            first = await checkout.add_payment(
                bad.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
            )
            await checkout.add_payment(
                bad.id, Money(2000, "USD"), gateway="dummy", payment_method=DECLINED
            )
            failed = (await checkout.submit(bad.id)).checkout
            assert failed.status is CheckoutStatus.FAILED
            assert (await services.get_payment(first.id)).status is PaymentStatus.VOIDED
            assert await checkout.checkout_of_payment(first.id) == bad.id
            with pytest.raises(StateError, match="it is failed"):
                await checkout.add_payment(
                    bad.id, Money(1, "USD"), gateway="dummy", payment_method=CARD
                )

    asyncio.run(shop())
