"""XPAY's exchanges as recorded against its sandbox, replayed with no server at all.

Each test drives the gateway through the driver with fixed transaction ids, under a
cassette of its own in ``cassettes/``; by default the cassettes are replayed (CI never
records), ``make record`` (``PAYCORE_RECORD=1``) records them anew against a seeded
sandbox on loopback.

XPAY's bodies never repeat byte for byte (a fresh AES key and IV per message, RSA
padding drawn at random), so requests are matched by what they say: both envelopes are
opened with the sandbox's test key (``keys/``, made for these tests) and their
``Partner`` block and ``Data`` compared, leaving out the token (scrubbed from what is
written) and the ``Transaction``'s ``DateTime`` (the time it was sent). The customer's
payment on the page is made in the sandbox itself while recording; a replay needs no
customer, the answers having been recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attrs import frozen
from paycore_xpay.envelope import EnvelopeError, unseal
from paycore_xpay.gateway import XpayGateway
from paycore_xpay.keys import private_key_from_pem, public_pem
from paycore_xpay.sandbox import XpaySandbox

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
KEYS = Path(__file__).parent / "keys"
PARTNER_PEM = (KEYS / "partner-test-only.pem").read_text()
XPAY_PEM = (KEYS / "xpay-test-only.pem").read_text()
XPAY_KEY = private_key_from_pem(XPAY_PEM)
PARTNER_KEY = private_key_from_pem(PARTNER_PEM)
RETURN_URL = "https://shop.example/paycore/return/xpay"
CARD = PaymentMethod(type="card")


def make_sandbox() -> XpaySandbox:
    return XpaySandbox(
        seed=0,
        xpay_private_key=XPAY_PEM,
        partner_public_key=public_pem(PARTNER_KEY.public_key()),
        partner_private_key=PARTNER_PEM,
    )


def what_it_says(body: bytes) -> Any:
    """A request as compared between recording and replay: an XPAY envelope opened,
    without its token and send time; any other body as it is."""
    try:
        envelope = json.loads(body)
        data = unseal(envelope, recipient=XPAY_KEY, sender=PARTNER_KEY.public_key())
    except (ValueError, TypeError, EnvelopeError, AttributeError):
        return body
    partner = {k: v for k, v in envelope.get("Partner", {}).items() if k != "PartnerToken"}
    if isinstance(data.get("Transaction"), dict):
        data["Transaction"] = {k: v for k, v in data["Transaction"].items() if k != "DateTime"}
    return partner, data


def same_request(recorded: bytes, sent: bytes) -> bool:
    return bool(what_it_says(recorded) == what_it_says(sent))


@frozen
class Session:
    gateway: XpayGateway
    driver: GatewayDriver
    sandbox: XpaySandbox | None  # while recording

    def run(self, exchange: Any, operation: str) -> Any:
        return self.driver.run(exchange, operation=operation)

    def customer_pays(self, page_url: str) -> None:
        """The customer pays on the page (in the sandbox, while recording only)."""
        if self.sandbox is None:
            return
        page_id = page_url.rstrip("/").rsplit("/", 1)[-1]
        started = self.sandbox.state.start(page_id, two_step=False)
        self.sandbox.state.finish(started.payment.operation_id, None)


@pytest.fixture
def xpay(request: pytest.FixtureRequest, paycore_sandbox_server: Any) -> Iterator[Session]:
    """The gateway under this test's cassette: recorded against the sandbox, or replayed."""
    sandbox: XpaySandbox | None = None
    server_url: str | None = None
    if recording():
        sandbox = make_sandbox()
        server_url = paycore_sandbox_server(sandbox).url
        config = sandbox.gateway_config(server_url)
    else:
        config = make_sandbox().gateway_config(REPLAY_URL)
    gateway = XpayGateway.from_config(config)
    recorder = cassette_recorder(
        CASSETTES,
        server_url=server_url,
        secrets=gateway.secret_values(),
        same_body=same_request,
    )
    name = request.node.name.removeprefix("test_")
    with (
        recorder.use_cassette(f"{name}.yaml"),
        httpx.Client(trust_env=False, follow_redirects=False) as client,
        GatewayDriver(
            gateway, client=client, hooks=None, retry=RetryPolicy(max_attempts=1)
        ) as driver,
    ):
        yield Session(gateway, driver, sandbox)


