"""`paycore demo`: payments written ahead in the ledger, against a provider sandbox.

Starts the dummy provider's sandbox and a webhook endpoint on loopback, and a ledger on
SQLite (the embedded default; a temporary file unless a database URL is given). Then
drives a payment through `PaymentTransactionServices`: authorize, a partial capture, the
same capture again under its idempotency key (replayed, not resent), a partial refund,
a capture whose connection the sandbox drops (retried safely under the same key), and
a void of the rest; and a second payment whose card is declined. Each row shows the
ledger's totals beside the provider's own. Every webhook the sandbox sent is then
verified by the gateway and applied to the ledger, which already knew each outcome.

Then a checkout through paycore's web app for each provider plugin
(`paycore.demo_checkout`): payment options, split tender (a gift card and the
provider's hosted page), paid on the page, the webhook and the customer's return in
either order, the order complete; then a partial capture and refund of it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from paycore import demo_checkout
from paycore.demo_checkout import Step
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.transactions import states
from paycore.transactions.model import PaymentMethod
from paycore.transactions.records import PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

__all__ = ["run_demo"]

GATEWAY = "dummy"
# The sandbox's test tokens (see `paycore.gateways.dummy_sandbox.TEST_TOKENS`).
VISA = "tok_visa"
BROKE = "tok_insufficient_funds"


def run_demo(console: Console, *, currency: str = "USD", database_url: str | None = None) -> None:
    """Run the payments, print them as a table, and check the ledger against the provider."""
    if not console.is_terminal:
        console.width = max(console.width, 140)  # a log or a pipe: no need to fold
    with tempfile.TemporaryDirectory(prefix="paycore-demo-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'paycore.db'}"
        _run(console, currency, url)


def _run(console: Console, currency: str, database_url: str) -> None:
    receiver = WebhookReceiver()
    # Everything here talks to loopback: a proxy from the environment (HTTP_PROXY)
    # must not be used, so the clients ignore it and the driver gets one of them.
    with (
        SandboxServer(receiver.app()) as hooks_server,
        httpx.Client(trust_env=False, follow_redirects=False) as loopback,
    ):
        receiver.base_url = hooks_server.url
        sandbox = DummySandbox(webhook_url=receiver.url)
        # The demo cuts a connection on purpose; uvicorn would log that as an error.
        with SandboxServer(sandbox.app(), log_level="critical") as server:
            gateway = DummyGateway.from_config(sandbox.gateway_config(server.url))
            store = Store.connect(database_url)
            store.upgrade()
            console.print(
                f"[bold]paycore demo[/]: {gateway.display_name} at {server.url}; "
                f"ledger on {store.dialect}"
            )
            driver = GatewayDriver(gateway, client=loopback, hooks=None)
            with PaymentTransactionServices(store, {GATEWAY: driver}, hooks=None) as services:
                rows = _payments(services, sandbox, currency)
                deliveries = receiver.wait_for(len(sandbox.events), timeout=5.0)
                sandbox.close()
                applied = demo_checkout.webhook_dispositions(services, GATEWAY, driver, deliveries)
                provider = {p["id"]: p for p in sandbox.snapshot()["payments"]}
                console.print(_table(rows, currency))
                console.print(_webhook_line(len(sandbox.events), len(deliveries), applied))
                console.print(_agreement(services, {row.payment.id for row in rows}, provider))
        _checkout(console, database_url, loopback, currency)


def _webhook_line(sent: int, delivered: int, dispositions: dict[str, int]) -> str:
    """What the provider's webhooks did: a delivery may carry several events."""
    events = sum(dispositions.values())
    return (
        f"webhooks: {sent} sent by the sandbox, {delivered} delivered and verified, "
        f"carrying {events} events: {dispositions.get('applied', 0)} moved a transaction, "
        f"{dispositions.get('ignored', 0)} confirmed what was already recorded, "
        f"{dispositions.get('duplicate', 0)} repeated one already applied"
    )


def _checkout(console: Console, database_url: str, loopback: httpx.Client, currency: str) -> None:
    for index, name in enumerate(demo_checkout.CHECKOUT_GATEWAYS):
        if not demo_checkout.available(name):
            console.print(f"(the {name} plugin is not installed: no checkout through it)")
            continue
        tour = demo_checkout.checkout_tour(
            name, database_url, loopback, currency, return_first=index % 2 == 1
        )
        console.print()
        console.print(
            f"[bold]A checkout through {tour.display_name}'s sandbox and paycore's web app[/]"
        )
        offered = "; ".join(
            f"{gateway}: {', '.join(types)}" for gateway, types in tour.options.items()
        )
        console.print(f"payment options for the cart: {offered}")
        table = _table(tour.steps, tour.currency)
        table.title = (
            f"split tender: {tour.gift_card.amount} on a gift card, {tour.payment.amount} on "
            f"{tour.display_name}'s page"
        )
        console.print(table)
        console.print(_completion_line(tour))
        console.print(_events_line(tour.webhooks))
        console.print(_tour_agreement(tour))


