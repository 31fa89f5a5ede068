"""Batch jobs: many OMS instructions carried out concurrently, safe to run again (DESIGN §7).

A batch is a JSON Lines file (or any iterable) of instructions, one per line, in the
form `paycore.oms.model.Instruction.from_json` reads. `read_instructions` numbers the
lines and turns a bad one (not JSON, or not an instruction) into a rejected `Line`
saying why: it is reported and skipped, and never stops the batch. An object naming
a key twice is not read (which value would count?): it is rejected too.

`run_batch` carries the instructions out through `OrderPayments` on a bounded pool of
threads (``concurrency`` at once; the order payments and their services are shared,
being thread-safe). Threads, rather than `AsyncOrderPayments` on an event loop: the
work is bound by the interpreter's CPU time per instruction (the ledger's database
steps run in threads on either side), and the threads spend less of it. It reads
ahead only a few instructions per thread, so a file of millions runs in flat memory.
Two instructions about the same order are never carried out at once (they would find
its payments busy): they run one after the other, in the order of the file. Each
result is handed to a `Reporter` (a progress bar, plain lines) and counted in the
`BatchSummary`; an instruction that raises (a paycore error: refused, as a rule before
anything was sent; or anything unexpected) is counted ``failed`` with why, and the
batch goes on. Whatever it did before the error stays recorded under its keys: running
it again carries on from there.

Running a batch again is safe, whether the first run finished, crashed or was
interrupted: every instruction's effect on each payment carries its idempotency key
(``capture:shp_1``), so what was done is found and ``skipped``, what was sent and not
answered is resolved with the gateway, and only what was never done is sent.

The summary, and the `Reporter` interface every batch runner tells its progress to,
are in `paycore.oms.batch_summary` (and importable from here).

Stopping: set the ``stop`` event (the ``paycore oms run`` command sets it on Ctrl-C)
and no further instruction is started; those in flight are given ``grace`` seconds
to finish, and the summary says the batch was interrupted.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sized
from typing import Any

from attrs import frozen

from paycore.errors import InvalidRequest, PaycoreError
from paycore.gateways.json_codec import decode_json
from paycore.gateways.scrub import Scrubber
from paycore.oms.batch_summary import (
    OUTCOME_ORDER,
    BatchSummary,
    BatchTally,
    NotDone,
    Reporter,
    SilentReporter,
    clipped,
)
from paycore.oms.model import Instruction, InstructionOutcome, InstructionResult
from paycore.oms.order_payments import OrderPayments
from paycore.transactions.orchestration import one_line

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACE",
    "OUTCOME_ORDER",
    "BatchSummary",
    "BatchTally",
    "Line",
    "NotDone",
    "Reporter",
    "read_instructions",
    "run_batch",
]

log = logging.getLogger("paycore.oms.jobs")

DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 1024
# Seconds the instructions in flight are given to finish once the batch is stopped.
DEFAULT_GRACE = 30.0
# Instructions read ahead per thread: enough to keep every thread busy while some
# wait behind an earlier instruction of their order, few enough to keep memory flat.
READ_AHEAD = 4
# How much of a bad line a rejection quotes, and how long a reason may be.
_QUOTE = 40
_REASON = 300
# A bad line is the merchant's text: a card number in it (a key, a value an error
# quotes) is masked before anything reports it, and before it is cut, so a cut never
# leaves a number too short to be recognised.
_MASK_CARDS = Scrubber(())


@frozen(kw_only=True)
class Line:
    """One numbered line of a batch: its ``instruction``, or why it was rejected."""

    number: int
    instruction: Instruction | None = None
    reason: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.instruction is None) == (self.reason is None):
            raise InvalidRequest("a line has an instruction or a reason for rejecting it")

    @property
    def rejected(self) -> bool:
        return self.instruction is None


def read_instructions(lines: Iterable[str | bytes]) -> Iterator[Line]:
    """Number ``lines`` (text, or UTF-8 bytes; the first is 1) and read each; blank
    lines are skipped.

    A line that is not JSON, or not an instruction, becomes a rejected `Line` whose
    reason is the error's message (the line itself is quoted only briefly: it may be
    long, and it is not ours to echo), card numbers and security codes masked.
    """
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield Line(number=number, reason=f"not UTF-8 text (byte {error.start + 1})")
                continue
        else:
            text = raw
        if not text.strip():
            continue
        try:
            data = decode_json(text)
        except ValueError as error:
            yield Line(number=number, reason=_not_json(text, error))
            continue
        try:
            yield Line(number=number, instruction=Instruction.from_json(data))
        except PaycoreError as error:
            yield Line(number=number, reason=clipped(_MASK_CARDS.text(str(error)), _REASON))


def _not_json(text: str, error: ValueError) -> str:
    quoted = _MASK_CARDS.text(text.strip())
    if len(quoted) > _QUOTE:
        quoted = quoted[:_QUOTE] + "…"
    where = getattr(error, "msg", None) or "invalid"
    return f"not JSON ({where}): {quoted!r}"


# -- the runner --------------------------------------------------------------------------


def run_batch(
    order_payments: OrderPayments,
    entries: Iterable[Line | Instruction],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    total: int | None = None,
    stop: threading.Event | None = None,
    grace: float = DEFAULT_GRACE,
) -> BatchSummary:
    """Carry out ``entries`` (`Line`\\ s from `read_instructions`, or instructions,
    numbered from 1) with ``concurrency`` at once, and summarise; see the module.

    With ``dry_run`` each instruction is planned (`OrderPayments.plan`): nothing is
    sent or written. ``total`` (the number of entries, when known) feeds the progress
    bar; a sized ``entries`` gives its own. Setting ``stop`` ends the batch early.
    """
    if not isinstance(order_payments, OrderPayments):
        raise InvalidRequest(f"a batch runs on OrderPayments, not {type(order_payments).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise InvalidRequest("concurrency must be an integer")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidRequest(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise InvalidRequest("grace must be a number of seconds, zero or more")
    if total is None and isinstance(entries, Sized):
        total = len(entries)
    batch = _Batch(
        order_payments,
        concurrency=concurrency,
        dry_run=dry_run,
        reporter=reporter or SilentReporter(),
        stop=stop or threading.Event(),
        grace=float(grace),
    )
    return batch.run(entries, total)


# What the threads tell the batch's own thread, on one queue.
_END = "end"  # the reader has read every entry: ("end", count)
_ENTRY = "entry"  # ("entry", Line)
_RESULT = "result"  # ("result", number, result)
_READ_FAILED = "read failed"  # ("read failed", error): the input itself broke


class _Batch:
    """One run: a reader thread, ``concurrency`` worker threads, and the calling thread
    deciding what runs next. All bookkeeping is done by the calling thread alone."""

    def __init__(
        self,
        order_payments: OrderPayments,
        *,
        concurrency: int,
        dry_run: bool,
        reporter: Reporter,
        stop: threading.Event,
        grace: float,
    ) -> None:
        self.order_payments = order_payments
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.reporter = reporter
        self.stop = stop
        self.grace = grace
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.work: queue.SimpleQueue[tuple[int, Instruction] | None] = queue.SimpleQueue()
        # The reader takes a slot per entry; an entry gives it back once settled.
        self.slots = threading.Semaphore(concurrency * READ_AHEAD)
        self.tally = BatchTally(dry_run=dry_run)
        self.ready: deque[tuple[int, Instruction]] = deque()
        self.waiting: dict[str, deque[tuple[int, Instruction]]] = {}  # by order, in order
        self.busy: set[str] = set()  # orders with an instruction ready or in flight
        self.in_flight = 0
        self.unstarted = 0
        self.halt = threading.Event()  # the batch is over: the reader stops

    def run(self, entries: Iterable[Line | Instruction], total: int | None) -> BatchSummary:
        started = time.monotonic()
        self.reporter.start(total=total, dry_run=self.dry_run)
        reader = threading.Thread(
            target=self._read, args=(entries,), daemon=True, name="paycore-batch-reader"
        )
        # Daemon threads: one stuck past the grace period never holds up the exit.
        workers = [
            threading.Thread(target=self._work, daemon=True, name=f"paycore-batch-{n}")
            for n in range(self.concurrency)
        ]
        for thread in (reader, *workers):
            thread.start()
        read_error: BaseException | None = None
        try:
            read_error = self._dispatch()
        finally:
            self.halt.set()
            self.slots.release()  # the reader, waiting for a slot, sees the halt
            self.unstarted += len(self.ready) + sum(len(w) for w in self.waiting.values())
            self.ready.clear()
            self.waiting.clear()
            if self.in_flight:
                self.reporter.stopping(self.in_flight)
                self._drain(time.monotonic() + self.grace)
            for _ in workers:
                self.work.put(None)
        summary = self.tally.summary(
            time.monotonic() - started,
            interrupted=self.stop.is_set() or read_error is not None,
            unstarted=self.unstarted,
            unfinished=self.in_flight,
        )
        self.reporter.finish(summary)
        if read_error is not None:
            raise read_error
        return summary

    def _dispatch(self) -> BaseException | None:
        """Take events until every entry is read and carried out, or the batch stops."""
        reading = True
        while reading or self.in_flight or self.ready:
            if self.stop.is_set():
                return None
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            kind = event[0]
            if kind == _ENTRY:
                self._take(event[1])
            elif kind == _RESULT:
                self._settle(event[1], event[2])
            elif kind == _END:
                reading = False
            else:
                return event[1]  # type: ignore[no-any-return]
            while self.ready and self.in_flight < self.concurrency and not self.stop.is_set():
                self.work.put(self.ready.popleft())
                self.in_flight += 1
        return None

    def _take(self, line: Line) -> None:
        if line.instruction is None:
            self.tally.reject(line)
            self.reporter.rejected(line)
            self.slots.release()
            return
        order = line.instruction.order_id
        if order in self.busy:
            self.waiting.setdefault(order, deque()).append((line.number, line.instruction))
        else:
            self.busy.add(order)
            self.ready.append((line.number, line.instruction))

    def _settle(self, number: int, result: InstructionResult) -> None:
        self.in_flight -= 1
        self.slots.release()
        self.tally.add(number, result)
        self.reporter.result(number, result)
        order = result.instruction.order_id
        behind = self.waiting.get(order)
        if behind:
            self.ready.append(behind.popleft())
            if not behind:
                del self.waiting[order]
        else:
            self.busy.discard(order)

    def _drain(self, deadline: float) -> None:
        """Collect the results of the instructions in flight, until ``deadline``."""
        while self.in_flight:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                event = self.events.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if event[0] == _RESULT:
                self._settle(event[1], event[2])
            elif event[0] == _ENTRY and event[1].instruction is None:
                self._take(event[1])  # a rejection read before the stop is still told
            elif event[0] == _ENTRY:
                self.unstarted += 1

    def _read(self, entries: Iterable[Line | Instruction]) -> None:
        number = 0
        try:
            for entry in entries:
                self.slots.acquire()
                if self.halt.is_set():
                    return
                if isinstance(entry, Line):
                    number = entry.number
                else:
                    number += 1
                    entry = _line(number, entry)
                self.events.put((_ENTRY, entry))
        except Exception as error:  # the input broke (a file unreadable midway)
            self.events.put((_READ_FAILED, error))
            return
        self.events.put((_END, number))

    def _work(self) -> None:
        while (item := self.work.get()) is not None:
            number, instruction = item
            try:
                result = self._carry_out(instruction)
            except BaseException as error:  # the batch's thread must hear back, always
                result = _failed(instruction, one_line(error))
                self.events.put((_RESULT, number, result))
                raise
            self.events.put((_RESULT, number, result))

    def _carry_out(self, instruction: Instruction) -> InstructionResult:
        try:
            if self.dry_run:
                return self.order_payments.plan(instruction)
            return self.order_payments.carry_out(instruction)
        except PaycoreError as error:
            # Refused before anything was sent: safe to run again once put right.
            return _failed(instruction, str(error))
        except Exception as error:  # one instruction's bug must not stop the batch
            log.exception(
                "instruction %s of order %s failed", instruction.key, instruction.order_id
            )
            return _failed(instruction, one_line(error))


def _failed(instruction: Instruction, message: str) -> InstructionResult:
    return InstructionResult(
        instruction=instruction,
        outcome=InstructionOutcome.FAILED,
        message=clipped(message, _REASON),
    )


def _line(number: int, entry: Any) -> Line:
    if isinstance(entry, Instruction):
        return Line(number=number, instruction=entry)
    return Line(number=number, reason=f"not an instruction: {type(entry).__name__}")
