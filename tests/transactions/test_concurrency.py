"""Many callers at once on one payment, with real threads and real processes.

The guarantees under test (DESIGN §5): one idempotency key sends one request however
many callers race with it, and all of them get the transaction it recorded; captures
racing on one payment never capture more than was authorized, and each caller either
gets its recorded capture or a typed error, never a half-done state.

Threads share one `PaymentTransactionServices`; processes each build their own over
the same database (a SQLite file, or PostgreSQL) and the same sandbox, served here.
Every caller first gets ready (imports, connections), then all are released together
by a barrier, so the calls really overlap.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import pytest

from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions import states
from paycore.transactions.model import TransactionStatus, TransactionType
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from tests.processes import released_together
from tests.transactions.workers import CaptureJob, Outcome, capture, capture_when_released

CALLERS = 32
AUTHORIZED = 1000

RunCallers: TypeAlias = Callable[[Sequence[CaptureJob]], list[Outcome]]

# Processes are forked from a server process that imported paycore once (a fresh
# interpreter started for the purpose: nothing of the test process is inherited).
# Spawning 32 interpreters that each import paycore takes 13-18 s per test on two
# cores; forking them, 2-3 s. Each process still builds its own store and services.
# ``__main__`` is the test runner's script, which every child would import otherwise.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(
    ["__main__", "paycore.transactions.services", "paycore.gateways.dummy", "sqlalchemy", "psycopg"]
)


@pytest.fixture(params=["threads", "processes"])
def run_callers(request: pytest.FixtureRequest, services: PaymentTransactionServices) -> RunCallers:
    """Run one capture per job at once: in threads sharing ``services``, or in processes."""
    if request.param == "threads":
        return lambda jobs: _in_threads(services, jobs)
    return _in_processes


def _in_threads(services: PaymentTransactionServices, jobs: Sequence[CaptureJob]) -> list[Outcome]:
    barrier = threading.Barrier(len(jobs))
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(capture, services, job, barrier) for job in jobs]
        return [future.result() for future in futures]


def _in_processes(jobs: Sequence[CaptureJob]) -> list[Outcome]:
    return released_together(_PROCESSES, capture_when_released, jobs)


@pytest.fixture
def gateway_config(sandbox: DummySandbox, paycore_dummy_server: SandboxServer) -> dict[str, Any]:
    """How a process of its own reaches the sandbox served by this test."""
    return sandbox.gateway_config(paycore_dummy_server.url)


@pytest.fixture
def authorized_payment(
    services: PaymentTransactionServices, new_payment: Callable[..., Payment]
) -> Payment:
    """A payment of 10.00 USD, authorized in full."""
    payment = new_payment(AUTHORIZED)
    assert services.authorize(payment.id).status is TransactionStatus.SUCCEEDED
    return services.get_payment(payment.id)


def capture_posts(sandbox: DummySandbox, payment: Payment) -> int:
    """How many capture requests reached the provider for ``payment``."""
    path = f"/v1/payments/{payment.gateway_reference}/captures"
    return sandbox.requests_received.count(("POST", path))


def provider_payment(sandbox: DummySandbox, payment: Payment) -> dict[str, Any]:
    (found,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == payment.gateway_reference]
    return dict(found)


def most_in_flight(outcomes: Sequence[Outcome]) -> int:
    """The most calls that were under way at one moment."""
    return max(
        sum(other.released_at <= outcome.released_at < other.finished_at for other in outcomes)
        for outcome in outcomes
    )


def test_32_identical_captures_send_one_request_and_all_get_the_one_transaction(
    run_callers: RunCallers,
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    database_url: str,
    gateway_config: dict[str, Any],
    authorized_payment: Payment,
) -> None:
    payment = authorized_payment
    job = CaptureJob(database_url, gateway_config, payment.id, 600, "USD", "ship-1")

    outcomes = run_callers([job] * CALLERS)

    assert [outcome.error for outcome in outcomes] == [None] * CALLERS, outcomes
    (captured,) = services.list_transactions(payment.id)[1:]
    assert captured.type is TransactionType.CAPTURE
    assert captured.status is TransactionStatus.SUCCEEDED
    assert {(o.transaction_id, o.status, o.minor_units) for o in outcomes} == {
        (captured.id, "succeeded", 600)
    }
    assert capture_posts(sandbox, payment) == 1
    assert provider_payment(sandbox, payment)["amount_captured"] == 600
    after = services.get_payment(payment.id)
    assert after.captured == Money(600, "USD")
    assert states.problems(after, services.list_transactions(payment.id)) == []
    # The callers raced: many of them were under way at the same moment.
    assert most_in_flight(outcomes) >= CALLERS // 4


# What a capture asking for more than is left gets; PaymentBusy is retried.
REFUSALS = {"InvalidAmount", "StateError"}


def test_32_different_captures_never_capture_more_than_was_authorized(
    run_callers: RunCallers,
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    database_url: str,
    gateway_config: dict[str, Any],
    authorized_payment: Payment,
) -> None:
    payment = authorized_payment
    # 100, 150, 200, 250, 100 …: 56.00 asked of the 10.00 authorized. Each caller
    # retries while another capture is in flight (PaymentBusy), as a job would, so
    # the captures go on until the authorization is used up.
    jobs = [
        CaptureJob(
            database_url,
            gateway_config,
            payment.id,
            100 + 50 * (i % 4),
            "USD",
            f"ship-{i}",
            retry_busy=True,
        )
        for i in range(CALLERS)
    ]
    assert sum(job.minor_units for job in jobs) > AUTHORIZED

    outcomes = run_callers(jobs)

    # Every call got its capture or a typed refusal; nothing else was raised.
    refused = [outcome for outcome in outcomes if outcome.error is not None]
    assert {outcome.error for outcome in refused} <= REFUSALS, refused
    succeeded = [outcome for outcome in outcomes if outcome.error is None]
    assert {outcome.status for outcome in succeeded} == {"succeeded"}
    # Each caller that succeeded got a capture of its own, of the amount it asked.
    asked = {job.idempotency_key: job.minor_units for job in jobs}
    captures = [
        t for t in services.list_transactions(payment.id) if t.type is TransactionType.CAPTURE
    ]
    assert sorted(o.transaction_id or "" for o in succeeded) == sorted(t.id for t in captures)
    assert all(t.status is TransactionStatus.SUCCEEDED for t in captures)
    assert all(t.amount.minor_units == asked[t.idempotency_key] for t in captures)

    after = services.get_payment(payment.id)
    captured = sum(outcome.minor_units or 0 for outcome in succeeded)
    assert after.captured == Money(captured, "USD")
    assert after.captured <= after.authorized == Money(AUTHORIZED, "USD")
    assert states.problems(after, services.list_transactions(payment.id)) == []
    # Nobody was refused while what it asked for was still there.
    left = after.capturable.minor_units
    assert all(asked[outcome.idempotency_key] > left for outcome in refused)
    at_provider = provider_payment(sandbox, payment)
    assert (at_provider["amount_captured"], at_provider["amount_capturable"]) == (captured, left)
    # One request per capture recorded: nothing refused was sent, nothing sent twice.
    assert capture_posts(sandbox, payment) == len(captures)
    assert most_in_flight(outcomes) >= CALLERS // 4
