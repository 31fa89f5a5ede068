"""The bank check's workers: processes of their own doing random operations on a shared
pool of paid payments, each writing down everything it attempted.

Each worker is a deployment of its own (see `tests.transactions.workers`): it builds
its own `Store` and `PaymentTransactionServices` from the ledger's URL and the
gateways' configs, and shares nothing with the test process but the database and
the sandboxes. Once every worker is ready they are released together
(`tests.processes.released_together`); each then runs until its deadline:

- a **capture**, **refund** or **void** of a random payment of the pool, under a key
  ``{operation}:{payment}:{slot}``: captures and voids from a few slots per payment,
  refunds mostly from hundreds but often from a few hot ones, so the same key comes
  up in several processes at once. Each slot always asks for the same amount, so a
  collision is a replay, never a conflict;
- now and then a **replay** of a key this worker used before, as a caller retrying;
- now and then a **reconcile** run, as a periodic job would, racing the others.

`serve_web_app` runs the web app the sandboxes deliver their webhooks to, in a process
of its own too, so that the events race the workers as they would in production.

Every attempt is one line of JSON in the worker's log, written before the next one
starts: what was asked, and what came back (the transaction, or the error). A refusal
the API promises (`PaymentBusy`, `StateError`, `InvalidAmount`) is an outcome; any
other exception is logged as ``unexpected`` with its traceback, and the worker goes on.
"""

from __future__ import annotations

import json
import os
import random
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from paycore.config import GatewaySettings, Settings
from paycore.errors import InvalidAmount, PaymentBusy, StateError
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.money import Money
from paycore.plugins import gateway_class
from paycore.sandbox.server import SandboxServer
from paycore.transactions.reconcile import Reconciler, Schedule
from paycore.transactions.records import PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from paycore.web import create_app

# How long a worker waits at the barrier for the others to be ready.
BARRIER_TIMEOUT = 120.0
# What each slot of a payment's keys asks for, in minor units of payments of 10,000.00:
# captures add up to more than is authorized (multiple captures must stop at the
# authorization); refunds are small, so that money is left to refund all run long.
CAPTURE_AMOUNTS = (70_000, 110_000, 130_000, 170_000, 190_000, 230_000, 290_000, 310_000)
REFUND_AMOUNTS = (100, 150, 200, 250, 300, 350, 400, 450, 500, 550)
REFUND_SLOTS = 400
VOID_SLOTS = 2
# A share of the refunds draw their key among a few hot slots, so that processes
# send the same refund at the same moment; the rest are mostly new keys.
HOT_SLOTS = 4
HOT_SHARE = 0.3
# Weights of the operations a worker draws.
WEIGHTS = {"capture": 40, "refund": 45, "void": 1, "replay": 10, "reconcile": 2}
# Reconciliation during the run leaves alone what a caller may still be sending, and
# looks again every second at what it could not settle (a deployment's is hours).
RECONCILE_GRACE = timedelta(seconds=2)
RECONCILE_SCHEDULE = Schedule((timedelta(seconds=1),))
RECONCILE_LIMIT = 10
# Half the workers are deployed with the driver's default retries, which absorb nearly
# every injected fault (a retry under the same key); the other half never retry, so a
# fault leaves the outcome unknown, and replays and reconciliation must settle it.
NO_RETRIES = RetryPolicy(max_attempts=1)
# The refusals the API promises for an operation a payment's state or amounts forbid.
REFUSALS = (PaymentBusy, StateError, InvalidAmount)


@dataclass(frozen=True)
class PoolPayment:
    """A paid payment of the pool: authorized (or sold, where the gateway only sells)."""

    payment_id: str
    gateway: str
    currency: str
    operations: tuple[str, ...]  # which of capture, refund, void the gateway offers


@dataclass(frozen=True)
class BankJob:
    """What one worker does: against which ledger and sandboxes, on which payments,
    for how long, and where it writes down its attempts."""

    worker: int
    database_url: str
    gateway_configs: dict[str, dict[str, Any]]
    pool: tuple[PoolPayment, ...]
    seconds: float
    seed: int
    log_path: str


@dataclass(frozen=True)
class WorkerSummary:
    """What a worker puts on the results queue once its deadline passed."""

    worker: int
    pid: int
    released_at: float  # time.monotonic, shared by every process of the machine
    finished_at: float
    attempts: int


class _Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class _Queue(Protocol):
    def put(self, item: Any) -> None: ...


class _Event(Protocol):
    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class Request:
    """One operation as asked: replaying it asks exactly the same."""

    op: str
    payment: PoolPayment
    key: str
    minor_units: int | None  # None for a void


@dataclass(frozen=True)
class WebAppJob:
    """paycore's web app for a process of its own: where it listens, and the settings
    it is built from (the ledger, every gateway's config)."""

    database_url: str
    port: int
    gateway_configs: dict[str, dict[str, Any]]

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            webhook_base_url=f"http://127.0.0.1:{self.port}",
            gateways={
                name: GatewaySettings(name=name, plugin=name, config=config)
                for name, config in self.gateway_configs.items()
            },
        )


