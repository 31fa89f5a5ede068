"""A bank check (after Jepsen's): eight processes move money on shared payments at once,
through four providers' sandboxes that fail on purpose, and the money must add up.

The test process serves the sandboxes (dummy, MilkyPay, WooshPay, XPAY) on loopback;
paycore's web app (`paycore.web.create_app`, uvicorn), which receives their webhooks,
runs in a process of its own; all share one PostgreSQL ledger in a schema of its own.
The test opens a pool of payments on every provider (authorized, or
sold on XPAY's page, as a customer would pay there), then turns the faults on:
requests that fail before processing, time out or lose their answer after it, and
webhooks duplicated and reordered on their way to the web app. Eight worker processes
(`tests.reliability.bank_workers`) then capture, refund and void at random for
``$PAYCORE_BANK_SECONDS`` (60 by default), keys colliding across processes on purpose.

Then the faults stop, the webhooks still on their way are delivered, reconciliation
settles every unknown outcome, and the invariants must hold: the ledger's totals equal
each provider's; captured <= authorized and refunded <= captured; nothing is left
unresolved; no key has two transactions; each webhook event is stored once; every
worker exited cleanly and every attempt it wrote down is in the ledger as it saw it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from attrs import frozen

from paycore.demo_checkout import CHECKOUT_GATEWAYS
from paycore.gateways.driver import GatewayDriver
from paycore.money import Money
from paycore.plugins import gateway_class, sandbox_class
from paycore.sandbox.base import Sandbox
from paycore.sandbox.browser import submit_form
from paycore.sandbox.faults import FaultPlan
from paycore.testing.pytest_plugin import MakeServices, ServeSandbox
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import PaymentMethod, TransactionStatus
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import Reconciler, ReconcileReport
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.processes import released_together
from tests.reliability import bank_checks
from tests.reliability.bank_workers import (
    BankJob,
    PoolPayment,
    WebAppJob,
    run_worker,
    serve_web_app,
)
from tests.web.support import free_port, ledger_url

SECONDS_ENV = "PAYCORE_BANK_SECONDS"
DEFAULT_SECONDS = 60.0
WORKERS = 8
PAYMENTS_PER_GATEWAY = 6
AMOUNT = 1_000_000  # 10,000.00: enough to refund in small parts all run long
RETURN_URL = "https://shop.example/paycore/return"
# The sandboxes' test card that pays on a hosted page (sandbox only, never a real card).
PAYING_CARD = "4242424242424242"
# Short timeouts, so a stalled answer costs a worker a second, not ten.
TIMEOUTS = {"connect": 1.0, "read": 1.0, "total": 3.0}
# The providers retry a refused webhook within seconds, not hours.
WEBHOOK_SCHEDULE = (0.0, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
WEBHOOK_FAULTS: dict[str, Any] = {"webhook_duplicate_rate": 0.25, "webhook_reorder_rate": 0.25}
# During the run each request may fail: before processing (error), or after it with
# the answer late past the read timeout (timeout) or cut off (drop).
RUN_FAULTS = FaultPlan(
    error_rate=0.04, timeout_rate=0.03, drop_rate=0.04, stall_seconds=1.5, **WEBHOOK_FAULTS
)
# How long the sandboxes get to deliver what is still on its way once the faults stop.
WEBHOOK_WAIT = 60.0
RECONCILE_ROUNDS = 3
WEB_APP_START = 30.0

# Workers are forked from a server process that imported paycore and the plugins once
# (a fresh interpreter started for the purpose: nothing of the test process, its
# servers or threads, is inherited), as in tests/transactions/test_concurrency.py:
# eight spawned interpreters each importing everything take seconds more on two cores.
# The forkserver is one per test session: the preload list set last before it starts
# wins, and every list names the heavy modules.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(
    [
        "__main__",
        "tests.reliability.bank_workers",
        "paycore_milkypay.gateway",
        "paycore_wooshpay.gateway",
        "paycore_xpay.gateway",
        "psycopg",
    ]
)


@frozen
class Provider:
    """How the bank uses one provider: its currency, the method a pool payment pays
    with, and what the workers may do with it; XPAY only sells, on its own page."""

    currency: str
    method: PaymentMethod
    operations: tuple[str, ...]
    pays_on_page: bool = False


ALL = ("capture", "refund", "void")
PROVIDERS = {
    "dummy": Provider("USD", PaymentMethod(type="card", token="tok_visa"), ALL),
    "milkypay": Provider(
        "USD", PaymentMethod(type="test_usd", fields={"test_details_success_rate": "100"}), ALL
    ),
    "wooshpay": Provider("USD", PaymentMethod(type="card", token="pm_card_visa"), ALL),
    "xpay": Provider("UAH", PaymentMethod(type="card"), ("refund",), pays_on_page=True),
}


def provider_totals(
    gateway: str, state: Mapping[str, Any], reference: str, currency: str
) -> tuple[int, int]:
    """What the sandbox's state says a payment captured and refunded (minor units)."""
    if gateway == "dummy":
        (payment,) = [p for p in state["payments"] if p["id"] == reference]
        return payment["amount_captured"], payment["amount_refunded"]
    return CHECKOUT_GATEWAYS[gateway].totals(state, reference, currency)


