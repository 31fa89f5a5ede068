"""Batch jobs over the dummy sandbox, on every database (``store`` is parametrized): a
thousand instructions each done once at the provider, bad lines reported by number, a
dry run sending nothing, and a batch stopped, interrupted (SIGINT) or killed (SIGKILL)
halfway then run again: every capture done exactly once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from paycore.errors import InvalidRequest
from paycore.gateways.attempts import RetryPolicy
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import Instruction, InstructionOutcome, InstructionResult, OrderPayments
from paycore.oms.jobs import READ_AHEAD, BatchSummary, Line, read_instructions, run_batch
from paycore.oms.progress import BarReporter, LineReporter, reporter_for
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod, TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.settings_files import write_settings

CARD = PaymentMethod(type="card", token="tok_visa")
SUCCEEDED, SKIPPED = InstructionOutcome.SUCCEEDED, InstructionOutcome.SKIPPED
FAILED, UNKNOWN = InstructionOutcome.FAILED, InstructionOutcome.UNKNOWN


def eur(minor_units: int) -> Money:
    return Money(minor_units, "EUR")


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> Iterator[PaymentTransactionServices]:
    services = PaymentTransactionServices(store, {"dummy": paycore_dummy_gateway}, hooks=None)
    yield services
    services.close()


@pytest.fixture
def oms(services: PaymentTransactionServices) -> OrderPayments:
    return OrderPayments(services)


def make_orders(
    services: PaymentTransactionServices, count: int, amount: int = 1000, prefix: str = "ord"
) -> list[str]:
    """``count`` orders, each paid by one authorized card payment of ``amount``."""

    def make(number: int) -> str:
        order_id = f"{prefix}-{number}"
        payment = services.create_payment(
            eur(amount), gateway="dummy", payment_method=CARD, owner=order_id
        )
        assert services.authorize(payment.id).succeeded
        return order_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(make, range(count)))


def capture(order_id: str, reference: str, amount: int = 1000) -> Instruction:
    return Instruction(kind="capture", order_id=order_id, reference=reference, amount=eur(amount))


def operations(sandbox: DummySandbox) -> dict[str, list[tuple[str, str]]]:
    """Each payment's operations at the provider after its authorization: (type, reference)."""
    return {
        payment["id"]: [(op["type"], op["reference"]) for op in payment["operations"][1:]]
        for payment in sandbox.snapshot()["payments"]
    }


def captures_per_payment(sandbox: DummySandbox) -> Counter[str]:
    counts: Counter[str] = Counter()
    for payment_id, done in operations(sandbox).items():
        counts[payment_id] += sum(1 for kind, _ in done if kind == "capture")
    return counts