@pytest.fixture
def make_request() -> Callable[..., PaymentRequest]:
    def build(kind: str, transaction_id: str, **changes: Any) -> PaymentRequest:
        fields: dict[str, Any] = {
            "transaction_id": transaction_id,
            "transaction_type": kind,
            "payment_id": "pay_recorded_1",
            "amount": Money(2999, "UAH"),
            "payment_method": CARD,
            "return_url": RETURN_URL,
            "description": "Recorded order 1",
        }
        return PaymentRequest(**{**fields, **changes})

    return build


def test_a_sale_opens_xpays_page_and_waits_for_the_customer(xpay: Session, make_request) -> None:
    request = make_request("sale", "txn_rec_wait")

    opened = xpay.run(xpay.gateway.sale(request), "sale")
    later = xpay.run(xpay.gateway.fetch_status(request), "fetch_status")

    assert opened.outcome is Outcome.ACTION_REQUIRED
    assert opened.next_action is not None
    assert opened.next_action.kind is NextActionKind.REDIRECT
    assert "/checkout/" in opened.next_action.url
    assert (later.outcome, later.gateway_reference) == (
        Outcome.ACTION_REQUIRED,
        opened.gateway_reference,
    )


def test_a_paid_sale_is_refunded_in_part_twice(xpay: Session, make_request) -> None:
    sale = make_request("sale", "txn_rec_paid")
    opened = xpay.run(xpay.gateway.sale(sale), "sale")
    xpay.customer_pays(opened.next_action.url)
    paid = xpay.run(xpay.gateway.fetch_status(sale), "fetch_status")
    reference = paid.gateway_reference

    refunds = [
        xpay.run(
            xpay.gateway.refund(
                make_request("refund", txn, amount=Money(1000, "UAH"), gateway_reference=reference)
            ),
            "refund",
        )
        for txn in ("txn_rec_ref1", "txn_rec_ref2")
    ]
    too_much = xpay.run(
        xpay.gateway.refund(
            make_request(
                "refund", "txn_rec_ref3", amount=Money(1000, "UAH"), gateway_reference=reference
            )
        ),
        "refund",
    )

    assert (paid.outcome, paid.amount) == (Outcome.APPROVED, Money(2999, "UAH"))
    assert [(r.outcome, r.amount) for r in refunds] == [(Outcome.APPROVED, Money(1000, "UAH"))] * 2
    assert refunds[0].transaction_reference != refunds[1].transaction_reference
    assert too_much.outcome is Outcome.DECLINED  # 9.99 UAH was left


def test_a_whole_refund_of_a_paid_sale_is_sent_without_a_sum(xpay: Session, make_request) -> None:
    sale = make_request("sale", "txn_rec_whole", payment_id="pay_recorded_2")
    opened = xpay.run(xpay.gateway.sale(sale), "sale")
    xpay.customer_pays(opened.next_action.url)

    refund = xpay.run(
        xpay.gateway.refund(
            make_request(
                "refund",
                "txn_rec_whole_ref",
                payment_id="pay_recorded_2",
                gateway_reference=opened.gateway_reference,
            )
        ),
        "refund",
    )
    asked = xpay.run(
        xpay.gateway.fetch_status(
            make_request("refund", "txn_rec_whole_ref", payment_id="pay_recorded_2")
        ),
        "fetch_status",
    )

    assert (refund.outcome, refund.amount) == (Outcome.APPROVED, Money(2999, "UAH"))
    assert (asked.outcome, asked.transaction_reference) == (
        Outcome.APPROVED,
        refund.transaction_reference,
    )


def test_a_transaction_never_sent_is_not_found(xpay: Session, make_request) -> None:
    missing = xpay.run(
        xpay.gateway.fetch_status(make_request("sale", "txn_rec_never_sent")), "fetch_status"
    )

    assert missing.decline_reason is DeclineReason.NOT_FOUND


def test_a_payment_link_is_a_checkout_link_too(xpay: Session, make_request) -> None:
    session = xpay.run(
        xpay.gateway.create_checkout(
            make_request("sale", "txn_rec_link"), kind=CheckoutKind.PAYMENT_LINK
        ),
        "create_checkout",
    )

    assert session.kind is CheckoutKind.PAYMENT_LINK
    assert session.next_action.kind is NextActionKind.REDIRECT
    assert "/checkout/" in session.next_action.url
