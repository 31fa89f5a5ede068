"""`paycore demo`: a payment's life against a provider sandbox on loopback.

Starts the dummy provider's sandbox and a webhook endpoint, then drives
authorize → partial capture → partial refund → second capture → status check through
the real driver, printing what the gateway answered beside the provider's own totals.
Every webhook the sandbox sends is verified with the gateway's ``handle_webhook``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from attrs import frozen
from rich.console import Console
from rich.table import Table

from paycore.gateways.base import Exchange
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import ReceivedWebhook, WebhookReceiver
from paycore.transactions.model import (
    GatewayResult,
    PaymentMethod,
    PaymentRequest,
    TransactionType,
)

__all__ = ["run_demo"]


# The sandbox's test tokens (see `paycore.gateways.dummy_sandbox.TEST_TOKENS`).
VISA = "tok_visa"
BROKE = "tok_insufficient_funds"


@frozen
class _Step:
    label: str
    kind: TransactionType
    amount: Money
    token: str | None = None
    subject: TransactionType | None = None  # for a status check: the type asked about


def _steps(currency: str) -> list[_Step]:
    return [
        _Step("authorize", TransactionType.AUTHORIZE, Money(10000, currency), VISA),
        _Step("capture 1 (partial)", TransactionType.CAPTURE, Money(4000, currency)),
        _Step("refund (partial)", TransactionType.REFUND, Money(1500, currency)),
        _Step("capture 2", TransactionType.CAPTURE, Money(3500, currency)),
        _Step(
            "status of capture 1",
            TransactionType.FETCH_STATUS,
            Money(4000, currency),
            subject=TransactionType.CAPTURE,
        ),
        _Step(
            "authorize (2nd card)",
            TransactionType.AUTHORIZE,
            Money(2500, currency),
            BROKE,
        ),
    ]


def run_demo(console: Console, *, currency: str = "USD") -> None:
    """Run the lifecycle and print it as a table."""
    if not console.is_terminal:
        console.width = max(console.width, 110)  # a log or a pipe: no need to fold
    receiver = WebhookReceiver()
    # Everything here talks to loopback: a proxy from the environment (HTTP_PROXY)
    # must not be used, so the clients ignore it and the driver gets one of them.
    with (
        SandboxServer(receiver.app()) as hooks_server,
        httpx.Client(trust_env=False, follow_redirects=False) as loopback,
    ):
        receiver.base_url = hooks_server.url
        sandbox = DummySandbox(webhook_url=receiver.url)
        with SandboxServer(sandbox.app()) as server:
            gateway = DummyGateway.from_config(sandbox.gateway_config(server.url))
            console.print(f"[bold]paycore demo[/]: {gateway.display_name} at {server.url}")
            with (
                GatewayDriver(gateway, client=loopback) as driver,
                httpx.Client(base_url=server.url, trust_env=False) as control,
            ):
                table = _lifecycle(driver, gateway, control, currency)
                sent = len(sandbox.events)
                deliveries = receiver.wait_for(sent, timeout=5.0)
            sandbox.close()
        verified = _verify_webhooks(gateway, deliveries, loopback)
    console.print(table)
    console.print(
        f"webhooks: {sent} sent by the sandbox, {len(deliveries)} delivered, "
        f"{verified} verified and normalised by the gateway"
    )


def _lifecycle(
    driver: GatewayDriver, gateway: DummyGateway, control: httpx.Client, currency: str
) -> Table:
    table = Table(
        title=f"A payment's life at {gateway.name!r} (amounts in {currency})",
        caption="authorized, captured, refunded: the provider's own totals after each step",
    )
    table.add_column("step", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for column in ("amount", "authorized", "captured", "refunded", "ms"):
        table.add_column(column, justify="right")
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    reference: str | None = None
    first_capture: str | None = None
    for step in _steps(currency):
        transaction_id = f"txn_{uuid.uuid4().hex[:16]}"
        if step.subject is TransactionType.CAPTURE and first_capture:
            transaction_id = first_capture
        request = PaymentRequest(
            transaction_id=transaction_id,
            transaction_type=step.subject or step.kind,
            payment_id=payment_id,
            amount=step.amount,
            gateway_reference=None if step.token else reference,
            payment_method=PaymentMethod(type="card", token=step.token) if step.token else None,
        )
        started = time.perf_counter()
        result = driver.run(_operation(gateway, step.kind)(request), operation=step.kind.value)
        elapsed = (time.perf_counter() - started) * 1000
        if step.kind is TransactionType.AUTHORIZE and reference is None:
            reference = result.gateway_reference
        if step.kind is TransactionType.CAPTURE and first_capture is None:
            first_capture = transaction_id
        totals = _totals(control, result.gateway_reference or reference)
        table.add_row(
            step.label,
            _describe(result),
            step.amount.to_decimal_string(),
            *(total.to_decimal_string() if total else "—" for total in totals),
            f"{elapsed:.1f}",
        )
    return table


def _operation(
    gateway: DummyGateway, kind: TransactionType
) -> Callable[[PaymentRequest], Exchange[GatewayResult]]:
    operations: dict[TransactionType, Callable[[PaymentRequest], Exchange[GatewayResult]]] = {
        TransactionType.AUTHORIZE: gateway.authorize,
        TransactionType.CAPTURE: gateway.capture,
        TransactionType.REFUND: gateway.refund,
        TransactionType.FETCH_STATUS: gateway.fetch_status,
    }
    return operations[kind]


def _describe(result: GatewayResult) -> str:
    if result.decline_reason is not None:
        return f"{result.outcome}: {result.decline_reason}"
    return str(result.outcome)


def _totals(control: httpx.Client, reference: str | None) -> list[Money | None]:
    """The provider's own totals for the payment, from the sandbox's state."""
    payments: list[dict[str, Any]] = control.get("/_sandbox/state").json()["payments"]
    for payment in payments:
        if payment["id"] == reference:
            settled = payment["status"] not in ("requires_action", "processing", "declined")
            currency = payment["currency"]
            return [
                Money(payment["amount"] if settled else 0, currency),
                Money(payment["amount_captured"], currency),
                Money(payment["amount_refunded"], currency),
            ]
    return [None, None, None]


def _verify_webhooks(
    gateway: DummyGateway, deliveries: tuple[ReceivedWebhook, ...], client: httpx.Client
) -> int:
    verified = 0
    with GatewayDriver(gateway, client=client, hooks=None) as driver:
        for delivery in deliveries:
            handling = driver.run(
                gateway.handle_webhook(delivery.as_request()), operation="handle_webhook"
            )
            verified += len(handling.events)
    return verified