class Recorder:
    """A reporter keeping what it was told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.results: list[tuple[int, InstructionResult]] = []
        self.rejections: list[Line] = []
        self.summary: BatchSummary | None = None
        self.on_result: Callable[[int], None] = lambda count: None

    def start(self, *, total: int | None, dry_run: bool) -> None:
        self.calls.append(("start", (total, dry_run)))

    def result(self, number: int, result: InstructionResult) -> None:
        self.results.append((number, result))
        self.on_result(len(self.results))

    def rejected(self, line: Line) -> None:
        self.rejections.append(line)

    def stopping(self, in_flight: int) -> None:
        self.calls.append(("stopping", in_flight))

    def finish(self, summary: BatchSummary) -> None:
        self.summary = summary


# -- reading ---------------------------------------------------------------------------


def test_lines_are_numbered_blank_ones_skipped_and_bad_ones_rejected_with_why() -> None:
    long_garbage = "x" * 5000
    lines = [
        json.dumps(capture("ord-1", "shp-1").as_json()),
        "",
        "   ",
        "{not json",
        long_garbage,
        '["capture"]',
        '{"op": "capture", "order_id": "ord-1", "fulfillment_id": "shp-2"}',
        '{"op": "capture", "order_id": "ord-1", "fulfillment_id": "s", "amount": 10.5, '
        '"currency": "EUR"}',
        '{"op": "ship", "order_id": "ord-1"}',
        '{"op": "cancel", "order_id": "ord-2", "colour": "red"}',
        b'{"op": "cancel", "order_id": "ord-\xff"}',
        b'{"op": "cancel", "order_id": "ord-3"}\n',
    ]

    read = list(read_instructions(lines))

    assert [line.number for line in read] == [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert read[0].instruction == capture("ord-1", "shp-1")
    assert read[-1].instruction == Instruction(kind="cancel", order_id="ord-3")
    reasons = {line.number: line.reason for line in read if line.rejected}
    assert reasons[4] is not None and reasons[4].startswith("not JSON")
    assert reasons[5] is not None and len(reasons[5]) < 120  # never the whole line
    assert reasons[6] == "an instruction is a JSON object, not list"
    assert reasons[7] == "a capture needs an amount"
    assert reasons[8] is not None and "integer of minor units" in reasons[8]
    assert reasons[9] is not None and "op" in reasons[9]
    assert reasons[10] == "unknown field(s): colour"
    assert reasons[11] == "not UTF-8 text (byte 35)"


def test_a_line_has_an_instruction_or_a_reason() -> None:
    with pytest.raises(InvalidRequest):
        Line(number=1)
    with pytest.raises(InvalidRequest):
        Line(number=1, instruction=capture("o", "s"), reason="both")


# -- running ---------------------------------------------------------------------------


def test_a_thousand_instructions_are_each_done_once_at_the_provider_and_skipped_when_run_again(
    services: PaymentTransactionServices, oms: OrderPayments, paycore_dummy_sandbox: DummySandbox
) -> None:
    # 250 orders of 10.00, each with four instructions: two shipments, a return, and a
    # cancel of the rest; those of one order run one after the other, in this order.
    orders = make_orders(services, 250)
    batch = []
    for order in orders:
        batch += [
            capture(order, f"{order}-a", 400),
            capture(order, f"{order}-b", 300),
            Instruction(kind="refund", order_id=order, reference=f"{order}-r", amount=eur(100)),
            Instruction(kind="cancel", order_id=order, reference=f"{order}-c"),
        ]
    recorder = Recorder()

    summary = run_batch(oms, batch, concurrency=16, reporter=recorder)

    assert summary.counts[SUCCEEDED] == 1000, summary.not_done[:3]
    assert summary.ok and not summary.rejected and summary.wall_seconds > 0
    assert recorder.calls[0] == ("start", (1000, False))
    assert sorted(number for number, _ in recorder.results) == list(range(1, 1001))
    assert recorder.summary == summary
    done = operations(paycore_dummy_sandbox)
    ours = {p.gateway_reference: p.id for order in orders for p in services.payments_of(order)}
    assert len(done) == 250
    for reference, ops in done.items():
        # Each instruction once, in the order of the file, with paycore's transaction id.
        assert [kind for kind, _ in ops] == ["capture", "capture", "refund", "void"], reference
        transactions = services.list_transactions(ours[reference])
        assert [ref for _, ref in ops] == [t.id for t in transactions[1:]]
    for order in orders:
        (payment,) = services.payments_of(order)
        assert payment.totals() == {
            "authorized": 1000,
            "captured": 700,
            "refunded": 100,
            "capturable": 0,
        }

    again = run_batch(oms, batch, concurrency=16)

    assert again.counts[SKIPPED] == 1000 and again.ok
    assert operations(paycore_dummy_sandbox) == done


def test_bad_lines_are_reported_with_their_numbers_and_the_batch_goes_on(
    services: PaymentTransactionServices, oms: OrderPayments, paycore_dummy_sandbox: DummySandbox
) -> None:
    orders = make_orders(services, 3)
    text = "\n".join(
        [
            json.dumps(capture(orders[0], "shp-0").as_json()),
            "{broken",
            json.dumps({"op": "refund", "order_id": orders[1], "return_id": "r"}),
            "",
            json.dumps(capture(orders[1], "shp-1").as_json()),
            json.dumps(capture("no-such-order", "shp-x").as_json()),
            json.dumps(capture(orders[2], "shp-2", amount=5000).as_json()),
        ]
    )
    recorder = Recorder()

    summary = run_batch(oms, read_instructions(text.splitlines()), reporter=recorder)

    assert [(line.number, line.reason) for line in summary.rejected] == [
        (2, summary.rejected[0].reason),
        (3, "a refund needs an amount"),
    ]
    assert summary.rejected[0].reason is not None
    assert summary.rejected[0].reason.startswith("not JSON")
    assert [line.number for line in recorder.rejections] == [2, 3]
    assert summary.counts[SUCCEEDED] == 2 and summary.counts[FAILED] == 2
    failed = {item.number: item for item in summary.not_done}
    assert set(failed) == {6, 7}
    assert failed[6].message is not None and "no-such-order" in failed[6].message
    assert failed[7].message is not None and "cannot capture 50.00 EUR" in failed[7].message
    assert not summary.ok
    assert sum(captures_per_payment(paycore_dummy_sandbox).values()) == 2


def test_a_dry_run_sends_and_writes_nothing(
    services: PaymentTransactionServices, oms: OrderPayments, paycore_dummy_sandbox: DummySandbox
) -> None:
    orders = make_orders(services, 4)
    batch = [capture(order, f"shp-{order}") for order in orders]
    run_batch(oms, batch[:1])
    requests_before = len(paycore_dummy_sandbox.requests_received)
    transactions_before = [
        services.list_transactions(p.id) for o in orders for p in services.payments_of(o)
    ]

    summary = run_batch(oms, batch, dry_run=True)

    assert summary.dry_run
    assert summary.counts[SKIPPED] == 1 and summary.counts[SUCCEEDED] == 3
    assert "3 to do" in summary.line() and "1 done before" in summary.line()
    assert len(paycore_dummy_sandbox.requests_received) == requests_before
    assert [
        services.list_transactions(p.id) for o in orders for p in services.payments_of(o)
    ] == transactions_before


def test_an_outcome_the_provider_did_not_give_is_listed_for_reconciliation(
    store: Store, paycore_dummy_gateway: DummyGateway, paycore_dummy_sandbox: DummySandbox
) -> None:
    driver = GatewayDriver(paycore_dummy_gateway, hooks=None, retry=RetryPolicy(max_attempts=1))
    with PaymentTransactionServices(store, {"dummy": driver}, hooks=None) as services:
        orders = make_orders(services, 3)
        paycore_dummy_sandbox.queue_faults("drop")  # the first capture's answer is lost

        summary = run_batch(
            OrderPayments(services), [capture(o, f"s-{o}") for o in orders], concurrency=1
        )

        (unknown,) = summary.unknown
        assert unknown.number == 1 and unknown.instruction.order_id == orders[0]
        (transaction_id,) = unknown.transaction_ids
        assert services.get_transaction(transaction_id).status is TransactionStatus.UNKNOWN
        assert summary.counts[SUCCEEDED] == 2 and not summary.ok


def test_an_unexpected_error_fails_each_instruction_with_its_type_and_never_stops_the_batch(
    tmp_path: Path, paycore_dummy_gateway: DummyGateway
) -> None:
    # A ledger whose tables were never created: every instruction breaks on the database.
    bare = Store.connect(f"sqlite:///{tmp_path / 'bare.db'}")
    with PaymentTransactionServices(bare, {"dummy": paycore_dummy_gateway}, hooks=None) as services:
        summary = run_batch(
            OrderPayments(services), [capture(f"o-{n}", f"s-{n}") for n in range(5)], concurrency=2
        )

    assert summary.counts[FAILED] == 5
    assert sorted(item.number for item in summary.not_done) == [1, 2, 3, 4, 5]
    assert all(
        item.message and item.message.startswith("OperationalError") for item in summary.not_done
    )


def test_instructions_are_read_a_few_ahead_so_memory_stays_flat(
    services: PaymentTransactionServices, oms: OrderPayments
) -> None:
    orders = make_orders(services, 40)
    read = 0
    furthest_ahead = 0
    recorder = Recorder()

    def batch() -> Iterator[Instruction]:
        nonlocal read, furthest_ahead
        for order in orders:
            furthest_ahead = max(furthest_ahead, read - len(recorder.results))
            read += 1
            yield capture(order, f"s-{order}")

    summary = run_batch(oms, batch(), concurrency=2, reporter=recorder)

    assert summary.counts[SUCCEEDED] == 40
    assert recorder.calls[0] == ("start", (None, False))
    assert furthest_ahead <= 2 * READ_AHEAD + 1


def test_a_stopped_batch_starts_nothing_more_and_running_it_again_finishes_it(
    services: PaymentTransactionServices, oms: OrderPayments, paycore_dummy_sandbox: DummySandbox
) -> None:
    orders = make_orders(services, 60)
    batch = [capture(order, f"s-{order}") for order in orders]
    stop = threading.Event()
    recorder = Recorder()
    recorder.on_result = lambda count: stop.set() if count == 10 else None

    first = run_batch(oms, batch, concurrency=4, reporter=recorder, stop=stop)

    assert first.interrupted and not first.ok
    assert first.counts[SUCCEEDED] >= 10 and first.unfinished == 0
    assert first.counts[SUCCEEDED] + first.unstarted < 60  # the rest was not even read
    assert "interrupted" in first.line()
    assert sum(captures_per_payment(paycore_dummy_sandbox).values()) == first.counts[SUCCEEDED]

    second = run_batch(oms, batch, concurrency=4)

    assert second.counts[SKIPPED] == first.counts[SUCCEEDED]
    assert second.counts[SUCCEEDED] == 60 - first.counts[SUCCEEDED] and second.ok
    assert set(captures_per_payment(paycore_dummy_sandbox).values()) == {1}


def test_a_batch_takes_order_payments_and_a_sensible_concurrency(oms: OrderPayments) -> None:
    for concurrency in (0, -1, 5000, True, 2.5):
        with pytest.raises(InvalidRequest, match="concurrency"):
            run_batch(oms, [], concurrency=concurrency)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="OrderPayments"):
        run_batch(object(), [])  # type: ignore[arg-type]
    assert run_batch(oms, []).carried_out == 0


def test_an_input_that_breaks_midway_ends_the_batch_after_what_was_read_is_done(
    services: PaymentTransactionServices, oms: OrderPayments
) -> None:
    orders = make_orders(services, 3)
    recorder = Recorder()

    def batch() -> Iterator[Instruction]:
        yield from (capture(order, f"s-{order}") for order in orders)
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        run_batch(oms, batch(), reporter=recorder)

    assert recorder.summary is not None and recorder.summary.interrupted
    assert recorder.summary.counts[SUCCEEDED] == 3


# -- progress ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_tell_each_tenth_and_by_time_when_the_size_is_unknown() -> None:
    out = io.StringIO()
    clock = Clock()
    reporter = LineReporter(Console(file=out, width=200), interval=5.0, clock=clock)
    done = InstructionResult(instruction=capture("o", "s"), outcome=SUCCEEDED)

    reporter.start(total=20, dry_run=False)
    for number in range(1, 21):
        reporter.result(number, done)
    reporter.start(total=None, dry_run=True)
    for number in range(1, 4):
        clock.now += 3.0
        reporter.result(number, done)
    reporter.rejected(Line(number=4, reason="not JSON"))

    lines = out.getvalue().splitlines()
    assert lines[0] == "batch of 20 lines: started"
    assert lines[1:11] == [
        f"{2 * n}/20 ({10 * n}%) in 0.0 s: {2 * n} succeeded" for n in range(1, 11)
    ]
    assert lines[11:] == [
        "batch: dry run: nothing is sent or written",
        "2 in 6.0 s: 2 succeeded",  # five seconds after the last line
        "line 4: rejected: not JSON",
    ]


def test_a_terminal_gets_a_progress_bar_then_the_summary(
    services: PaymentTransactionServices, oms: OrderPayments
) -> None:
    orders = make_orders(services, 3)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    reporter = reporter_for(console)
    assert isinstance(reporter, BarReporter)
    batch = [capture(order, f"s-{order}") for order in orders] + [capture("nowhere", "s")]

    summary = run_batch(oms, batch, reporter=reporter)

    text = out.getvalue()
    assert "batch" in text and "4/4" in text and "3 succeeded, 1 failed" in text
    assert "line 4: capture:s of order nowhere: failed: " in text
    assert text.rstrip().endswith(summary.line())
    assert isinstance(reporter_for(Console(file=io.StringIO())), LineReporter)


# -- interrupted and killed in another process -------------------------------------------


SIGNALLED = 120  # captures in the batch a process is signalled halfway through
LATENCY = 0.05  # the sandbox's latency then: "halfway" lasts long enough to hit


@pytest.fixture
def settings_file(
    tmp_path: Path,
    database_url: str,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
) -> Path:
    config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    return write_settings(tmp_path / "paycore.toml", database_url, config)


def run_until_halfway(
    settings_file: Path, batch_file: Path, sig: signal.Signals
) -> tuple[int, str]:
    """``paycore oms run`` in a process of its own, sent ``sig`` once it has reported half
    the batch done; its exit status and output."""
    command = [
        sys.executable,
        "-m",
        "paycore",
        "--config",
        str(settings_file),
        "oms",
        "run",
        str(batch_file),
        "--concurrency",
        "4",
    ]
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own command
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},  # progress lines reach the pipe as printed
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            done = line.split(" ", 1)[0]
            if "/" in done and int(done.split("/")[0]) * 2 >= SIGNALLED:
                process.send_signal(sig)
                break
        rest, _ = process.communicate(timeout=60)
        output.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, "".join(output)


def write_batch(path: Path, batch: list[Instruction]) -> Path:
    path.write_text("".join(json.dumps(i.as_json()) + "\n" for i in batch), encoding="utf-8")
    return path


def captures_recorded(services: PaymentTransactionServices, orders: list[str]) -> Counter[str]:
    """The statuses of the orders' capture transactions in the ledger."""
    statuses: Counter[str] = Counter()
    for order in orders:
        for payment in services.payments_of(order):
            for transaction in services.list_transactions(payment.id):
                if transaction.type == "capture":
                    statuses[transaction.status.value] += 1
    return statuses


