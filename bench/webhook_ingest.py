"""Webhook ingestion by `paycore serve`: signed events per second against the same
server's bare ``GET /health``.

Setup (not timed): a ledger of the run's own, the dummy provider's sandbox in a process
of its own, and N bank-transfer payments made through paycore (each `processing`: the
money comes later). The sandbox is told each transfer arrived, and delivers the
``payment.captured`` event it signs to a recording endpoint here: the events are the
provider's own, for the ledger's own payments, not yet applied.

Then `paycore serve` (the command, a process of its own, uvicorn) is started on the
ledger, and one client process on loopback, holding ``--concurrency`` kept-alive
connections, measures in turn:

- ``GET /health``: requests per second (the server's bare throughput);
- the events, posted to ``/webhooks/dummy`` each signed just before the run as the
  provider signs (``Dummy-Signature``), 10% of them posted a second time later in the
  run (a provider's retry): events per second;
- ``GET /health`` again (the ledger has grown); the two health runs are averaged.

The client is a minimal HTTP/1.1 client on asyncio sockets, its requests built before
the clock starts, so its own cost per request is a small fraction of the server's:
it measures the server, not itself (its CPU time is printed to show it).

Target: events/s at least 50% of /health's requests/s. Checked after the run: every
answer 200; every distinct event stored once and applied (the ledger's
``webhook_events``: one row each, disposition ``applied``; each transfer succeeded);
every duplicate recognised as one (the server's log line of each delivery says
``reason=duplicate``). A missed target or a failed check exits with status 1.

The ledger is a temporary SQLite file by default, or a schema of this run's own in the
PostgreSQL database of ``--database-url`` (created, migrated, dropped at the end).

    python bench/webhook_ingest.py [--n 3000] [--concurrency 32] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _ledger import fresh_ledger, store_name
from _sandbox import sandbox_process
from attrs import evolve, frozen

from paycore.gateways.dummy import SIGNATURE_HEADER, DummyGateway
from paycore.gateways.webhooks import sign
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.sandbox.webhook_receiver import WebhookReceiver
from paycore.transactions.model import PaymentMethod, TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store, transactions, webhook_events

TARGET_RATIO = 0.5
DUPLICATES = 0.10
TRANSFER = PaymentMethod(type="bank_transfer")
SETUP_THREADS = 16
SETTLED_EVENT = "payment.captured"  # a sale settled: the transfer arrived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="distinct events (default 3000)")
    parser.add_argument("--concurrency", type=int, default=32, help="at once (default 32)")
    parser.add_argument("--database-url", help="PostgreSQL database (default: SQLite file)")
    args = parser.parse_args(argv)
    n, concurrency = args.n, args.concurrency
    receiver = WebhookReceiver()
    recording = SandboxServer(receiver.app()).start()
    receiver.base_url = recording.url
    try:
        with (
            fresh_ledger(args.database_url) as (store, url),
            sandbox_process(webhook_url=receiver.url) as config,
        ):
            events = provider_events(store, config, receiver, n)
            with served(url, config) as server:
                result = measure(server, config, events, concurrency)
                checks = verify(store, events, result, server.log)
    finally:
        recording.stop()
    return report(n, concurrency, result, checks, store_name(args.database_url))


# -- setup -------------------------------------------------------------------------------


def provider_events(
    store: Store, config: dict[str, Any], receiver: WebhookReceiver, n: int
) -> list[bytes]:
    """The bodies of the sandbox's ``payment.captured`` events for N transfers the ledger
    holds as processing, as the sandbox delivered them."""
    with httpx.Client(trust_env=False) as client:
        services = PaymentTransactionServices(store, {"dummy": DummyGateway.from_config(config)})
        try:

            def transfer(number: int) -> str:
                payment = services.create_payment(
                    Money(1000 + number % 500, "EUR"), gateway="dummy", payment_method=TRANSFER
                )
                sale = services.sale(payment.id)
                assert sale.status is TransactionStatus.PROCESSING, sale
                reference = services.get_payment(payment.id).gateway_reference
                assert reference is not None
                settled = client.post(
                    f"{config['base_url']}/_sandbox/payments/{reference}/settle",
                    json={"outcome": "succeeded"},
                )
                settled.raise_for_status()
                return reference

            with ThreadPoolExecutor(SETUP_THREADS) as pool:
                references = set(pool.map(transfer, range(n)))
        finally:
            services.close()
    deadline = time.monotonic() + 60 + n / 50
    while True:
        bodies = {
            delivery.body
            for delivery in receiver.received
            if json.loads(delivery.body)["type"] == SETTLED_EVENT
        }
        if len(bodies) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    about = {json.loads(body)["data"]["payment"]["id"] for body in bodies}
    assert about == references, f"{len(bodies)} events for {len(references)} transfers"
    return sorted(bodies)


@frozen
class Server:
    """`paycore serve` as started: its port, process id and log file."""

    port: int
    pid: int
    log: Path

    def cpu(self) -> float:
        """Seconds of CPU the server process has used (Linux; 0.0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def served(database_url: str, config: dict[str, Any]) -> Iterator[Server]:
    """`paycore serve` on a free loopback port over the ledger."""
    directory = Path(tempfile.mkdtemp(prefix="paycore-bench-serve-"))
    settings = directory / "paycore.toml"
    gateway = "\n".join(f"{key} = {json.dumps(value)}" for key, value in config.items())
    settings.write_text(
        f"database_url = {json.dumps(database_url)}\n\n[gateways.dummy]\n{gateway}\n",
        encoding="utf-8",
    )
    log = directory / "serve.log"
    command = [sys.executable, "-m", "paycore", "--config", str(settings), "serve", "--port", "0"]
    with log.open("wb") as errors:
        process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=errors, text=True
        )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:([0-9]+)", first)
        if found is None:
            raise SystemExit(f"paycore serve did not start: {first!r}\n{log.read_text()}")
        yield Server(int(found[1]), process.pid, log)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