def _completion_line(tour: demo_checkout.Tour) -> str:
    if tour.first == "webhook":
        how = (
            "completed by the webhook; the customer's return found it done and landed on "
            f"{tour.landed_on}"
        )
    else:
        how = (
            f"completed by the customer's return (confirmed with {tour.display_name}); the "
            f"webhook, held back, came after and changed nothing; the customer landed on "
            f"{tour.landed_on}"
        )
    return f"order {tour.order_id}: {how}"


def _events_line(dispositions: Mapping[str, int]) -> str:
    events = sum(dispositions.values())
    return (
        f"the web app took {events} events from the provider: "
        f"{dispositions.get('applied', 0)} moved a transaction, "
        f"{dispositions.get('ignored', 0)} confirmed what was already recorded, "
        f"{dispositions.get('duplicate', 0)} repeated one already applied"
    )


def _tour_agreement(tour: demo_checkout.Tour) -> str:
    payment, gift = tour.payment, tour.gift_card
    ours = (payment.captured.minor_units, payment.refunded.minor_units)
    theirs = (tour.captured_at_provider, tour.refunded_at_provider)
    if ours != theirs or gift.capturable.minor_units != tour.gift_card_at_provider:
        return f"[red]ledger and provider disagree on {payment.id} or {gift.id}[/]"
    released = ", the rest of the authorization released" if tour.authorized else ""
    return (
        f"ledger = provider: {payment.id} captured {payment.captured}, refunded "
        f"{payment.refunded}{released}; the gift card holds {gift.capturable} for the order"
    )


def _payments(
    services: PaymentTransactionServices, sandbox: DummySandbox, currency: str
) -> list[Step]:
    rows: list[Step] = []

    def step(label: str, call: Callable[[], PaymentTransaction]) -> None:
        started = time.perf_counter()
        transaction = call()
        elapsed = (time.perf_counter() - started) * 1000
        rows.append(Step(label, transaction, services.get_payment(transaction.payment_id), elapsed))

    def money(minor_units: int) -> Money:
        return Money(minor_units, currency)

    card = PaymentMethod(type="card", token=VISA)
    first = services.create_payment(money(10000), gateway=GATEWAY, payment_method=card)
    step("authorize", lambda: services.authorize(first.id))
    step("capture (partial)", lambda: services.capture(first.id, money(4000), idempotency_key="c1"))
    step(
        "same capture, same key",
        lambda: services.capture(first.id, money(4000), idempotency_key="c1"),
    )
    step("refund (partial)", lambda: services.refund(first.id, money(1500)))
    sandbox.queue_faults("drop")  # processed, then the connection is cut
    step("capture (dropped, retried)", lambda: services.capture(first.id, money(3500)))
    step("void the rest", lambda: services.void(first.id))
    declined = PaymentMethod(type="card", token=BROKE)
    second = services.create_payment(money(2500), gateway=GATEWAY, payment_method=declined)
    step("authorize (2nd card)", lambda: services.authorize(second.id))
    return rows


def _table(rows: list[Step], currency: str) -> Table:
    table = Table(
        title=f"Payments written ahead in the ledger (amounts in {currency})",
        caption="captured, refunded: the ledger's totals after each step",
    )
    table.add_column("step", no_wrap=True)
    table.add_column("transaction", no_wrap=True)
    table.add_column("payment", no_wrap=True)
    for column in ("amount", "captured", "refunded", "attempts", "ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        transaction, payment = row.transaction, row.payment
        status = str(transaction.status)
        if transaction.decline_reason is not None:
            status = f"{status}: {transaction.decline_reason}"
        attempts = str(transaction.exchange.count(" -> ") if transaction.exchange else 0)
        table.add_row(
            row.label,
            status,
            str(payment.status),
            transaction.amount.to_decimal_string(),
            payment.captured.to_decimal_string(),
            payment.refunded.to_decimal_string(),
            attempts,
            f"{row.elapsed_ms:.1f}",
        )
    return table


def _agreement(
    services: PaymentTransactionServices, payment_ids: set[str], provider: dict[str, Any]
) -> str:
    """One line: whether the ledger's totals equal the provider's, invariants included."""
    mismatches = []
    for payment_id in sorted(payment_ids):
        payment = services.get_payment(payment_id)
        broken = states.problems(payment, services.list_transactions(payment_id))
        theirs = provider.get(payment.gateway_reference or "", {})
        ours = (payment.captured.minor_units, payment.refunded.minor_units)
        if broken or ours != (theirs.get("amount_captured", 0), theirs.get("amount_refunded", 0)):
            mismatches.append(payment_id)
    if mismatches:
        return f"[red]ledger and provider disagree on {', '.join(mismatches)}[/]"
    return (
        f"ledger = provider: captured and refunded totals agree for all {len(payment_ids)} "
        "payments, and every invariant holds"
    )
