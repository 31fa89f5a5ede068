"""An OMS batch of captures in-process: how close to the ideal wall time, and no duplicate.

Creates N orders, each paid by one authorized card payment (setup, not timed), against
the dummy sandbox served in a process of its own (`paycore sandbox serve`: the sandbox
does not share this process's interpreter lock), then sets the sandbox's latency to
50 ms and times `paycore.oms.jobs.run_batch` capturing every order at concurrency 64.

The ideal is N × latency / concurrency: every slot always busy waiting on the
provider, and nothing else taking time. Target: wall time at most 1.25 × the ideal,
every capture succeeded, and each payment captured exactly once at the sandbox (read
from its state). A missed target makes the script exit with status 1, so `make bench`
fails on a regression.

The baseline, measured in the same run: the transport alone. The same number of bare
requests (a GET of each payment at the sandbox, with the same latency) through the
same HTTP client, from a pool of as many threads, with no ledger, no OMS and no
driver. What the batch costs beyond it is paycore's own work; the interpreter's lock
lets one core do all of it, so the transport's share of that core bounds how close to
the ideal any in-process batch can come.

The ledger is a temporary SQLite file by default, or a schema of this run's own in the
PostgreSQL database of ``--database-url`` (created, migrated, dropped at the end).

    python bench/oms_batch.py [--n 10000] [--concurrency 64] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from _ledger import fresh_ledger, store_name
from _sandbox import sandbox_process
from attrs import frozen

from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.transport import ShardedTransport
from paycore.money import Money
from paycore.oms import Instruction, InstructionKind, InstructionOutcome, OrderPayments
from paycore.oms.jobs import BatchSummary, run_batch
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices

LATENCY = 0.05
TARGET_RATIO = 1.25
CARD = PaymentMethod(type="card", token="tok_visa")
SETUP_THREADS = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="captures (default 10000)")
    parser.add_argument("--concurrency", type=int, default=64, help="at once (default 64)")
    parser.add_argument("--database-url", help="PostgreSQL database (default: SQLite file)")
    args = parser.parse_args(argv)
    n, concurrency = args.n, args.concurrency
    with sandbox_process() as config, fresh_ledger(args.database_url) as (store, _):
        # One connection per slot, kept alive: a loopback server, never through a proxy.
        transport = ShardedTransport(connections=concurrency)
        with httpx.Client(trust_env=False, follow_redirects=False, transport=transport) as client:
            gateway = DummyGateway.from_config(config)
            driver = GatewayDriver(gateway, client=client)  # with the installed hooks
            services = PaymentTransactionServices(store, {"dummy": driver})
            try:
                orders, references = setup(services, n)
                set_latency(client, config["base_url"], LATENCY)
                baseline = bare_requests(client, config, references, concurrency)
                instructions = [capture(order, number) for number, order in enumerate(orders)]
                started, cpu = time.perf_counter(), time.process_time()
                summary = run_batch(OrderPayments(services), instructions, concurrency=concurrency)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                set_latency(client, config["base_url"], 0.0)
                captures = captures_at_sandbox(client, config["base_url"])
            finally:
                services.close()
    batch = Timing(wall, cpu)
    return report(n, concurrency, batch, baseline, summary, captures, store_name(args.database_url))


@frozen
class Timing:
    wall: float  # seconds
    cpu: float  # seconds of this process's CPU


def setup(services: PaymentTransactionServices, n: int) -> tuple[list[tuple[str, int]], list[str]]:
    """N orders, each with one authorized payment: (order id, amount), and the
    payments' references at the sandbox."""
    run = uuid.uuid4().hex[:8]

    def order(number: int) -> tuple[str, int, str]:
        order_id, amount = f"ord_{run}_{number}", 1000 + number % 500
        payment = services.create_payment(
            Money(amount, "EUR"), gateway="dummy", payment_method=CARD, owner=order_id
        )
        assert services.authorize(payment.id).succeeded
        reference = services.get_payment(payment.id).gateway_reference
        assert reference is not None
        return order_id, amount, reference

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        made = list(pool.map(order, range(n)))
    return [(order_id, amount) for order_id, amount, _ in made], [r for _, _, r in made]