def bank_seconds() -> float:
    text = os.environ.get(SECONDS_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_SECONDS
    except ValueError:
        pytest.fail(f"${SECONDS_ENV} must be a number of seconds, not {text[:32]!r}")
    if not seconds > 0:
        pytest.fail(f"${SECONDS_ENV} must be positive")
    return seconds


@frozen
class Bank:
    """The providers' sandboxes, the web app in front of the ledger, and the configs
    every process builds its gateways from."""

    database_url: str
    sandboxes: dict[str, Sandbox]
    configs: dict[str, dict[str, Any]]

    def drivers(self, http: httpx.Client) -> dict[str, GatewayDriver]:
        return {
            name: GatewayDriver(gateway_class(name).from_config(config), client=http, hooks=None)
            for name, config in self.configs.items()
        }

    def set_faults(self, plan: FaultPlan) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.set_faults(plan)


@pytest.fixture
def bank(postgres_ledger: Store, paycore_sandbox_server: ServeSandbox) -> Iterator[Bank]:
    """The sandboxes, served here, delivering their webhooks to the web app, served by a
    process of its own; all on loopback."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    sandboxes: dict[str, Sandbox] = {
        name: sandbox_class(name)(
            webhook_url=f"{app_url}/webhooks/{name}",
            webhook_schedule=WEBHOOK_SCHEDULE,
            faults=FaultPlan(**WEBHOOK_FAULTS),
        )
        for name in PROVIDERS
    }
    configs = {
        name: {**sandbox.gateway_config(paycore_sandbox_server(sandbox).url), "timeouts": TIMEOUTS}
        for name, sandbox in sandboxes.items()
    }
    database_url = ledger_url(postgres_ledger)
    ready, stop = _PROCESSES.Event(), _PROCESSES.Event()
    job = WebAppJob(database_url, port, configs)
    web_app = _PROCESSES.Process(target=serve_web_app, args=(job, ready, stop))
    web_app.start()
    try:
        assert ready.wait(WEB_APP_START), "the web app did not start"
        yield Bank(database_url, sandboxes, configs)
        stop.set()
        web_app.join(WEB_APP_START)
        assert web_app.exitcode == 0, f"the web app exited with {web_app.exitcode}"
    finally:
        if web_app.is_alive():
            web_app.kill()
            web_app.join()


def open_pool(services: PaymentTransactionServices, http: httpx.Client) -> tuple[PoolPayment, ...]:
    """Payments on every provider, each paid: authorized, or sold on XPAY's page."""
    pool = []
    for name, provider in PROVIDERS.items():
        for _ in range(PAYMENTS_PER_GATEWAY):
            payment = services.create_payment(
                Money(AMOUNT, provider.currency),
                gateway=name,
                payment_method=provider.method,
                return_url=RETURN_URL,
            )
            if provider.pays_on_page:
                opened = services.sale(payment.id)
                assert opened.next_action is not None, opened
                answer = submit_form(
                    http, opened.next_action.url, "pay", {"card_number": PAYING_CARD}
                )
                assert answer.status_code == 303, answer.text
                opened = services.fetch_status(opened.id)
            else:
                opened = services.authorize(payment.id)
            assert opened.status is TransactionStatus.SUCCEEDED, (name, opened)
            pool.append(PoolPayment(payment.id, name, provider.currency, provider.operations))
    return tuple(pool)


def reconcile_after_the_run(services: PaymentTransactionServices) -> ReconcileReport:
    """Settle what the run left unresolved; the last run's report.

    Every process that could send has exited, so nothing is in flight: the services'
    clock is set past the time a sender could take (the longest exchange and its
    margin) and past the workers' reconciliation schedule, so every unresolved
    transaction is due, and "the provider has no record of it" is believed at once.
    """
    for _ in range(RECONCILE_ROUNDS):
        report = Reconciler(services, grace=timedelta(0)).run()
        if not report.unresolved:
            break
    return report


def test_eight_processes_moving_money_at_once_leave_every_total_equal_to_the_providers(
    bank: Bank,
    paycore_services: MakeServices,
    http: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seconds = bank_seconds()
    started = time.monotonic()
    services = paycore_services(bank.drivers(http))
    pool = open_pool(services, http)
    phases = {"pool opened": time.monotonic() - started}
    jobs = [
        BankJob(
            worker=worker,
            database_url=bank.database_url,
            gateway_configs=bank.configs,
            pool=pool,
            seconds=seconds,
            seed=worker,
            log_path=str(tmp_path / f"worker-{worker}.jsonl"),
        )
        for worker in range(WORKERS)
    ]

    bank.set_faults(RUN_FAULTS)
    started = time.monotonic()
    summaries = released_together(_PROCESSES, run_worker, jobs, timeout=seconds + 120)
    released = min(summary.released_at for summary in summaries)
    phases["workers ready"] = released - started
    phases["run"] = max(summary.finished_at for summary in summaries) - released
    bank.set_faults(FaultPlan())
    started = time.monotonic()
    for name, sandbox in bank.sandboxes.items():
        assert sandbox.wait_for_webhooks(WEBHOOK_WAIT), f"{name} still delivering webhooks"
    phases["webhooks drained"] = time.monotonic() - started
    started = time.monotonic()
    after_the_run = timedelta(seconds=TIMEOUTS["total"]) + NOT_FOUND_MARGIN
    reconciler_services = paycore_services(
        bank.drivers(http), clock=lambda: utc_now() + after_the_run
    )
    reconciled = reconcile_after_the_run(reconciler_services)
    phases["reconciled"] = time.monotonic() - started

    attempts = bank_checks.read_attempts(Path(job.log_path) for job in jobs)
    transactions = {
        transaction.id: transaction
        for member in pool
        for transaction in services.list_transactions(member.payment_id)
    }
    problems = [
        *bank_checks.workers_accounted_for(summaries, attempts, WORKERS),
        *bank_checks.attempts_in_the_ledger(attempts, transactions),
        *bank_checks.keys_unique(transactions.values()),
        *bank_checks.nothing_unresolved(transactions.values(), reconciled),
        *bank_checks.payments_agree(services, pool, bank.sandboxes, provider_totals),
        *bank_checks.webhooks_applied_once(services, bank.sandboxes),
    ]
    deliveries = bank_checks.delivery_counts(bank.sandboxes)
    report = bank_checks.summary(
        attempts,
        seconds,
        reconciled=len(reconciled.rows),
        deliveries=deliveries,
        dispositions=bank_checks.webhook_dispositions(services),
        phases=phases,
    )
    with capsys.disabled():
        print(f"\n{report}")
    assert problems == [], report
    assert deliveries["duplicates"] > 0, "the sandboxes duplicated no webhook: faults were off"
    unknown = [attempt for attempt in attempts if attempt["outcome"] == "unknown"]
    assert unknown, "no fault left an outcome unknown: the faults were off"
