"""A validly signed event reporting another currency than its payment's settles nothing;
it is stored as a ``mismatch`` and the log line is a warning."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx

from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import WebApp, deliver, signed
from tests.web.test_webhooks import bank_transfer_sale, settle


def test_an_event_in_another_currency_does_not_settle_the_payment_silently(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    http: httpx.Client,
    paycore_dummy_server: SandboxServer,
    paycore_dummy_sandbox: DummySandbox,
    web_log: Callable[[], list[dict[str, Any]]],
) -> None:
    app = web_app(deliver=False)
    payment = bank_transfer_sale(services)  # 25.00 USD
    settle(http, paycore_dummy_server, payment)
    event = copy.deepcopy(dict(paycore_dummy_sandbox.events[-1]))
    event["data"]["operation"]["currency"] = "EUR"  # what the provider says it took
    body = encode_json(event)

    answer = deliver(http, app, body, signed(paycore_dummy_sandbox, body))

    (line,) = web_log()
    assert answer.status_code == 200  # acknowledged: retrying would change nothing
    assert services.get_payment(payment.id).captured == Money(0, "USD")
    assert line["reason"] == "mismatch"
    assert line["level"] == "WARNING"
