"""WooshPay's exchanges as recorded against its sandbox, replayed with no server at all.

Each test drives the gateway through the driver with fixed transaction ids, under a
cassette of its own in ``cassettes/``. By default the cassettes are replayed (CI never
records: a request that is not in its cassette fails the test), so a change in what
the plugin sends shows up here. ``make record`` (``PAYCORE_RECORD=1``) records them
anew against a seeded sandbox on loopback.

With ``WOOSHPAY_TEST_SECRET_KEY`` set to a ``sk_test_…`` key, the same scenarios run
against WooshPay's own test API instead and are recorded under ``cassettes/live/``
(not committed; read them to see where the sandbox and WooshPay differ). The
scenarios pay with the sandbox's ready-made payment methods (``pm_card_visa`` …),
which WooshPay may not know: a failure there is a finding, not a flaky test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attrs import frozen
from paycore_wooshpay.gateway import WooshPayGateway
from paycore_wooshpay.sandbox import WooshPaySandbox

from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.money import Money
from paycore.testing.recording import REPLAY_URL, cassette_recorder, recording
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    DeclineReason,
    NextActionKind,
    Outcome,
    PaymentMethod,
    PaymentRequest,
    SaveMethodRequest,
)

CASSETTES = Path(__file__).parent / "cassettes"
LIVE_KEY_ENV = "WOOSHPAY_TEST_SECRET_KEY"
RETURN_URL = "https://shop.example/paycore/return/wooshpay"
VISA = PaymentMethod(type="card", token="pm_card_visa")


@frozen
class Session:
    gateway: WooshPayGateway
    driver: GatewayDriver

    def run(self, exchange: Any, operation: str) -> Any:
        return self.driver.run(exchange, operation=operation)


@pytest.fixture
def wooshpay(request: pytest.FixtureRequest, paycore_sandbox_server: Any) -> Iterator[Session]:
    """The gateway under this test's cassette: recorded live, or replayed."""
    live_key = os.environ.get(LIVE_KEY_ENV)
    directory = CASSETTES
    server_url: str | None = None
    if live_key:
        config: dict[str, Any] = {"secret_key": live_key, "webhook_secret": "unused"}
        config["mode"] = "test"
        directory, server_url = CASSETTES / "live", "https://apitest.wooshpay.com"
    elif recording():
        sandbox = WooshPaySandbox(seed=0)
        server_url = paycore_sandbox_server(sandbox).url
        config = sandbox.gateway_config(server_url)
    else:
        config = WooshPaySandbox(seed=0).gateway_config(REPLAY_URL)
    gateway = WooshPayGateway.from_config(config)
    recorder = cassette_recorder(
        directory,
        server_url=server_url,
        secrets=gateway.secret_values(),
        record=bool(live_key) or recording(),
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
            "amount": Money(5000, "USD"),
            "payment_method": VISA,
            "return_url": RETURN_URL,
            "description": "Recorded order 1",
        }
        return PaymentRequest(**{**fields, **changes})

    return build


def test_authorize_capture_part_and_refund_it_twice(wooshpay: Session, make_request) -> None:
    authorized = wooshpay.run(
        wooshpay.gateway.authorize(make_request("authorize", "txn_rec_auth")), "authorize"
    )
    reference = authorized.gateway_reference
    captured = wooshpay.run(
        wooshpay.gateway.capture(
            make_request(
                "capture", "txn_rec_cap", amount=Money(3000, "USD"), gateway_reference=reference
            )
        ),
        "capture",
    )
    refunds = [
        wooshpay.run(
            wooshpay.gateway.refund(
                make_request("refund", txn, amount=Money(1000, "USD"), gateway_reference=reference)
            ),
            "refund",
        )
        for txn in ("txn_rec_ref1", "txn_rec_ref2")
    ]

    assert authorized.outcome is Outcome.APPROVED
    assert authorized.amount == Money(5000, "USD")
    assert reference.startswith("pi_")
    assert (captured.outcome, captured.amount) == (Outcome.APPROVED, Money(3000, "USD"))
    assert [(r.outcome, r.amount) for r in refunds] == [(Outcome.APPROVED, Money(1000, "USD"))] * 2
    assert refunds[0].transaction_reference != refunds[1].transaction_reference


