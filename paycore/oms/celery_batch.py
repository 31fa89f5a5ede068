"""A batch of OMS instructions on Celery workers: enqueue them, wait, summarise.

`paycore.oms.celery.run_batch_on_celery` runs a `CeleryBatch`. It keeps the in-process
runner's contract (`paycore.oms.jobs.run_batch`) and reuses its pieces: the numbered
`Line`\\ s of `read_instructions`, the `Reporter` (progress bar or plain lines), the
`BatchTally` and its `BatchSummary`. Rejected lines are reported and never enqueued.
Instructions about one order are enqueued one after the other, each once the one
before has a result (at once they would find the order's payments busy). At most
``concurrency_limit`` instructions are enqueued and unfinished at a time, and only a
bounded number more are read ahead, so a file of any size runs in flat memory.

Results are read from the result backend as they land, by polling the unfinished
tasks' keys (one ``MGET`` a round, sooner while results keep coming).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any, cast

from attrs import evolve

from paycore.errors import InvalidRequest, PaycoreError
from paycore.money import Money
from paycore.oms.batch_summary import SilentReporter, clipped
from paycore.oms.celery_tasks import CARRY_OUT
from paycore.oms.jobs import DEFAULT_GRACE, BatchSummary, BatchTally, Line, Reporter
from paycore.oms.model import Instruction, InstructionOutcome, InstructionResult

__all__ = ["MAX_IN_FLIGHT", "CeleryBatch", "result_from_json"]

# Instructions enqueued and unfinished at once, at most (and the default).
MAX_IN_FLIGHT = 10_000
# Unfinished tasks whose results one MGET asks for.
_POLL_CHUNK = 1_000
# Seconds between polls for results: the shortest, and the longest when none come.
_POLL_MIN = 0.02
_POLL_MAX = 0.25
_MESSAGE = 300
_FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


class CeleryBatch:
    """One run of `paycore.oms.celery.run_batch_on_celery`; used from one thread."""

    def __init__(
        self,
        app: Any,
        *,
        reporter: Reporter | None = None,
        concurrency_limit: int | None = None,
        timeout: float | None = None,
        stop: threading.Event | None = None,
        grace: float | None = None,
    ) -> None:
        limit = MAX_IN_FLIGHT if concurrency_limit is None else concurrency_limit
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequest("concurrency_limit must be an integer")
        if not 1 <= limit <= MAX_IN_FLIGHT:
            raise InvalidRequest(f"concurrency_limit must be between 1 and {MAX_IN_FLIGHT}")
        for name, value in (("timeout", timeout), ("grace", grace)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise InvalidRequest(f"{name} must be a number of seconds, zero or more")
        self.app = app
        self.reporter = reporter or SilentReporter()
        self.limit = limit
        self.timeout = timeout
        self.stop = stop or threading.Event()
        self.grace = DEFAULT_GRACE if grace is None else float(grace)
        self.tally = BatchTally()
        self.in_flight: dict[str, tuple[int, Instruction]] = {}  # by task id
        self.ready: deque[tuple[int, Instruction]] = deque()
        self.waiting: dict[str, deque[tuple[int, Instruction]]] = {}  # by order, in order
        self.held = 0  # instructions in ``waiting``
        self.busy: set[str] = set()  # orders with an instruction ready or in flight
        self.interrupted = False
        self._pause = _POLL_MIN

    def run(self, entries: Iterable[Line | Instruction], total: int | None = None) -> BatchSummary:
        """Enqueue ``entries``, wait for every result, and summarise (see the module)."""
        started = time.monotonic()
        if total is None and isinstance(entries, Sized):
            total = len(entries)
        self.reporter.start(total=total, dry_run=False)
        deadline = None if self.timeout is None else started + self.timeout
        try:
            self._dispatch(_numbered(entries), deadline)
        finally:
            unstarted = len(self.ready) + self.held
            self.ready.clear()
            self.waiting.clear()
            if self.in_flight:
                self.reporter.stopping(len(self.in_flight))
                self._drain(time.monotonic() + self.grace)
        summary = self.tally.summary(
            time.monotonic() - started,
            interrupted=self.interrupted,
            unstarted=unstarted,
            unfinished=len(self.in_flight),
        )
        self.reporter.finish(summary)
        return summary

    def _dispatch(self, lines: Iterator[Line], deadline: float | None) -> None:
        """Enqueue and collect until every line is read and every result is in, or the
        batch is stopped or out of time."""
        reading = True
        while True:
            if self.stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                self.interrupted = True
                return
            while self.ready and len(self.in_flight) < self.limit:
                self._send(*self.ready.popleft())
            while reading and len(self.in_flight) < self.limit and self.held < self.limit:
                line = next(lines, None)
                if line is None:
                    reading = False
                else:
                    self._take(line)
            if not reading and not self.in_flight and not self.ready:
                return
            self._collect()

    def _take(self, line: Line) -> None:
        if line.instruction is None:
            self.tally.reject(line)
            self.reporter.rejected(line)
            return
        order = line.instruction.order_id
        if order in self.busy:
            self.waiting.setdefault(order, deque()).append((line.number, line.instruction))
            self.held += 1
        else:
            self.busy.add(order)
            self._send(line.number, line.instruction)

    def _send(self, number: int, instruction: Instruction) -> None:
        sent = self.app.send_task(CARRY_OUT, args=[instruction.as_json()])
        self.in_flight[sent.id] = (number, instruction)

    def _collect(self, *, draining: bool = False) -> bool:
        """Settle the results that have landed; wait a little when none has."""
        found = False
        pending = list(self.in_flight)
        for start in range(0, len(pending), _POLL_CHUNK):
            for task_id, meta in self._ready(pending[start : start + _POLL_CHUNK]):
                self._settle(task_id, meta)
                found = True
        if found:
            self._pause = _POLL_MIN
        else:
            if draining:
                time.sleep(self._pause)
            else:
                self.stop.wait(self._pause)
            self._pause = min(_POLL_MAX, self._pause * 1.5)
        return found

    def _ready(self, task_ids: list[str]) -> list[tuple[str, Mapping[str, Any]]]:
        from celery.exceptions import TimeoutError as NotYet  # type: ignore[import-untyped]

        found: list[tuple[str, Mapping[str, Any]]] = []
        try:
            # One MGET: what is ready comes back, then it "times out" on the rest.
            for task_id, meta in self.app.backend.get_many(task_ids, timeout=0, interval=0):
                if meta.get("status") in _FINISHED:
                    found.append((task_id, meta))
        except NotYet:
            pass
        return found

    def _settle(self, task_id: str, meta: Mapping[str, Any]) -> None:
        entry = self.in_flight.pop(task_id, None)
        if entry is None:
            return
        number, instruction = entry
        result, transaction_ids = result_from_json(instruction, meta)
        self.tally.add(number, result)
        if transaction_ids and not result.done:
            # The worker has the ledger's transactions; the summary needs their ids only.
            last = self.tally.not_done[-1]
            self.tally.not_done[-1] = evolve(last, transaction_ids=transaction_ids)
        self.reporter.result(number, result)
        order = instruction.order_id
        behind = self.waiting.get(order)
        if behind:
            self.ready.append(behind.popleft())
            self.held -= 1
            if not behind:
                del self.waiting[order]
        else:
            self.busy.discard(order)

    def _drain(self, deadline: float) -> None:
        """Collect the results of what was enqueued, until ``deadline``."""
        while self.in_flight and time.monotonic() < deadline:
            self._collect(draining=True)


def result_from_json(
    instruction: Instruction, meta: Mapping[str, Any]
) -> tuple[InstructionResult, tuple[str, ...]]:
    """A finished task's result (as the backend stores it) and its transaction ids.

    A task that raised, was revoked, or answered something unreadable is ``failed``
    with why: running the instruction again is safe (its keys make it so).
    """
    status = meta.get("status")
    data = meta.get("result")
    if status == "SUCCESS" and isinstance(data, Mapping):
        try:
            held = data.get("held")
            result = InstructionResult(
                instruction=instruction,
                outcome=InstructionOutcome(data["outcome"]),
                message=data.get("message"),
                held=None if held is None else Money(held["amount"], held["currency"]),
            )
            ids = tuple(str(i) for i in data.get("transactions") or ())
        except (KeyError, TypeError, ValueError, PaycoreError) as error:
            why = f"the worker's answer could not be read ({type(error).__name__})"
        else:
            return result, ids
    elif status == "FAILURE":
        why = f"the task failed: {_exception_line(data)}"
    elif status == "REVOKED":
        why = "the task was revoked before it ran"
    else:
        why = f"the worker's answer could not be read (status {str(status)[:32]})"
    failed = InstructionResult(
        instruction=instruction, outcome=InstructionOutcome.FAILED, message=clipped(why, _MESSAGE)
    )
    return failed, ()


def _exception_line(data: Any) -> str:
    if not isinstance(data, Mapping):
        return "no details"
    kind = str(data.get("exc_type") or "error")
    details = data.get("exc_message")
    if isinstance(details, list | tuple):
        details = " ".join(str(part) for part in details)
    text = " ".join(str(details or "").split())
    return f"{kind}: {text}" if text else kind


def _numbered(entries: Iterable[Line | Instruction]) -> Iterator[Line]:
    """Entries as `Line`\\ s; bare instructions are numbered from 1, as `run_batch` does."""
    number = 0
    for entry in cast(Iterable[Any], entries):  # whatever the caller's iterable holds
        if isinstance(entry, Line):
            number = entry.number
            yield entry
            continue
        number += 1
        if isinstance(entry, Instruction):
            yield Line(number=number, instruction=entry)
        else:
            yield Line(number=number, reason=f"not an instruction: {type(entry).__name__}")
