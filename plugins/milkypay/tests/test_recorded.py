"""MilkyPay's exchanges as recorded against its sandbox, replayed with no server at all.

Each test drives the gateway through the driver with fixed transaction ids, under a
cassette of its own in ``cassettes/``. By default the cassettes are replayed (CI never
records: a request that is not in its cassette fails the test), so a change in what
the plugin sends shows up here. ``make record`` (``PAYCORE_RECORD=1``) records them
anew against a seeded sandbox on loopback.

With ``MILKYPAY_TEST_BASE_URL`` and the ``MILKYPAY_TEST_*`` keys set (a tenant's test
keys), the same scenarios run against the platform instead and are recorded under
``cassettes/live/`` (not committed; read them to see where the sandbox and the platform
differ). The scenarios pay with the test service's ``test_details_success_rate``, which
a tenant may name otherwise: a failure there is a finding, not a flaky test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attrs import frozen
from paycore_milkypay.gateway import MilkyPayGateway
from paycore_milkypay.sandbox import MilkyPaySandbox

from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.money import Money
from paycore.testing.recording import REPLAY_URL, cassette_recorder, recording
from paycore.transactions.model import (
    CheckoutKind,
    DeclineReason,
    NextActionKind,
    Outcome,
    PaymentMethod,
    PaymentRequest,
)

CASSETTES = Path(__file__).parent / "cassettes"
LIVE_ENV = {
    "base_url": "MILKYPAY_TEST_BASE_URL",
    "public_key": "MILKYPAY_TEST_PUBLIC_KEY",
    "commerce_account_id": "MILKYPAY_TEST_ACCOUNT_ID",
    "api_key": "MILKYPAY_TEST_API_KEY",
    "secret_key": "MILKYPAY_TEST_SECRET_KEY",
}
RETURN_URL = "https://shop.example/paycore/return/milkypay"
PAID = PaymentMethod(type="test_usd", fields={"test_details_success_rate": "100"})
DECLINED = PaymentMethod(type="test_usd", fields={"test_details_success_rate": "0"})


@frozen
class Session:
    gateway: MilkyPayGateway
    driver: GatewayDriver

    def run(self, exchange: Any, operation: str) -> Any:
        return self.driver.run(exchange, operation=operation)


@pytest.fixture
def milkypay(request: pytest.FixtureRequest, paycore_sandbox_server: Any) -> Iterator[Session]:
    """The gateway under this test's cassette: recorded live, or replayed."""
    live = {key: os.environ.get(name) for key, name in LIVE_ENV.items()}
    directory = CASSETTES
    server_url: str | None = None
    if all(live.values()):
        config: dict[str, Any] = {**live, "test_mode": True}
        directory, server_url = CASSETTES / "live", str(live["base_url"])
    elif recording():
        sandbox = MilkyPaySandbox(seed=0)
        server_url = paycore_sandbox_server(sandbox).url
        config = sandbox.gateway_config(server_url)
    else:
        config = MilkyPaySandbox(seed=0).gateway_config(REPLAY_URL)
    gateway = MilkyPayGateway.from_config(config)
    recorder = cassette_recorder(
        directory,
        server_url=server_url,
        secrets=gateway.secret_values(),
        record=all(live.values()) or recording(),
    )
    name = request.node.name.removeprefix("test_")
    with (
        recorder.use_cassette(f"{name}.yaml"),
        httpx.Client(trust_env=False, follow_redirects=False) as client,
        GatewayDriver(
            gateway, client=client, hooks=None, retry=RetryPolicy(max_attempts=1)
        ) as driver,
    ):
        yield Session(gateway, driver)


@pytest.fixture
def make_request() -> Callable[..., PaymentRequest]:
    def build(kind: str, transaction_id: str, **changes: Any) -> PaymentRequest:
        fields: dict[str, Any] = {
            "transaction_id": transaction_id,
            "transaction_type": kind,
            "payment_id": "pay_recorded_1",
            "amount": Money(10055, "USD"),
            "payment_method": PAID,
            "return_url": RETURN_URL,
            "description": "Recorded order 1",
        }
        return PaymentRequest(**{**fields, **changes})

    return build


def test_payment_methods_for_an_amount(milkypay: Session) -> None:
    options = milkypay.run(milkypay.gateway.payment_methods(Money(10055, "USD")), "methods")

    by_type = {option.type: option for option in options}
    assert by_type["test_usd"].required_fields == ("test_details_success_rate",)
    assert "payment_card_usd_hpp" in by_type


