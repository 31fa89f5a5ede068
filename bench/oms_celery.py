"""An OMS batch of captures on Celery workers: throughput by worker count, no duplicate.

Creates orders, each paid by one authorized card payment (setup, not timed), against
the dummy sandbox served in a process of its own (`paycore sandbox serve`), sets its
latency to 50 ms, then for 1, 2 and 4 worker processes times
`paycore.oms.celery.run_batch_on_celery` capturing N orders (new ones each time):
enqueued on Redis, carried out by ``celery worker`` processes of the solo pool (each
worker one process carrying out one task at a time: concurrency 1 per worker), and
their results awaited. Workers are started, and seen to answer a ping, before the
clock starts.

Printed: a table of workers, wall time, throughput, the ideal wall time (N × latency
/ workers: every worker always waiting on the provider, nothing else taking time) and
the speed-up over one worker. Each worker spends most of a capture waiting on the
provider, so throughput should grow with workers until the machine's cores are busy.
Targets: every capture succeeded and each payment captured exactly once at the
sandbox (zero duplicates, read from its state), and 2 workers at least
``TARGET_SPEEDUP_2`` times as fast as one. A missed target makes the script exit with
status 1, so `make bench` fails on a regression.

Redis is ``--broker-url`` (default ``$PAYCORE_BENCH_REDIS_URL``, else database 15 of
the local one), with keys of this run's own, deleted at the end. When it cannot be
reached the benchmark is skipped with a note, except on CI (``CI=true``), where that
fails the run. The ledger is a temporary SQLite file by default, or a schema of this
run's own in the PostgreSQL database of ``--database-url``.

    python bench/oms_celery.py [--n 300] [--workers 1,2,4] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from _ledger import fresh_ledger, store_name
from _sandbox import sandbox_process

from paycore.config import Settings, load_settings, redact_url
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.oms import Instruction, InstructionKind, InstructionOutcome
from paycore.oms.celery import CeleryConfig, make_celery, run_batch_on_celery
from paycore.oms.jobs import BatchSummary
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices

LATENCY = 0.05
TARGET_SPEEDUP_2 = 1.6
CARD = PaymentMethod(type="card", token="tok_visa")
SETUP_THREADS = 8
REDIS_URL_ENV = "PAYCORE_BENCH_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
START_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="captures per run (default 300)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--database-url", help="PostgreSQL database (default: SQLite file)")
    parser.add_argument("--broker-url", default=os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.workers.split(",")]
    unreachable = redis_problem(args.broker_url)
    if unreachable:
        print(f"Redis at {redact_url(args.broker_url)} is unreachable: {unreachable}")
        if os.environ.get("CI") == "true":
            return 1
        print("skipped: set --broker-url or $PAYCORE_BENCH_REDIS_URL to a reachable Redis")
        return 0
    tag = uuid.uuid4().hex[:12]
    rows: list[tuple[int, float, BatchSummary]] = []
    with (
        sandbox_process() as gateway_config,
        fresh_ledger(args.database_url) as (store, database_url),
        tempfile.TemporaryDirectory(prefix="paycore-bench-") as directory,
    ):
        settings_file = Path(directory) / "paycore.toml"
        settings_file.write_text(settings_toml(gateway_config))
        env = {**os.environ, "PAYCORE_CONFIG": str(settings_file)}
        env["PAYCORE_DATABASE_URL"] = database_url
        settings = load_settings(settings_file, env=env)
        services = PaymentTransactionServices(
            store, {"dummy": DummyGateway.from_config(gateway_config)}, hooks=None
        )
        base_url = gateway_config["base_url"]
        try:
            orders = setup(services, args.n * len(counts))
            set_latency(base_url, LATENCY)
            for run, workers in enumerate(counts):
                config = CeleryConfig(
                    broker_url=args.broker_url,
                    queue=f"paycore.bench.{tag}.{run}",
                    key_prefix=f"paycore-bench-{tag}:",
                )
                batch = [capture(order) for order in orders[run * args.n : (run + 1) * args.n]]
                with worker_processes(workers, config, env, Path(directory)):
                    wall, summary = timed_batch(settings, config, batch)
                rows.append((workers, wall, summary))
            set_latency(base_url, 0.0)
            captures = captures_at_sandbox(base_url)
        finally:
            services.close()
            forget_keys(args.broker_url, f"paycore-bench-{tag}:")
    return report(args.n, rows, captures, store_name(args.database_url))


def redis_problem(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        return str(error)
    return None


def settings_toml(gateway_config: Mapping[str, Any]) -> str:
    lines = ["[gateways.dummy]"] + [f"{k} = {json.dumps(v)}" for k, v in gateway_config.items()]
    return "\n".join(lines) + "\n"


def setup(services: PaymentTransactionServices, n: int) -> list[tuple[str, int]]:
    """N orders, each with one authorized payment: (order id, amount)."""
    run = uuid.uuid4().hex[:8]

    def order(number: int) -> tuple[str, int]:
        order_id, amount = f"ord_{run}_{number}", 1000 + number % 500
        payment = services.create_payment(
            Money(amount, "EUR"), gateway="dummy", payment_method=CARD, owner=order_id
        )
        assert services.authorize(payment.id).succeeded
        return order_id, amount

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        return list(pool.map(order, range(n)))


def capture(order: tuple[str, int]) -> Instruction:
    order_id, amount = order
    return Instruction(
        kind=InstructionKind.CAPTURE,
        order_id=order_id,
        reference="shp_1",
        amount=Money(amount, "EUR"),
    )


@contextmanager
def worker_processes(
    count: int, config: CeleryConfig, env: Mapping[str, str], directory: Path
) -> Iterator[None]:
    """``count`` solo-pool workers on ``config``'s queue, answering pings; killed after."""
    worker_env = {
        **env,
        "PAYCORE_CELERY_BROKER_URL": config.broker_url,
        "PAYCORE_CELERY_QUEUE": config.queue,
        "PAYCORE_CELERY_KEY_PREFIX": config.key_prefix,
    }
    processes = []
    app = make_celery(config=config)
    try:
        for number in range(count):
            log = (directory / f"{config.queue}.{number}.log").open("wb")
            command = [sys.executable, "-m", "celery", "-A", "paycore.oms.celery_app", "worker"]
            command += ["--pool", "solo", "--loglevel", "WARNING"]
            command += ["--hostname", f"w{number}.{config.queue}@%h"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            processes.append(
                subprocess.Popen(command, env=worker_env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            )
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while len(app.control.ping(timeout=0.5) or ()) < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"the workers did not start; see {directory}")
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        app.close()


def timed_batch(
    settings: Settings, config: CeleryConfig, batch: list[Instruction]
) -> tuple[float, BatchSummary]:
    app = make_celery(settings, config=config)
    try:
        started = time.perf_counter()
        summary = run_batch_on_celery(settings, batch, app=app, timeout=600)
        return time.perf_counter() - started, summary
    finally:
        app.close()


def set_latency(base_url: str, seconds: float) -> None:
    with httpx.Client(trust_env=False) as client:
        client.post(f"{base_url}/_sandbox/faults", json={"latency": seconds}).raise_for_status()


def captures_at_sandbox(base_url: str) -> list[int]:
    """How many captures each payment at the sandbox has."""
    with httpx.Client(trust_env=False) as client:
        state = client.get(f"{base_url}/_sandbox/state", timeout=60).json()
    return [
        sum(1 for operation in payment["operations"] if operation["type"] == "capture")
        for payment in state["payments"]
    ]


def forget_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def report(
    n: int, rows: list[tuple[int, float, BatchSummary]], captures: list[int], database: str
) -> int:
    duplicates = sum(count - 1 for count in captures if count > 1)
    missing = sum(1 for count in captures if count == 0)
    base = next((n / wall for workers, wall, _ in rows if workers == 1), None)
    problems = []
    print(f"captures:     {n} per run, {LATENCY * 1000:.0f} ms latency at the sandbox")
    print("workers:      celery worker processes, solo pool (1 task at a time each)")
    print(f"ledger:       {database}")
    print(f"cpus:         {os.cpu_count()}")
    print()
    header = f"{'workers':>7}  {'wall s':>7}  {'captures/s':>10}  {'ideal s':>7}  {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for workers, wall, summary in rows:
        throughput = n / wall
        ideal = n * LATENCY / workers
        speedup = f"{throughput / base:.2f}x" if base else "-"
        print(f"{workers:>7}  {wall:>7.2f}  {throughput:>10.1f}  {ideal:>7.2f}  {speedup:>8}")
        succeeded = summary.counts[InstructionOutcome.SUCCEEDED]
        if succeeded != n:
            problems.append(f"{workers} workers: {n - succeeded} not succeeded ({summary.line()})")
        if workers == 2 and base and throughput / base < TARGET_SPEEDUP_2:
            problems.append(f"2 workers only {throughput / base:.2f}x one")
    print()
    print(f"duplicates:   {duplicates} at the sandbox; {missing} payments not captured")
    if duplicates:
        problems.append(f"{duplicates} duplicate captures")
    if missing:
        problems.append(f"{missing} payments not captured")
    print(
        "result:       "
        + ("every target met" if not problems else "MISSED: " + "; ".join(problems))
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