# -- the client --------------------------------------------------------------------------


@frozen
class Run:
    """One timed run of the client: its requests, wall time, its own and the server's
    CPU time, answers by status."""

    requests: int
    wall: float
    client_cpu: float
    statuses: dict[int, int]
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.wall


@frozen
class Result:
    health_before: Run
    webhooks: Run
    health_after: Run
    duplicates: int

    @property
    def health_rate(self) -> float:
        return (self.health_before.rate + self.health_after.rate) / 2

    @property
    def ratio(self) -> float:
        return self.webhooks.rate / self.health_rate


def measure(
    server: Server, config: dict[str, Any], bodies: list[bytes], concurrency: int
) -> Result:
    """/health, the events (with their duplicates), /health again: each by the client
    process, at ``concurrency``."""
    posts, duplicates = deliveries(bodies)
    port = server.port
    health = health_request(port)
    count = len(posts)
    warm = client_run(server, [health] * min(count, 2000), concurrency)
    assert warm.statuses == {200: warm.requests}, warm.statuses
    before = client_run(server, [health] * count, concurrency)
    secrets = config["webhook_secret"]
    signed = [webhook_request(port, body, sign(body, secrets)) for body in posts]
    webhooks = client_run(server, signed, concurrency)
    after = client_run(server, [health] * count, concurrency)
    return Result(before, webhooks, after, duplicates)


def deliveries(bodies: list[bytes]) -> tuple[list[bytes], int]:
    """The events in a random order, 10% of them again at a random later place (a
    provider's retry); and how many were repeated."""
    draw = random.Random(20261205)
    order = list(bodies)
    draw.shuffle(order)
    repeated = draw.sample(range(len(order)), round(len(order) * DUPLICATES))
    posts = list(order)
    for index in sorted(repeated, reverse=True):
        posts.insert(draw.randint(index + 1, len(posts)), order[index])
    return posts, len(repeated)


def health_request(port: int) -> bytes:
    return f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def webhook_request(port: int, body: bytes, signature: str) -> bytes:
    head = (
        f"POST /webhooks/dummy HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{SIGNATURE_HEADER}: {signature}\r\n\r\n"
    )
    return head.encode() + body


def client_run(server: Server, requests: list[bytes], concurrency: int) -> Run:
    """``requests`` sent by a client process of its own, ``concurrency`` at once."""
    context = multiprocessing.get_context("spawn")
    ready, go, answers = context.Event(), context.Event(), context.Queue()
    process = context.Process(
        target=_client, args=(server.port, requests, concurrency, ready, go, answers)
    )
    process.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the client process did not connect")
        cpu = server.cpu()
        go.set()
        run: Run = answers.get(timeout=600)
        run = evolve(run, server_cpu=server.cpu() - cpu)
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    return run