def test_authorize_capture_part_and_refund_it_twice(milkypay: Session, make_request) -> None:
    authorized = milkypay.run(
        milkypay.gateway.authorize(make_request("authorize", "txn_rec_auth")), "authorize"
    )
    reference = authorized.gateway_reference
    captured = milkypay.run(
        milkypay.gateway.capture(
            make_request(
                "capture", "txn_rec_cap", amount=Money(6000, "USD"), gateway_reference=reference
            )
        ),
        "capture",
    )
    refunds = [
        milkypay.run(
            milkypay.gateway.refund(
                make_request("refund", txn, amount=Money(1029, "USD"), gateway_reference=reference)
            ),
            "refund",
        )
        for txn in ("txn_rec_ref1", "txn_rec_ref2")
    ]

    assert authorized.outcome is Outcome.APPROVED
    assert authorized.amount == Money(10055, "USD")
    assert reference.startswith("cpi_")
    assert (captured.outcome, captured.amount) == (Outcome.APPROVED, Money(6000, "USD"))
    assert [(r.outcome, r.amount) for r in refunds] == [(Outcome.APPROVED, Money(1029, "USD"))] * 2
    assert refunds[0].transaction_reference != refunds[1].transaction_reference


def test_a_void_releases_a_delayed_charge(milkypay: Session, make_request) -> None:
    authorized = milkypay.run(
        milkypay.gateway.authorize(make_request("authorize", "txn_rec_hold")), "authorize"
    )
    voided = milkypay.run(
        milkypay.gateway.void(
            make_request("void", "txn_rec_void", gateway_reference=authorized.gateway_reference)
        ),
        "void",
    )

    assert voided.outcome is Outcome.APPROVED
    assert voided.provider_status == "terminated"


def test_a_sale_declined_by_the_test_service(milkypay: Session, make_request) -> None:
    sale = milkypay.run(
        milkypay.gateway.sale(make_request("sale", "txn_rec_declined", payment_method=DECLINED)),
        "sale",
    )

    assert sale.outcome is Outcome.DECLINED
    assert sale.decline_reason is DeclineReason.CARD_DECLINED
    assert sale.provider_status == "process_failed"


def test_a_card_is_paid_on_the_hosted_page_and_stays_open_until_then(
    milkypay: Session, make_request
) -> None:
    card = PaymentMethod(type="payment_card_usd_hpp")
    request = make_request("sale", "txn_rec_card", payment_method=card)

    result = milkypay.run(milkypay.gateway.sale(request), "sale")
    later = milkypay.run(milkypay.gateway.fetch_status(request), "fetch_status")

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action is not None
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert "/hpp/?cpi=" in result.next_action.url
    assert later.outcome is Outcome.ACTION_REQUIRED


def test_fetch_status_finds_a_sale_by_its_reference_and_a_resend_is_no_second_invoice(
    milkypay: Session, make_request
) -> None:
    first = milkypay.run(milkypay.gateway.sale(make_request("sale", "txn_rec_lost")), "sale")

    again = milkypay.run(milkypay.gateway.sale(make_request("sale", "txn_rec_lost")), "sale")
    found = milkypay.run(
        milkypay.gateway.fetch_status(make_request("sale", "txn_rec_lost")), "fetch_status"
    )
    missing = milkypay.run(
        milkypay.gateway.fetch_status(make_request("sale", "txn_rec_never_sent")),
        "fetch_status",
    )

    assert (found.outcome, found.amount) == (Outcome.APPROVED, Money(10055, "USD"))
    assert again.gateway_reference == found.gateway_reference == first.gateway_reference
    assert missing.decline_reason is DeclineReason.NOT_FOUND


def test_a_hosted_page_a_payment_link_and_a_widget(milkypay: Session, make_request) -> None:
    page = milkypay.run(
        milkypay.gateway.create_checkout(make_request("sale", "txn_rec_page", payment_method=None)),
        "create_checkout",
    )
    link = milkypay.run(
        milkypay.gateway.create_checkout(
            make_request("sale", "txn_rec_link", payment_method=None),
            kind=CheckoutKind.PAYMENT_LINK,
        ),
        "create_checkout",
    )
    widget = milkypay.run(
        milkypay.gateway.create_checkout(
            make_request("sale", "txn_rec_widget", payment_method=None), kind=CheckoutKind.WIDGET
        ),
        "create_checkout",
    )

    assert page.reference.startswith("cpi_")
    assert page.gateway_reference == page.reference
    assert "/hpp/?cpi=" in page.next_action.url
    assert (link.kind, link.gateway_reference) == (CheckoutKind.PAYMENT_LINK, None)
    assert "public_key=" in link.next_action.url and "amount=100.55" in link.next_action.url
    assert widget.next_action.kind is NextActionKind.WIDGET
    assert widget.next_action.parameters["amount"] == "100.55"
