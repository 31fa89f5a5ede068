"""What the ledger adds per operation over the raw driver, and whether it stays flat.

Authorizes and captures payments through `PaymentTransactionServices` (write ahead,
record, outbox) and makes the same calls through a bare `GatewayDriver` with
hand-built `PaymentRequest`s, against one dummy sandbox in its own process (`paycore
sandbox serve`), on each database:

- SQLite: temporary files, migrated;
- PostgreSQL: ``$PAYCORE_BENCH_POSTGRES_URL`` (default the local ``test`` database),
  in schemas of this run's own, created and migrated here and dropped at the end, so
  no table of anyone else's is read or emptied. When it cannot be reached it is left
  out with a note, except on CI (``CI=true``), where that fails the run.

Each database gets two ledgers, seeded through SQLAlchemy Core bulk inserts with
10^3 and with 10^5 captured payments (each with its authorize and capture
transactions; PostgreSQL's tables are then analyzed, as autovacuum would). Rounds
interleave three arms, in an order that rotates, so drift in the machine hits them
all alike: the services on the small ledger, the services on the large one, and the
raw driver. Every arm carries out the same number of payments; the services create
theirs before the clock starts. Medians per operation are printed with:

- the time the ledger adds over the driver; target at most 1.0 ms on SQLite and
  1.5 ms on PostgreSQL, at either ledger size;
- the ratio of the services' time at 10^5 payments to 10^3; target at most 1.2 (flat);
- for reading a run on a busy machine, the machine's load and the CPU time the ledger
  adds in this process (no target: other processes stretch wall time, much less CPU
  time).

Hooks are off on both sides (``hooks=None``): what is measured is the ledger. A missed
target makes the script exit with status 1, so `make bench` fails on a regression.

    python bench/ledger_overhead.py [ROUNDS]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from _ledger import fresh_ledger
from _sandbox import sandbox_process

from paycore.config import redact_url
from paycore.errors import ConfigurationError
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.transactions.model import PaymentMethod, PaymentRequest, TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store, payments, transactions

TARGET_ADDED_MS = {"sqlite": 1.0, "postgresql": 1.5}
FLAT_RATIO = 1.2
SMALL, LARGE = 1_000, 100_000
ROUNDS = 60  # a multiple of 3, so each arm goes first, second and third equally often
BLOCK = 4  # payments per arm per round: small, so bursts of load hit every arm
WARMUP = 10  # payments per arm before measuring, not counted
SEED_CHUNK = 5_000
OPERATIONS = ("authorize", "capture")

POSTGRES_URL_ENV = "PAYCORE_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

CARD = PaymentMethod(type="card", token="tok_visa")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")
Samples = dict[str, list[tuple[float, float]]]  # operation -> (wall, CPU) seconds per call
Arm = Callable[[int], Samples]


def main(rounds: int) -> int:
    load_before = os.getloadavg()[0]
    databases = ["sqlite"]
    postgres_url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    unreachable = postgres_problem(postgres_url)
    if unreachable is None:
        databases.append("postgresql")
    elif os.environ.get("CI") == "true":
        print(f"PostgreSQL at {redact_url(postgres_url)} is unreachable: {unreachable}")
        return 1
    else:
        print(
            f"note: PostgreSQL left out, {redact_url(postgres_url)} is unreachable: "
            f"{unreachable} (set ${POSTGRES_URL_ENV})"
        )
    results: dict[str, dict[str, Samples]] = {}
    with sandbox_process() as config:
        gateway = DummyGateway.from_config(config)
        for database in databases:
            results[database] = on_database(database, postgres_url, gateway, rounds)
    load_after = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    busy = max(load_before, load_after) > cores
    print(
        f"\nmachine load (1-minute average): {load_before:.1f} before, {load_after:.1f} after, "
        f"on {cores} cores" + ("; busy: other processes inflate every figure" if busy else "")
    )
    return report(results, rounds * BLOCK)


def on_database(
    database: str, postgres_url: str, gateway: DummyGateway, rounds: int
) -> dict[str, Samples]:
    """Seed a small and a large ledger on ``database``, then measure the three arms."""
    with ExitStack() as stack:
        arms: dict[str, Arm] = {}
        for size in (SMALL, LARGE):
            store = stack.enter_context(ledger_store(database, postgres_url))
            began = time.perf_counter()
            seed(store, size)
            print(
                f"{database}: seeded {size:>7,} payments in {time.perf_counter() - began:5.1f} s",
                flush=True,
            )
            services = stack.enter_context(services_on(store, gateway))
            arms[f"ledger {size}"] = partial(through_services, services)
        driver = stack.enter_context(raw_driver(gateway))
        arms["driver"] = partial(through_driver, driver, gateway)
        return measure(arms, rounds)


# -- the arms --------------------------------------------------------------------------


def through_services(services: PaymentTransactionServices, count: int) -> Samples:
    """Authorize and capture ``count`` new payments through the services."""
    created = [
        services.create_payment(
            Money(1000 + number % 500, "USD"), gateway="dummy", payment_method=CARD
        )
        for number in range(count)
    ]
    samples: Samples = {operation: [] for operation in OPERATIONS}
    for payment in created:
        authorized = timed(samples, "authorize", partial(services.authorize, payment.id))
        assert authorized.status is TransactionStatus.SUCCEEDED, authorized
        captured = timed(samples, "capture", partial(services.capture, payment.id))
        assert captured.status is TransactionStatus.SUCCEEDED, captured
    return samples


def through_driver(driver: GatewayDriver, gateway: DummyGateway, count: int) -> Samples:
    """The same calls with hand-built requests: the driver alone, no ledger."""
    samples: Samples = {operation: [] for operation in OPERATIONS}
    for number in range(count):
        amount = Money(1000 + number % 500, "USD")
        payment_id = f"pay_{uuid.uuid4().hex}"
        authorization = PaymentRequest(
            transaction_id=f"txn_{uuid.uuid4().hex}",
            transaction_type="authorize",
            payment_id=payment_id,
            amount=amount,
            payment_method=CARD,
        )
        exchange = gateway.authorize(authorization)  # a generator: nothing runs yet
        run = partial(driver.run, exchange, operation="authorize")
        authorized = timed(samples, "authorize", run)
        assert authorized.approved, authorized
        capture = PaymentRequest(
            transaction_id=f"txn_{uuid.uuid4().hex}",
            transaction_type="capture",
            payment_id=payment_id,
            amount=amount,
            gateway_reference=authorized.gateway_reference,
            payment_method=CARD,
        )
        run = partial(driver.run, gateway.capture(capture), operation="capture")
        captured = timed(samples, "capture", run)
        assert captured.approved, captured
    return samples


def timed(samples: Samples, operation: str, call: Callable[[], T]) -> T:
    """``call()``, its wall and CPU seconds (this thread's) added to ``samples``."""
    cpu, wall = time.thread_time(), time.perf_counter()
    result = call()
    samples[operation].append((time.perf_counter() - wall, time.thread_time() - cpu))
    return result


def measure(arms: dict[str, Arm], rounds: int) -> dict[str, Samples]:
    """Each arm's samples, interleaved in rounds of rotating order."""
    names = list(arms)
    for name in names:
        arms[name](WARMUP)
    collected: dict[str, Samples] = {name: {op: [] for op in OPERATIONS} for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            for operation, samples in arms[name](BLOCK).items():
                collected[name][operation].extend(samples)
    return collected


# -- the ledgers -------------------------------------------------------------------------


def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None when it can."""
    try:
        probe = Store.connect(url, connect_args={"connect_timeout": 3})
        try:
            with probe.engine.connect():
                pass
        finally:
            probe.close()
    except (ImportError, ConfigurationError, sa.exc.DBAPIError) as error:
        return " ".join(str(getattr(error, "orig", None) or error).split())
    return None


@contextmanager
def ledger_store(database: str, postgres_url: str) -> Iterator[Store]:
    """A migrated, empty ledger of this run's own: a new SQLite file or PostgreSQL schema."""
    with fresh_ledger(None if database == "sqlite" else postgres_url) as (store, _):
        if database != "sqlite":
            print(f"postgresql: a schema of {redact_url(postgres_url)}, dropped at the end")
        yield store


def seed(store: Store, count: int) -> None:
    """``count`` captured payments of the past months, each with its two transactions."""
    rng = random.Random(count)
    # Made over 90 days that ended two days ago, so every capture is in the past.
    first = datetime.now(UTC) - timedelta(days=92)
    spacing = timedelta(days=90) / count
    for start in range(0, count, SEED_CHUNK):
        payment_rows: list[dict[str, Any]] = []
        transaction_rows: list[dict[str, Any]] = []
        for number in range(start, min(count, start + SEED_CHUNK)):
            created = first + spacing * number
            authorized = created + timedelta(seconds=1)
            captured = created + timedelta(hours=rng.randint(1, 48))
            amount = rng.randint(100, 50_000)
            payment_id = _id("pay", created, rng)
            reference = f"pay_{rng.getrandbits(96):024x}"
            authorization_id = _id("txn", authorized, rng)
            payment_rows.append(
                {
                    "id": payment_id,
                    "gateway": "dummy",
                    "status": "captured",
                    "currency": "USD",
                    "amount": amount,
                    "authorized": amount,
                    "captured": amount,
                    "refunded": 0,
                    "capturable": 0,
                    "owner": f"order_{number:08d}",
                    "gateway_reference": reference,
                    "method_type": "card",
                    "method_token": "tok_visa",
                    "method_save": False,
                    "customer": {"reference": f"cus_{number % 20_000}", "country": "US"},
                    "description": f"Order {number:08d}",
                    "return_url": None,
                    "notification_url": None,
                    "idempotency_key": f"checkout_{rng.getrandbits(64):016x}",
                    "fingerprint": f"{rng.getrandbits(256):064x}",
                    "authorization_expires_at": created + timedelta(days=7),
                    "metadata": {"channel": "web"},
                    "created_at": created,
                    "updated_at": captured,
                }
            )
            for kind, transaction_id, parent, at, path in (
                ("authorize", authorization_id, None, authorized, "/v1/payments"),
                (
                    "capture",
                    _id("txn", captured, rng),
                    authorization_id,
                    captured,
                    f"/v1/payments/{reference}/captures",
                ),
            ):
                transaction_rows.append(
                    {
                        "id": transaction_id,
                        "payment_id": payment_id,
                        "type": kind,
                        "status": "succeeded",
                        "currency": "USD",
                        "amount": amount,
                        "idempotency_key": f"{rng.getrandbits(128):032x}",
                        "fingerprint": f"{rng.getrandbits(256):064x}",
                        "parent_id": parent,
                        "final": False,
                        "gateway_transaction_id": f"op_{rng.getrandbits(96):024x}",
                        "provider_status": "succeeded",
                        "exchange": f"POST https://sandbox.invalid{path} -> 201 (182.4 ms)",
                        "checks": 0,
                        "created_at": at,
                        "updated_at": at,
                        "resolved_at": at,
                    }
                )
        with store.engine.begin() as connection:
            connection.execute(payments.insert(), payment_rows)
            connection.execute(transactions.insert(), transaction_rows)
    with store.engine.connect() as connection:
        if store.dialect == "postgresql":
            # What autovacuum does to a table that grew this much, before the planner
            # sees the load.
            connection.execute(sa.text("ANALYZE payments"))
            connection.execute(sa.text("ANALYZE transactions"))
            connection.commit()
        else:
            # Start from an empty write-ahead log, as a ledger in steady state does.
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.commit()


def _id(prefix: str, at: datetime, rng: random.Random) -> str:
    # As the ledger makes them: microseconds since the epoch, then 64 random bits.
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return f"{prefix}_{micros:014x}{rng.getrandbits(64):016x}"


@contextmanager
def services_on(store: Store, gateway: DummyGateway) -> Iterator[PaymentTransactionServices]:
    # A loopback server: never through a proxy from the environment.
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        driver = GatewayDriver(gateway, client=client, hooks=None)
        services = PaymentTransactionServices(store, {"dummy": driver}, hooks=None)
        try:
            yield services
        finally:
            services.close()  # before the ledger goes: it drops what was delivered


@contextmanager
def raw_driver(gateway: DummyGateway) -> Iterator[GatewayDriver]:
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        yield GatewayDriver(gateway, client=client, hooks=None)


# -- the sandbox -------------------------------------------------------------------------


# -- the report --------------------------------------------------------------------------


def report(results: dict[str, dict[str, Samples]], per_arm: int) -> int:
    """Print the table; 0 when every target is met, 1 otherwise."""
    print(
        f"\n{per_arm} payments per arm, each authorized then captured; medians in ms. "
        "added: ledger minus driver, target <= "
        + ", ".join(f"{target} {database}" for database, target in TARGET_ADDED_MS.items())
        + f"; flat: 10^5 / 10^3, target <= {FLAT_RATIO}; cpu: this process's CPU time "
        "added at 10^3, for reading a busy machine"
    )
    header = (
        f"{'database':<11}{'operation':<10}{'driver':>8}{'10^3 ledger':>13}{'added':>8}"
        f"{'10^5 ledger':>13}{'added':>8}{'flat':>6}{'cpu':>8}  result"
    )
    print(header)
    print("-" * len(header))
    missed = []
    for database, arms in results.items():
        target = TARGET_ADDED_MS[database]
        for operation in OPERATIONS:
            driver, driver_cpu = _medians_ms(arms["driver"][operation])
            small, small_cpu = _medians_ms(arms[f"ledger {SMALL}"][operation])
            large, _ = _medians_ms(arms[f"ledger {LARGE}"][operation])
            ratio = large / small
            problems = []
            if max(small, large) - driver > target:
                problems.append("added")
            if ratio > FLAT_RATIO:
                problems.append("flat")
            missed += [f"{database} {operation} {problem}" for problem in problems]
            print(
                f"{database:<11}{operation:<10}{driver:>8.3f}{small:>13.3f}{small - driver:>+8.3f}"
                f"{large:>13.3f}{large - driver:>+8.3f}{ratio:>6.2f}{small_cpu - driver_cpu:>+8.3f}"
                "  " + ("ok" if not problems else "OVER (" + ", ".join(problems) + ")")
            )
    print("result: " + ("every target met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


def _medians_ms(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall and CPU milliseconds of ``samples``."""
    return (
        statistics.median(wall for wall, _ in samples) * 1000,
        statistics.median(cpu for _, cpu in samples) * 1000,
    )


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS))