def bare_requests(
    client: httpx.Client, config: dict[str, Any], references: list[str], concurrency: int
) -> Timing:
    """The baseline: a bare GET of each payment at the sandbox, ``concurrency`` at once."""
    headers = {"Authorization": f"Bearer {config['api_key']}"}
    urls = [f"{config['base_url']}/v1/payments/{reference}" for reference in references]

    def fetch(url: str) -> None:
        client.get(url, headers=headers).raise_for_status()

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(fetch, urls):
            pass
    return Timing(time.perf_counter() - started, time.process_time() - cpu)


def capture(order: tuple[str, int], number: int) -> Instruction:
    order_id, amount = order
    return Instruction(
        kind=InstructionKind.CAPTURE,
        order_id=order_id,
        reference=f"shp_{number}",
        amount=Money(amount, "EUR"),
    )


def set_latency(client: httpx.Client, base_url: str, seconds: float) -> None:
    response = client.post(f"{base_url}/_sandbox/faults", json={"latency": seconds})
    response.raise_for_status()


def captures_at_sandbox(client: httpx.Client, base_url: str) -> list[int]:
    """How many captures each payment at the sandbox has."""
    state = client.get(f"{base_url}/_sandbox/state", timeout=60).json()
    return [
        sum(1 for operation in payment["operations"] if operation["type"] == "capture")
        for payment in state["payments"]
    ]


def report(
    n: int,
    concurrency: int,
    batch: Timing,
    baseline: Timing,
    summary: BatchSummary,
    captures: list[int],
    database: str,
) -> int:
    ideal = n * LATENCY / concurrency
    wall, ratio = batch.wall, batch.wall / ideal
    duplicates = sum(count - 1 for count in captures if count > 1)
    missing = sum(1 for count in captures if count == 0)
    succeeded = summary.counts[InstructionOutcome.SUCCEEDED]
    problems = []
    if ratio > TARGET_RATIO:
        problems.append(f"wall time {ratio:.2f} x the ideal")
    if duplicates:
        problems.append(f"{duplicates} duplicate captures")
    if missing or succeeded != n:
        problems.append(f"{n - succeeded} captures not succeeded ({summary.line()})")
    print(f"captures:     {n} at concurrency {concurrency}, {LATENCY * 1000:.0f} ms latency")
    print(f"ledger:       {database}")
    print(f"wall time:    {wall:.2f} s ({n / wall:.0f} captures/s)")
    print(f"ideal:        {ideal:.2f} s (N x latency / concurrency)")
    print(f"ratio:        {ratio:.3f} (target <= {TARGET_RATIO})")
    per_capture, per_request = batch.cpu / n * 1000, baseline.cpu / n * 1000
    print(
        f"cpu:          {per_capture:.2f} ms per capture in this process (one interpreter "
        f"lock: at most {1000 / per_capture:.0f} captures/s)"
    )
    print(
        f"baseline:     {n} bare requests, same client and concurrency, no paycore: "
        f"{baseline.wall:.2f} s, ratio {baseline.wall / ideal:.3f}, "
        f"{per_request:.2f} ms CPU each"
    )
    print(
        f"paycore:      {per_capture - per_request:.2f} ms CPU per capture beyond the "
        f"transport (the target leaves {max(0.0, budget_ms(concurrency) - per_request):.2f})"
    )
    print(f"duplicates:   {duplicates} at the sandbox; {missing} payments not captured")
    print(f"summary:      {summary.line()}")
    print(
        "result:       "
        + ("every target met" if not problems else "MISSED: " + "; ".join(problems))
    )
    return 1 if problems else 0


def budget_ms(concurrency: int) -> float:
    """The CPU per capture, in ms, one core can spend and still meet the target."""
    return TARGET_RATIO * LATENCY / concurrency * 1000


if __name__ == "__main__":
    sys.exit(main())
