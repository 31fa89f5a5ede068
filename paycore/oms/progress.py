"""How a batch shows its progress: a bar on a terminal, plain lines otherwise.

Both are `paycore.oms.batch_summary.Reporter`\\ s, whatever runs the batch (in this process or
on Celery workers), and end with the same summary: what was not done (declined,
failed, unknown: those go to reconciliation) and the rejected lines, each with its
line number, then one line of counts. `reporter_for` picks one for a console.

Plain lines suit logs and pipes: one when the batch starts, one per tenth of the batch
done (or every ``interval`` seconds, whichever comes first; only by time when the
size is not known), one per rejected line as it is read (the first few), and the
summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from paycore.oms.batch_summary import OUTCOME_ORDER, BatchSummary, NotDone
from paycore.oms.jobs import Line
from paycore.oms.model import InstructionOutcome, InstructionResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from paycore.oms.batch_summary import Reporter

__all__ = ["BarReporter", "LineReporter", "reporter_for", "summary_lines"]

# How many rejected or unsuccessful instructions the summary lists (all are counted).
LISTED = 20
# How many rejected lines are told as they are read.
TOLD = 5


def reporter_for(console: Console, *, interval: float = 5.0) -> Reporter:
    """A progress bar when ``console`` is a terminal, plain lines otherwise."""
    if console.is_terminal:
        return BarReporter(console)
    return LineReporter(console, interval=interval)


class _Counting:
    """What both reporters keep: counts so far, and how many rejections were told."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._begin(None, dry_run=False)

    def _begin(self, total: int | None, *, dry_run: bool) -> None:
        self.total, self.dry_run = total, dry_run
        self.counts = dict.fromkeys(InstructionOutcome, 0)
        self.rejections = 0

    def _print(self, text: Text) -> None:
        # One line per line, however long: these go to logs and terminals alike.
        self.console.print(text, soft_wrap=True)

    @property
    def seen(self) -> int:
        """Lines settled: carried out or rejected."""
        return sum(self.counts.values()) + self.rejections

    def _counts_text(self) -> str:
        parts = [f"{self.counts[o]} {o.value}" for o in OUTCOME_ORDER if self.counts[o]]
        if self.rejections:
            parts.append(f"{self.rejections} rejected")
        return ", ".join(parts) or "nothing yet"

    def _tell_rejection(self, line: Line) -> None:
        self.rejections += 1
        if self.rejections <= TOLD:
            self._print(Text(f"line {line.number}: rejected: {line.reason}"))
        elif self.rejections == TOLD + 1:
            self._print(Text("(further rejected lines are listed at the end)"))

    def _print_summary(self, summary: BatchSummary) -> None:
        for text in summary_lines(summary):
            self._print(Text(text))


class LineReporter(_Counting):
    """Plain lines on ``console``: see the module docstring."""

    def __init__(
        self,
        console: Console,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(console)
        self.interval = interval
        self.clock = clock
        self.started = self.last = 0.0
        self.next_tenth = 1

    def start(self, *, total: int | None, dry_run: bool) -> None:
        self._begin(total, dry_run=dry_run)
        self.started = self.last = self.clock()
        self.next_tenth = 1
        size = "" if total is None else f" of {total} line{'s' if total != 1 else ''}"
        what = "dry run: nothing is sent or written" if dry_run else "started"
        self._print(Text(f"batch{size}: {what}"))

    def result(self, number: int, result: InstructionResult) -> None:
        self.counts[result.outcome] += 1
        self._maybe_tell()

    def rejected(self, line: Line) -> None:
        self._tell_rejection(line)
        self._maybe_tell()

    def stopping(self, in_flight: int) -> None:
        self._print(
            Text(f"stopping: no new instruction is started; waiting for {in_flight} in flight")
        )

    def finish(self, summary: BatchSummary) -> None:
        self._print_summary(summary)

    def _maybe_tell(self) -> None:
        now = self.clock()
        tenth_reached = (
            self.total is not None
            and self.total > 0
            and self.seen * 10 >= self.next_tenth * self.total
        )
        if not tenth_reached and now - self.last < self.interval:
            return
        if self.total:
            while self.next_tenth <= 10 and self.seen * 10 >= self.next_tenth * self.total:
                self.next_tenth += 1
            done = f"{self.seen}/{self.total} ({self.seen * 100 // self.total}%)"
        else:
            done = str(self.seen)
        self.last = now
        self._print(Text(f"{done} in {now - self.started:.1f} s: {self._counts_text()}"))


class BarReporter(_Counting):
    """A rich progress bar on ``console`` (a terminal), with the counts beside it."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(self, *, total: int | None, dry_run: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._begin(total, dry_run=dry_run)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}", markup=False),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task(
            "dry run" if dry_run else "batch", total=total, counts=self._counts_text()
        )
        self.progress.start()

    def result(self, number: int, result: InstructionResult) -> None:
        self.counts[result.outcome] += 1
        self._advance()

    def rejected(self, line: Line) -> None:
        self._tell_rejection(line)  # printed above the bar
        self._advance()

    def stopping(self, in_flight: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"stopping ({in_flight} in flight)")

    def finish(self, summary: BatchSummary) -> None:
        if self.progress is not None:
            self.progress.stop()
        self._print_summary(summary)

    def _advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.seen, counts=self._counts_text())


def summary_lines(summary: BatchSummary, *, listed: int = LISTED) -> list[str]:
    """The summary as text lines: what was not done, the rejected lines (the first
    ``listed`` of each), then the counts."""
    lines: list[str] = []
    not_done = sorted(summary.not_done, key=lambda n: n.number)
    if not_done:
        lines.append("not done:")
        lines += [f"  {_not_done_line(n)}" for n in not_done[:listed]]
        if len(not_done) > listed:
            lines.append(f"  … and {len(not_done) - listed} more")
    if summary.rejected:
        lines.append("rejected lines (skipped):")
        lines += [f"  line {line.number}: {line.reason}" for line in summary.rejected[:listed]]
        if len(summary.rejected) > listed:
            lines.append(f"  … and {len(summary.rejected) - listed} more")
    if summary.unknown:
        lines.append(
            f"{len(summary.unknown)} sent without an answer: reconciliation "
            "('paycore reconcile') settles them; do not resend them by hand"
        )
    lines.append(summary.line())
    return lines


def _not_done_line(item: NotDone) -> str:
    instruction = item.instruction
    text = f"line {item.number}: {instruction.key} of order {instruction.order_id}: {item.outcome}"
    if item.message:
        text += f": {item.message}"
    if item.outcome is InstructionOutcome.UNKNOWN and item.transaction_ids:
        text += f" (transactions {', '.join(item.transaction_ids)})"
    return text
