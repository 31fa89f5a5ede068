"""Authorize or sell on the gateway's checkout page, through the services, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import attrs
import pytest

from paycore.errors import GatewayRefused, IdempotencyConflict, InvalidRequest
from paycore.gateways.base import Capabilities, Exchange, Operation
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    DeclineReason,
    NextAction,
    PaymentRequest,
    PaymentStatus,
    TransactionStatus,
)
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

PAGE = "https://pay.example/cs_1"


class PagesGateway(DummyGateway):
    """The dummy provider with a checkout page: made without a call, or refused by one."""

    capabilities: ClassVar[Capabilities] = attrs.evolve(
        DummyGateway.capabilities,
        operations=DummyGateway.capabilities.operations | {Operation.CREATE_CHECKOUT},
        checkout_kinds={CheckoutKind.HOSTED_PAGE},
    )
    requests: ClassVar[list[PaymentRequest]] = []

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        self.requests.append(request)
        if request.description == "refuse":
            # The sandbox has no such route: a definite "no" from the provider.
            response = yield self._request("POST", "/v1/checkout", json={}, idempotency_key="k")
            raise GatewayRefused(
                "the provider will not make this page",
                gateway=self.name,
                http_status=response.status_code,
                code="resource_missing",
            )
        yield from ()
        return CheckoutSession(
            reference="cs_1", next_action=NextAction.redirect(PAGE), gateway_reference="pay_x"
        )


@pytest.fixture
def services(
    store: Store, paycore_dummy_sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> Iterator[PaymentTransactionServices]:
    PagesGateway.requests.clear()
    gateway = PagesGateway.from_config(
        paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    )
    with PaymentTransactionServices(store, {"pages": gateway}, hooks=None) as services:
        yield services


def test_a_checkout_page_leaves_the_transaction_waiting_for_the_customer(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(Money(2500, "EUR"), gateway="pages", return_url=PAGE)

    transaction = services.authorize(payment.id, checkout="hosted_page", idempotency_key="k1")

    assert transaction.status is TransactionStatus.REQUIRES_ACTION
    assert transaction.next_action == NextAction.redirect(PAGE)
    assert (transaction.gateway_transaction_id, transaction.provider_status) == (
        "cs_1",
        "hosted_page_open",
    )
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.REQUIRES_ACTION
    assert payment.gateway_reference == "pay_x"
    (request,) = PagesGateway.requests
    assert (request.transaction_type, request.transaction_id) == ("authorize", transaction.id)


def test_the_same_key_replays_the_page_and_another_kind_of_request_is_a_conflict(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(Money(2500, "EUR"), gateway="pages", return_url=PAGE)
    first = services.sale(payment.id, checkout="hosted_page", idempotency_key="k1")

    again = services.sale(payment.id, checkout="hosted_page", idempotency_key="k1")

    assert again == first
    assert len(PagesGateway.requests) == 1
    with pytest.raises(IdempotencyConflict):
        services.sale(payment.id, idempotency_key="k1")  # the same key, no page


def test_a_page_the_provider_refuses_is_a_declined_transaction_not_an_unknown_one(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(
        Money(2500, "EUR"), gateway="pages", return_url=PAGE, description="refuse"
    )

    transaction = services.authorize(payment.id, checkout="hosted_page")

    assert transaction.status is TransactionStatus.DECLINED
    assert transaction.decline_reason is DeclineReason.INVALID_REQUEST
    assert (transaction.decline_code, transaction.provider_status) == (
        "resource_missing",
        "http_404",
    )
    assert services.get_payment(payment.id).status is PaymentStatus.FAILED


def test_only_a_creating_transaction_happens_on_a_page(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(Money(2500, "EUR"), gateway="pages")

    with pytest.raises(InvalidRequest, match="cannot happen on a checkout page"):
        services.ledger.begin(
            payment.id, "capture", None, idempotency_key=None, checkout=CheckoutKind.HOSTED_PAGE
        )
    assert services.list_transactions(payment.id) == ()