def test_an_interrupted_batch_finishes_what_is_in_flight_and_running_it_again_does_the_rest_once(
    services: PaymentTransactionServices,
    oms: OrderPayments,
    paycore_dummy_sandbox: DummySandbox,
    settings_file: Path,
    tmp_path: Path,
) -> None:
    orders = make_orders(services, SIGNALLED)
    batch = [capture(order, f"s-{order}") for order in orders]
    paycore_dummy_sandbox.set_faults(FaultPlan(latency=LATENCY))

    status, output = run_until_halfway(
        settings_file, write_batch(tmp_path / "b.jsonl", batch), signal.SIGINT
    )

    assert status == 130, output
    assert "interrupted" in output and "stopping" in output
    recorded = captures_recorded(services, orders)
    assert set(recorded) == {"succeeded"}, recorded  # nothing left in flight
    done = recorded["succeeded"]
    assert SIGNALLED // 2 <= done < SIGNALLED
    assert sum(captures_per_payment(paycore_dummy_sandbox).values()) == done

    paycore_dummy_sandbox.set_faults(FaultPlan())
    again = run_batch(oms, read_instructions((tmp_path / "b.jsonl").read_text().splitlines()))

    assert again.counts[SKIPPED] == done and again.counts[SUCCEEDED] == SIGNALLED - done
    assert again.ok
    assert list(captures_per_payment(paycore_dummy_sandbox).values()) == [1] * SIGNALLED


