"""Completing one checkout from several processes at once finishes it once.

The customer's return and the provider's webhook arrive together, at two processes
(or more) of the merchant's deployment; each confirms with the gateway and completes
the checkout. Exactly one finishes it: one order id, one "checkout finished"
notification, and for a failed checkout one void per payment at the provider.
Run on SQLite and PostgreSQL (``SELECT … FOR UPDATE`` on the checkout's row).
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import httpx
import pytest

from paycore.checkout import CheckoutService, CheckoutStatus
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod, PaymentStatus, TransactionType
from paycore.transactions.services import PaymentTransactionServices
from tests.checkout.racers import CompleteJob, complete_when_released
from tests.processes import released_together

from .conftest import CARD, cart

RACERS = 4
CHALLENGED = PaymentMethod(type="card", token="tok_3ds")  # the dummy asks for 3-D Secure

_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(
    ["__main__", "paycore.checkout", "paycore.gateways.dummy", "sqlalchemy", "psycopg"]
)


@pytest.fixture
def challenged_checkout(
    checkout: CheckoutService, paycore_dummy_server: SandboxServer
) -> tuple[str, str, str]:
    """A submitted 30.00 checkout: 10.00 authorized, 20.00 waiting for 3-D Secure."""
    started = checkout.create(cart(3000), owner="customer-3")
    direct = checkout.add_payment(
        started.id, Money(1000, "USD"), gateway="dummy", payment_method=CARD
    )
    challenged = checkout.add_payment(
        started.id, Money(2000, "USD"), gateway="dummy", payment_method=CHALLENGED
    )
    submission = checkout.submit(started.id)
    assert submission.checkout.status is CheckoutStatus.SUBMITTED
    return started.id, direct.id, submission.next_actions[challenged.id].url


@pytest.mark.parametrize("answer", ["approve", "decline"])
def test_the_return_and_webhooks_at_once_finish_the_checkout_once(
    answer: str,
    challenged_checkout: tuple[str, str, str],
    checkout: CheckoutService,
    services: PaymentTransactionServices,
    database_url: str,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    tmp_path: Path,
) -> None:
    checkout_id, direct, challenge = challenged_checkout
    with httpx.Client(trust_env=False) as browser:
        submit_form(browser, challenge, answer)
    notifications = tmp_path / "finished.jsonl"
    job = CompleteJob(
        database_url=database_url,
        gateway_config=sandbox.gateway_config(paycore_dummy_server.url),
        checkout_id=checkout_id,
        confirm=True,
        notifications=str(notifications),
    )

    answers = released_together(_PROCESSES, complete_when_released, [job] * RACERS)

    assert all("error" not in a for a in answers), answers
    finished = checkout.get(checkout_id)
    expected = CheckoutStatus.COMPLETED if answer == "approve" else CheckoutStatus.FAILED
    assert finished.status is expected
    assert {a["status"] for a in answers} == {expected.value}
    assert {a["order_id"] for a in answers} == {finished.order_id}
    lines = [json.loads(line) for line in notifications.read_text().splitlines()]
    assert [(line["checkout"], line["status"]) for line in lines] == [(checkout_id, expected)]
    if answer == "decline":
        voids = [t for t in services.list_transactions(direct) if t.type is TransactionType.VOID]
        assert len(voids) == 1
        assert services.get_payment(direct).status is PaymentStatus.VOIDED
        reference = services.get_payment(direct).gateway_reference
        (at_sandbox,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == reference]
        assert at_sandbox["status"] == "voided"
        assert [op["type"] for op in at_sandbox["operations"]].count("void") == 1