def serve_web_app(job: WebAppJob, ready: _Event, stop: _Event) -> None:
    """A process serving `paycore.web.create_app` with uvicorn until ``stop`` is set:
    the receiver of the sandboxes' webhooks, with an interpreter of its own."""
    with SandboxServer(create_app(job.settings()), port=job.port):
        ready.set()
        stop.wait()


def build_services(job: BankJob) -> PaymentTransactionServices:
    """This process's own services: every gateway of the pool, no hooks; odd workers
    retry as the driver does by default, even ones never."""
    retry = None if job.worker % 2 else NO_RETRIES
    drivers = {
        name: GatewayDriver(gateway_class(name).from_config(config), hooks=None, retry=retry)
        for name, config in job.gateway_configs.items()
    }
    return PaymentTransactionServices(Store.connect(job.database_url), drivers, hooks=None)


def run_worker(job: BankJob, barrier: _Barrier, results: _Queue) -> None:
    """A worker process: get ready, wait for the others, operate until the deadline."""
    rng = random.Random(job.seed)
    with build_services(job) as services, open(job.log_path, "w", encoding="utf-8") as log:
        services.get_payment(job.pool[0].payment_id)  # connect before the race
        barrier.wait(BARRIER_TIMEOUT)
        released_at = time.monotonic()
        deadline = released_at + job.seconds
        used: list[Request] = []
        attempts = 0
        while time.monotonic() < deadline:
            record = _attempt(services, rng, job, used)
            log.write(json.dumps({"worker": job.worker, **record}) + "\n")
            log.flush()
            attempts += 1
        results.put(WorkerSummary(job.worker, os.getpid(), released_at, time.monotonic(), attempts))


def _attempt(
    services: PaymentTransactionServices,
    rng: random.Random,
    job: BankJob,
    used: list[Request],
) -> dict[str, Any]:
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    if kind == "reconcile":
        return _reconcile(services)
    if kind == "replay" and used:
        request = rng.choice(used)
        replay = True
    else:
        request = _draw(rng, job.pool)
        replay = False
        used.append(request)
    started = time.monotonic()
    record: dict[str, Any] = {
        "op": request.op,
        "replay": replay,
        "gateway": request.payment.gateway,
        "payment_id": request.payment.payment_id,
        "key": request.key,
        "minor_units": request.minor_units,
        "started": started,
    }
    try:
        transaction = _send(services, request)
    except REFUSALS as error:
        record.update(outcome=type(error).__name__, message=str(error))
    except Exception as error:  # the check fails on these; the worker carries on
        record.update(_unexpected(error))
    else:
        record.update(_described(transaction))
    record["finished"] = time.monotonic()
    return record


def _draw(rng: random.Random, pool: tuple[PoolPayment, ...]) -> Request:
    payment = rng.choice(pool)
    op = rng.choices(payment.operations, weights=[WEIGHTS[op] for op in payment.operations])[0]
    if op == "void":
        slot, minor_units = rng.randrange(VOID_SLOTS), None
    elif op == "capture":
        slot = rng.randrange(len(CAPTURE_AMOUNTS))
        minor_units = CAPTURE_AMOUNTS[slot]
    else:
        slot = rng.randrange(HOT_SLOTS if rng.random() < HOT_SHARE else REFUND_SLOTS)
        minor_units = REFUND_AMOUNTS[slot % len(REFUND_AMOUNTS)]
    return Request(op, payment, f"{op}:{payment.payment_id}:{slot}", minor_units)


def _send(services: PaymentTransactionServices, request: Request) -> PaymentTransaction:
    payment = request.payment
    amount = None if request.minor_units is None else Money(request.minor_units, payment.currency)
    if request.op == "capture":
        return services.capture(payment.payment_id, amount, idempotency_key=request.key)
    if request.op == "refund":
        return services.refund(payment.payment_id, amount, idempotency_key=request.key)
    return services.void(payment.payment_id, idempotency_key=request.key)


def _described(transaction: PaymentTransaction) -> dict[str, Any]:
    return {
        "outcome": str(transaction.status),
        "transaction_id": transaction.id,
    }


def _unexpected(error: Exception) -> dict[str, Any]:
    """What an exception the API does not promise leaves in the log (``except`` only)."""
    return {
        "outcome": "unexpected",
        "error": type(error).__name__,
        "message": str(error),
        "traceback": traceback.format_exc(),
    }


def _reconcile(services: PaymentTransactionServices) -> dict[str, Any]:
    started = time.monotonic()
    record: dict[str, Any] = {"op": "reconcile", "started": started}
    try:
        reconciler = Reconciler(services, grace=RECONCILE_GRACE, schedule=RECONCILE_SCHEDULE)
        report = reconciler.run(limit=RECONCILE_LIMIT)
    except Exception as error:
        record.update(_unexpected(error))
    else:
        record.update(
            outcome="reconciled",
            checked=[[row.transaction_id, str(row.after)] for row in report.rows],
        )
    record["finished"] = time.monotonic()
    return record
