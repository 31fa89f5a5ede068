"""What a merchant hands `create_payment` by mistake never stores card data: a card
number as a method's token is refused, security codes under their names and card
numbers in a customer's name are masked before anything is stored or sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paycore.errors import InvalidRequest
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.scrub import REDACTED
from paycore.money import Money
from paycore.testing.contract_support import ledger_text
from paycore.transactions.model import Customer, PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

PAN = "4111111111111111"


@pytest.fixture
def services(
    paycore_services: Callable[..., PaymentTransactionServices],
    paycore_dummy_gateway: DummyGateway,
) -> PaymentTransactionServices:
    return paycore_services({"dummy": paycore_dummy_gateway})


@pytest.mark.parametrize("token", [PAN, "4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_a_card_number_as_a_token_is_refused_and_nothing_stored(
    services: PaymentTransactionServices, paycore_ledger: Store, token: str
) -> None:
    with pytest.raises(InvalidRequest, match="token is a card number") as refused:
        services.create_payment(
            Money(1000, "USD"),
            gateway="dummy",
            payment_method=PaymentMethod(type="card", token=token),
        )

    assert token not in f"{refused.value!s} {refused.value!r}"
    assert "payments:" not in ledger_text(paycore_ledger)


def test_a_token_of_digits_that_is_no_card_number_is_kept(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(
        Money(1000, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="gift_card", token="gc_4111111111111111"),
    )
    assert payment.payment_method is not None
    assert payment.payment_method.token == "gc_4111111111111111"


def test_security_codes_and_card_numbers_are_masked_in_what_is_stored(
    services: PaymentTransactionServices, paycore_ledger: Store
) -> None:
    payment = services.create_payment(
        Money(1000, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(
            type="card", token="tok_visa", fields={"card_cvc": "737", "n": "1"}
        ),
        customer=Customer(reference="c-1", name=f"Ann, card {PAN}"),
        metadata={"cvv": "737", "note": "typed cvv 737"},
    )

    stored = services.get_payment(payment.id)
    assert stored.metadata == {"cvv": REDACTED, "note": f"typed cvv {REDACTED}"}
    assert stored.payment_method is not None
    assert dict(stored.payment_method.fields) == {"card_cvc": REDACTED, "n": "1"}
    assert stored.customer is not None and stored.customer.name == "Ann, card [PAN …1111]"
    assert "737" not in ledger_text(paycore_ledger)
