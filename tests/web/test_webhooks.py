"""``/webhooks/{gateway}``: the dummy sandbox's signed deliveries, over HTTP, into the ledger.

What a bad delivery is refused with, that it changes nothing, and that the log names
why; that a real one is applied once however often it comes; and that our own
failure is a 5xx the provider retries until it is applied.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycore.config import Settings, WebSettings
from paycore.gateways.base import Exchange
from paycore.gateways.dummy import SIGNATURE_HEADER, DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.gateways.webhooks import sign
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.model import (
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    WebhookHandling,
    WebhookRequest,
)
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from paycore.web import create_app
from tests.web.support import (
    WebApp,
    deliver,
    free_port,
    ledger_rows,
    ledger_url,
    signed,
    wait_until,
)

LOG = Callable[[], list[dict[str, Any]]]


def bank_transfer_sale(services: PaymentTransactionServices) -> Payment:
    """A 25.00 USD bank transfer, sold: processing until the bank settles it."""
    payment = services.create_payment(
        Money(2500, "USD"), gateway="dummy", payment_method=PaymentMethod(type="bank_transfer")
    )
    assert services.sale(payment.id).status is TransactionStatus.PROCESSING
    return services.get_payment(payment.id)


def settle(http: httpx.Client, server: SandboxServer, payment: Payment) -> None:
    """The bank transfer arrives: the sandbox emits (and delivers) its event."""
    answer = http.post(
        f"{server.url}/_sandbox/payments/{payment.gateway_reference}/settle",
        json={"outcome": "succeeded"},
    )
    assert answer.status_code == 200, answer.text


def payments_and_transactions(rows: dict[str, Any]) -> tuple[Any, Any]:
    return rows["payments"], rows["transactions"]


@pytest.fixture
def settled(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    http: httpx.Client,
    paycore_dummy_server: SandboxServer,
    paycore_dummy_sandbox: DummySandbox,
) -> tuple[WebApp, Payment, dict[str, Any]]:
    """An app the sandbox does not deliver to, a processing payment, and the event
    saying the bank settled it (not delivered: the test delivers it, or a forgery)."""
    app = web_app(deliver=False)
    payment = bank_transfer_sale(services)
    settle(http, paycore_dummy_server, payment)
    return app, payment, copy.deepcopy(dict(paycore_dummy_sandbox.events[-1]))


def forged(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {SIGNATURE_HEADER: sign(body, "whsec_someone_else")}


def unsigned(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {}


def replayed(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    an_hour_ago = int(time.time()) - 3600
    return body, {SIGNATURE_HEADER: sign(body, sandbox.webhook_secrets, timestamp=an_hour_ago)}


def tampered(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b'"amount":2500', b'"amount":2499'), signed(sandbox, body)


def malformed_json(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    broken = body[: len(body) // 2]
    return broken, signed(sandbox, broken)


def not_an_event(sandbox: DummySandbox, body: bytes) -> tuple[bytes, dict[str, str]]:
    listed = b"[" + body + b"]"
    return listed, signed(sandbox, listed)


@pytest.mark.parametrize(
    ("make", "status_code", "reason"),
    [
        pytest.param(forged, 400, "bad_signature", id="forged signature"),
        pytest.param(unsigned, 400, "bad_signature", id="no signature"),
        pytest.param(replayed, 400, "bad_signature", id="replayed old timestamp"),
        pytest.param(tampered, 400, "bad_signature", id="body changed after signing"),
        pytest.param(malformed_json, 400, "malformed", id="malformed JSON, validly signed"),
        pytest.param(not_an_event, 400, "malformed", id="JSON but no event, validly signed"),
    ],
)
def test_a_bad_delivery_is_refused_changes_nothing_and_is_logged_with_why(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_dummy_sandbox: DummySandbox,
    paycore_ledger: Store,
    services: PaymentTransactionServices,
    http: httpx.Client,
    web_log: LOG,
    make: Callable[[DummySandbox, bytes], tuple[bytes, dict[str, str]]],
    status_code: int,
    reason: str,
) -> None:
    app, payment, event = settled
    genuine = encode_json(event)
    body, headers = make(paycore_dummy_sandbox, genuine)
    before = ledger_rows(paycore_ledger)

    answer = deliver(http, app, body, headers)

    assert answer.status_code == status_code
    assert len(answer.content) < 40 and b"evt_" not in answer.content  # nothing echoed
    assert ledger_rows(paycore_ledger) == before
    (line,) = web_log()
    assert (line["status"], line["reason"], line["gateway"], line["level"]) == (
        status_code,
        reason,
        "dummy",
        "WARNING",
    )
    # The same event, genuinely signed, is what settles the payment.
    assert deliver(http, app, genuine, signed(paycore_dummy_sandbox, genuine)).status_code == 200
    assert services.get_payment(payment.id).status is PaymentStatus.CAPTURED


def test_a_body_over_the_limit_is_refused_by_its_declared_length(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app, _, _ = settled
    before = ledger_rows(paycore_ledger)

    answer = http.post(app.webhook_url, content=b"x" * 2_000_000)

    assert answer.status_code == 413
    assert ledger_rows(paycore_ledger) == before
    (line,) = web_log()
    assert (line["reason"], line["level"]) == ("too_large", "WARNING")


def test_a_body_over_the_limit_without_a_length_is_refused_as_it_streams(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app, _, _ = settled
    before = ledger_rows(paycore_ledger)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2 MB in 50 kB chunks, no Content-Length: chunked
            yield b"x" * 50_000

    answer = http.post(app.webhook_url, content=chunks())

    assert answer.status_code == 413
    assert ledger_rows(paycore_ledger) == before
    (line,) = web_log()
    assert (line["reason"], line["level"]) == ("too_large", "WARNING")


def test_a_body_within_a_smaller_limit_passes_and_one_beyond_it_does_not(
    web_app: Callable[..., WebApp],
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
) -> None:
    app = web_app(deliver=False, web=WebSettings(max_body_bytes=100))
    small, large = b"{" + b" " * 98 + b"}", b"{" + b" " * 99 + b"}"

    assert deliver(http, app, small, signed(paycore_dummy_sandbox, small)).status_code == 400
    assert deliver(http, app, large, signed(paycore_dummy_sandbox, large)).status_code == 413


def test_an_unknown_gateway_is_404(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_dummy_sandbox: DummySandbox,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app, _, event = settled
    body = encode_json(event)
    before = ledger_rows(paycore_ledger)

    answer = http.post(
        f"{app.url}/webhooks/nosuchpay", content=body, headers=signed(paycore_dummy_sandbox, body)
    )

    assert (answer.status_code, answer.text) == (404, "unknown gateway\n")
    assert ledger_rows(paycore_ledger) == before
    (line,) = web_log()
    assert (line["reason"], line["path"], "gateway" in line) == (
        "unknown_gateway",
        "/webhooks/nosuchpay",
        False,
    )


def test_an_event_for_a_payment_the_ledger_does_not_know_is_acknowledged_and_noted(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_dummy_sandbox: DummySandbox,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app, _, event = settled
    event["id"] = "evt_stranger"
    event["data"]["payment"]["id"] = "pay_elsewhere"
    event["data"]["operation"]["reference"] = "txn_elsewhere"
    body = encode_json(event)
    before = ledger_rows(paycore_ledger)

    answer = deliver(http, app, body, signed(paycore_dummy_sandbox, body))

    # Verified, and a retry could not match it any better: the provider may stop.
    assert (answer.status_code, answer.json()) == (200, {"received": True})
    after = ledger_rows(paycore_ledger)
    assert (after["payments"], after["transactions"]) == (
        before["payments"],
        before["transactions"],
    )
    assert [(row["event_id"], row["disposition"]) for row in after["webhook_events"]] == [
        ("evt_stranger", "unmatched")
    ]
    (line,) = web_log()
    assert (line["reason"], line["events"], line["level"]) == (
        "unmatched",
        {"unmatched": 1},
        "WARNING",
    )


def test_a_real_delivery_is_applied_once_and_answered_as_the_plugin_asks(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    web_app()
    payment = bank_transfer_sale(services)

    settle(http, paycore_dummy_server, payment)

    assert paycore_dummy_sandbox.wait_for_webhooks()
    (attempt,) = paycore_dummy_sandbox.webhook_attempts
    assert (attempt.status_code, attempt.delivered) == (200, True)
    payment = services.get_payment(payment.id)
    assert (payment.status, payment.captured) == (PaymentStatus.CAPTURED, Money(2500, "USD"))
    (row,) = ledger_rows(paycore_ledger)["webhook_events"]
    assert (row["payment_id"], row["disposition"]) == (payment.id, "applied")
    (line,) = web_log()
    assert line["message"].startswith("POST /webhooks/dummy 200 ")
    assert (line["gateway"], line["reason"], line["events"], line["level"]) == (
        "dummy",
        "applied",
        {"applied": 1},
        "INFO",
    )


def test_the_same_delivery_five_times_at_once_is_applied_once(
    settled: tuple[WebApp, Payment, dict[str, Any]],
    paycore_dummy_sandbox: DummySandbox,
    services: PaymentTransactionServices,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app, payment, event = settled
    body = encode_json(event)

    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(
                lambda _: deliver(http, app, body, signed(paycore_dummy_sandbox, body)), range(5)
            )
        )

    assert [(a.status_code, a.json()) for a in answers] == [(200, {"received": True})] * 5
    assert sorted(line["reason"] for line in web_log()) == ["applied"] + ["duplicate"] * 4
    rows = ledger_rows(paycore_ledger)
    assert [row["disposition"] for row in rows["webhook_events"]] == ["applied"]
    assert [row["status"] for row in rows["transactions"]] == ["succeeded"]
    assert services.get_payment(payment.id).captured == Money(2500, "USD")


def test_a_late_processing_event_after_success_does_not_move_the_payment_back(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    paycore_ledger: Store,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    app = web_app()
    payment = bank_transfer_sale(services)
    settle(http, paycore_dummy_server, payment)
    assert paycore_dummy_sandbox.wait_for_webhooks()
    before = ledger_rows(paycore_ledger)
    # What the provider said before the bank paid, arriving now, under its own id.
    late = copy.deepcopy(dict(paycore_dummy_sandbox.events[-1]))
    late["id"], late["type"] = "evt_late", "payment.processing"
    late["created"] -= 300
    late["data"]["operation"]["status"] = "processing"
    late["data"]["payment"]["status"] = "processing"
    body = encode_json(late)

    answer = deliver(http, app, body, signed(paycore_dummy_sandbox, body))

    assert answer.status_code == 200
    after = ledger_rows(paycore_ledger)
    assert (after["payments"], after["transactions"]) == (
        before["payments"],
        before["transactions"],
    )
    assert services.get_payment(payment.id).status is PaymentStatus.CAPTURED
    assert [line["reason"] for line in web_log()] == ["applied", "ignored"]


def test_our_own_failure_is_a_5xx_and_the_provider_s_retry_is_applied(
    web_app: Callable[..., WebApp],
    paycore_dummy_gateway: DummyGateway,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    tmp_path: Path,
    web_log: LOG,
) -> None:
    home = tmp_path / "ledger"
    home.mkdir()
    url = f"sqlite:///{home / 'ledger.db'}"
    store = Store.connect(url)
    store.upgrade()
    with PaymentTransactionServices(store, {"dummy": paycore_dummy_gateway}, hooks=None) as shop:
        payment = bank_transfer_sale(shop)
    away = home.rename(tmp_path / "away")  # the database is gone for the app
    web_app(database_url=url)

    settle(http, paycore_dummy_server, payment)
    (first, *_) = wait_until(lambda: paycore_dummy_sandbox.webhook_attempts)
    away.rename(home)  # and back

    assert (first.status_code, first.delivered) == (500, False)
    failed = web_log()[0]
    assert (failed["status"], failed["reason"], failed["level"], failed["traceback"]) == (
        500,
        "failed",
        "ERROR",
        True,
    )
    assert paycore_dummy_sandbox.wait_for_webhooks()
    last = paycore_dummy_sandbox.webhook_attempts[-1]
    assert (last.status_code, last.delivered, last.attempt > 1) == (200, True, True)
    with PaymentTransactionServices(
        Store.connect(url), {"dummy": paycore_dummy_gateway}, hooks=None
    ) as shop:
        assert shop.get_payment(payment.id).status is PaymentStatus.CAPTURED


class BrokenDummyGateway(DummyGateway):
    """The dummy gateway with a bug in reading deliveries."""

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        yield from ()
        raise KeyError("operation")


def test_a_plugin_that_breaks_on_a_delivery_is_a_500_with_its_traceback_logged(
    settings_for: Callable[..., Settings],
    paycore_ledger: Store,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    port = free_port()
    settings = settings_for(f"http://127.0.0.1:{port}")
    broken = BrokenDummyGateway.from_config(
        paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    )
    payments = AsyncPaymentTransactionServices(
        Store.connect(ledger_url(paycore_ledger)), {"dummy": broken}, hooks=None
    )
    body = b'{"id": "evt_1"}'
    try:
        with SandboxServer(create_app(settings, services=payments), port=port) as server:
            answer = http.post(
                f"{server.url}/webhooks/dummy",
                content=body,
                headers=signed(paycore_dummy_sandbox, body),
            )
    finally:
        asyncio.run(payments.aclose())

    # A bug, not a bad delivery: the provider retries, and may meet the fixed plugin.
    assert (answer.status_code, answer.text) == (500, "internal error\n")
    (line,) = web_log()
    assert (line["reason"], line["level"], line["traceback"]) == ("failed", "ERROR", True)