def test_a_killed_batch_run_again_later_does_every_capture_exactly_once(
    store: Store,
    services: PaymentTransactionServices,
    paycore_dummy_gateway: DummyGateway,
    paycore_dummy_sandbox: DummySandbox,
    settings_file: Path,
    tmp_path: Path,
) -> None:
    orders = make_orders(services, SIGNALLED)
    batch = [capture(order, f"s-{order}") for order in orders]
    paycore_dummy_sandbox.set_faults(FaultPlan(latency=LATENCY))

    status, output = run_until_halfway(
        settings_file, write_batch(tmp_path / "b.jsonl", batch), signal.SIGKILL
    )

    assert status == -signal.SIGKILL, output
    recorded = captures_recorded(services, orders)
    done = recorded["succeeded"]
    assert SIGNALLED // 2 <= done < SIGNALLED, recorded
    assert all(count <= 1 for count in captures_per_payment(paycore_dummy_sandbox).values())

    # Run again once the killed process's sends are surely over (its transactions still
    # pending are asked about, not sent again): a clock ten minutes on.
    paycore_dummy_sandbox.set_faults(FaultPlan())
    later = timedelta(minutes=10)
    with PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway}, hooks=None, clock=lambda: datetime.now(UTC) + later
    ) as services_later:
        again = run_batch(OrderPayments(services_later), batch)
        # A capture written ahead and killed before it was sent is found never to have
        # arrived (failed: safe to send again); the next run sends it.
        if again.counts[FAILED]:
            last = run_batch(OrderPayments(services_later), batch)
            assert last.counts[SUCCEEDED] == again.counts[FAILED]

    assert again.counts[SKIPPED] == done
    assert again.counts[UNKNOWN] == 0
    assert again.counts[SKIPPED] + again.counts[SUCCEEDED] + again.counts[FAILED] == SIGNALLED
    assert list(captures_per_payment(paycore_dummy_sandbox).values()) == [1] * SIGNALLED