def test_a_sale_declined_for_insufficient_funds(wooshpay: Session, make_request) -> None:
    broke = PaymentMethod(type="card", token="pm_card_insufficient_funds")

    sale = wooshpay.run(
        wooshpay.gateway.sale(make_request("sale", "txn_rec_broke", payment_method=broke)), "sale"
    )

    assert sale.outcome is Outcome.DECLINED
    assert sale.decline_reason is DeclineReason.INSUFFICIENT_FUNDS


def test_a_3ds_challenge_is_a_redirect_that_stays_open_until_the_customer_acts(
    wooshpay: Session, make_request
) -> None:
    challenged = PaymentMethod(type="card", token="pm_card_3ds")
    request = make_request("authorize", "txn_rec_3ds", payment_method=challenged)

    result = wooshpay.run(wooshpay.gateway.authorize(request), "authorize")
    later = wooshpay.run(
        wooshpay.gateway.fetch_status(
            make_request(
                "authorize",
                "txn_rec_3ds",
                payment_method=challenged,
                gateway_reference=result.gateway_reference,
            )
        ),
        "fetch_status",
    )

    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.next_action is not None
    assert result.next_action.kind is NextActionKind.REDIRECT
    assert "/3ds/" in result.next_action.url
    assert later.outcome is Outcome.ACTION_REQUIRED


def test_fetch_status_finds_an_authorization_whose_answer_was_lost(
    wooshpay: Session, make_request
) -> None:
    wooshpay.run(wooshpay.gateway.authorize(make_request("authorize", "txn_rec_lost")), "auth")

    found = wooshpay.run(
        wooshpay.gateway.fetch_status(make_request("authorize", "txn_rec_lost")), "fetch_status"
    )
    missing = wooshpay.run(
        wooshpay.gateway.fetch_status(make_request("authorize", "txn_rec_never_sent")),
        "fetch_status",
    )

    assert (found.outcome, found.amount) == (Outcome.APPROVED, Money(5000, "USD"))
    assert found.gateway_reference is not None
    assert missing.decline_reason is DeclineReason.NOT_FOUND


def test_a_hosted_page_and_a_payment_link(wooshpay: Session, make_request) -> None:
    page = wooshpay.run(
        wooshpay.gateway.create_checkout(make_request("sale", "txn_rec_page", payment_method=None)),
        "create_checkout",
    )
    link = wooshpay.run(
        wooshpay.gateway.create_checkout(
            make_request("sale", "txn_rec_link", payment_method=None),
            kind=CheckoutKind.PAYMENT_LINK,
        ),
        "create_checkout",
    )

    assert page.reference.startswith("cs_")
    assert page.gateway_reference is not None and page.gateway_reference.startswith("pi_")
    assert "/pay/" in page.next_action.url
    assert (link.kind, link.gateway_reference) == (CheckoutKind.PAYMENT_LINK, None)
    assert link.reference.startswith("plink_")


def test_a_saved_card_pays_off_session_until_it_is_deleted(wooshpay: Session, make_request) -> None:
    saved = wooshpay.run(
        wooshpay.gateway.save_method(
            SaveMethodRequest(
                idempotency_key="save_rec_1",
                payment_method=VISA,
                customer=Customer(reference="cust_rec_1", email="ada@example.com"),
            )
        ),
        "save_method",
    )
    customer = Customer(gateway_customer_id=saved.customer_reference)
    paid = wooshpay.run(
        wooshpay.gateway.sale(
            make_request(
                "sale",
                "txn_rec_offsession",
                payment_method=saved.as_payment_method(off_session=True),
                customer=customer,
            )
        ),
        "sale",
    )
    wooshpay.run(wooshpay.gateway.delete_method(saved), "delete_method")
    after = wooshpay.run(
        wooshpay.gateway.sale(
            make_request(
                "sale",
                "txn_rec_after_delete",
                payment_method=saved.as_payment_method(off_session=True),
                customer=customer,
            )
        ),
        "sale",
    )

    assert (saved.brand, saved.last4) == ("visa", "4242")
    assert saved.token != VISA.token  # the ready-made method was copied, then attached
    assert paid.outcome is Outcome.APPROVED
    assert paid.next_action is None
    assert after.outcome is Outcome.DECLINED