def _client(
    port: int, requests: list[bytes], concurrency: int, ready: Any, go: Any, answers: Any
) -> None:
    answers.put(asyncio.run(_drive(port, requests, concurrency, ready, go)))


async def _drive(port: int, requests: list[bytes], concurrency: int, ready: Any, go: Any) -> Run:
    """Connect ``concurrency`` times, then send every request, each connection taking the
    next one as soon as its answer is read (HTTP/1.1, kept alive)."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
    ready.set()
    await asyncio.to_thread(go.wait)
    upcoming = itertools.count()
    statuses: Counter[int] = Counter()

    async def work(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (index := next(upcoming)) < len(requests):
            writer.write(requests[index])
            head = await reader.readuntil(b"\r\n\r\n")
            statuses[int(head[9:12])] += 1
            length = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
            if length is not None:
                await reader.readexactly(int(length[1]))
        writer.close()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(work(reader, writer) for reader, writer in connections))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(len(requests), wall, cpu, dict(statuses))


# -- checks and the report ---------------------------------------------------------------


def verify(store: Store, bodies: list[bytes], result: Result, log: Path) -> list[str]:
    """What went wrong: answers, events stored and applied, duplicates recognised."""
    problems = []
    for name, run in (
        ("/health before", result.health_before),
        ("webhooks", result.webhooks),
        ("/health after", result.health_after),
    ):
        if run.statuses != {200: run.requests}:
            problems.append(f"{name} answered {run.statuses}")
    event_ids = {json.loads(body)["id"] for body in bodies}
    with store.reading() as session:
        rows = session.connection.execute(
            sa.select(webhook_events.c.event_id, webhook_events.c.disposition)
        ).all()
        settled = session.connection.execute(
            sa.select(sa.func.count()).where(transactions.c.status == "succeeded")
        ).scalar_one()
    stored = Counter(event_id for event_id, _ in rows)
    if set(stored) != event_ids or any(count != 1 for count in stored.values()):
        problems.append(f"{len(rows)} events stored for {len(event_ids)} distinct ones")
    dispositions = Counter(disposition for _, disposition in rows)
    if dispositions != {"applied": len(event_ids)}:
        problems.append(f"stored dispositions {dict(dispositions)}")
    if settled != len(event_ids):
        problems.append(f"{settled} of {len(event_ids)} transfers succeeded in the ledger")
    lines = log.read_text(encoding="utf-8", errors="replace")
    applied = len(re.findall(r"/webhooks/dummy 200 .*reason=applied", lines))
    recognised = len(re.findall(r"/webhooks/dummy 200 .*reason=duplicate", lines))
    if (applied, recognised) != (len(event_ids), result.duplicates):
        problems.append(
            f"the server applied {applied} and recognised {recognised} duplicates; "
            f"expected {len(event_ids)} and {result.duplicates}"
        )
    return problems


def report(n: int, concurrency: int, result: Result, problems: list[str], database: str) -> int:
    webhooks = result.webhooks
    if result.ratio < TARGET_RATIO:
        problems.append(f"events/s {result.ratio:.0%} of /health's")
    print(
        f"events:       {n} distinct + {result.duplicates} duplicates "
        f"({webhooks.requests} deliveries) at concurrency {concurrency}"
    )
    print(f"ledger:       {database}")
    print("server:       paycore serve (uvicorn), one process; client: one process, loopback")
    for name, run in (("/health", result.health_before), ("/health again", result.health_after)):
        print(f"{name + ':':<14}{run.rate:.0f} req/s ({run.requests} in {run.wall:.2f} s)")
    print(
        f"webhooks:     {webhooks.rate:.0f} events/s ({webhooks.requests} in {webhooks.wall:.2f} s)"
    )
    print(f"ratio:        {result.ratio:.1%} of /health (target >= {TARGET_RATIO:.0%})")
    print(
        f"client cpu:   {webhooks.client_cpu / webhooks.requests * 1e6:.0f} us per delivery, "
        f"{result.health_before.client_cpu / result.health_before.requests * 1e6:.0f} us "
        "per /health"
    )
    print(
        f"server cpu:   {webhooks.server_cpu / webhooks.requests * 1e3:.2f} ms per delivery, "
        f"{result.health_before.server_cpu / result.health_before.requests * 1e3:.2f} ms "
        "per /health"
    )
    print(
        "result:       "
        + ("every target met" if not problems else "MISSED: " + "; ".join(problems))
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
