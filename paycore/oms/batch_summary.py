"""What a batch tells as it goes and keeps at the end, whatever runs it (DESIGN §7).

A batch runner (`paycore.oms.jobs.run_batch` in this process, or
`paycore.oms.celery.run_batch_on_celery` on Celery workers) tells a `Reporter` about
each instruction carried out and each line rejected, counts them in a `BatchTally`,
and ends with its `BatchSummary`: counts per outcome, the rejected lines, the
instructions not done (the ``unknown`` ones go to reconciliation) and the wall time.
`paycore.oms.progress` has the reporters: a progress bar, plain lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from attrs import field, frozen

from paycore.oms.model import Instruction, InstructionOutcome, InstructionResult

if TYPE_CHECKING:
    from paycore.oms.jobs import Line

__all__ = ["OUTCOME_ORDER", "BatchSummary", "BatchTally", "NotDone", "Reporter"]

# The outcomes in the order summaries show them: the good news first.
OUTCOME_ORDER = (
    InstructionOutcome.SUCCEEDED,
    InstructionOutcome.SKIPPED,
    InstructionOutcome.DECLINED,
    InstructionOutcome.FAILED,
    InstructionOutcome.UNKNOWN,
)


@frozen(kw_only=True)
class NotDone:
    """An instruction that did not succeed: ``declined``, ``failed`` (safe to run again)
    or ``unknown`` (sent, no answer: reconciliation settles its ``transaction_ids``)."""

    number: int
    instruction: Instruction
    outcome: InstructionOutcome
    message: str | None
    transaction_ids: tuple[str, ...] = ()


def _counts(value: Mapping[Any, int]) -> Mapping[InstructionOutcome, int]:
    counts = dict.fromkeys(InstructionOutcome, 0)
    for outcome, count in value.items():
        counts[InstructionOutcome(outcome)] += count
    return counts


@frozen(kw_only=True)
class BatchSummary:
    """What a batch did: ``counts`` per outcome (every outcome, zero included), the
    ``rejected`` lines, the instructions ``not_done`` (in the order they finished),
    and ``wall_seconds``.

    ``interrupted``: the batch was stopped; ``unstarted`` instructions were read and
    never started, the rest of the input was not even read (running the batch again
    does them all), and ``unfinished`` ones were still
    in flight when the wait for them ended (their outcome is for the next run or
    reconciliation to find). In a ``dry_run`` nothing was sent or written: ``succeeded``
    counts what would be done.
    """

    counts: Mapping[InstructionOutcome, int] = field(converter=_counts)
    rejected: tuple[Line, ...] = ()
    not_done: tuple[NotDone, ...] = ()
    wall_seconds: float = 0.0
    dry_run: bool = False
    interrupted: bool = False
    unstarted: int = 0
    unfinished: int = 0

    @property
    def carried_out(self) -> int:
        """How many instructions were carried out (or planned), whatever came of them."""
        return sum(self.counts.values())

    @property
    def unknown(self) -> tuple[NotDone, ...]:
        """The instructions sent without a definitive answer: for reconciliation."""
        return tuple(n for n in self.not_done if n.outcome is InstructionOutcome.UNKNOWN)

    @property
    def ok(self) -> bool:
        """Every line was read, and every instruction done now or before."""
        bad = (InstructionOutcome.UNKNOWN, InstructionOutcome.FAILED, InstructionOutcome.DECLINED)
        return (
            not self.rejected
            and not self.interrupted
            and not self.unfinished
            and not any(self.counts[outcome] for outcome in bad)
        )

    def line(self) -> str:
        """One line: how many, what came of them, and how long it took."""
        parts = [
            f"{self.counts[outcome]} {_label(outcome, self.dry_run)}" for outcome in OUTCOME_ORDER
        ]
        parts.append(f"{len(self.rejected)} rejected")
        head = "dry run: " if self.dry_run else ""
        text = (
            f"{head}{self.carried_out} instruction{'s' if self.carried_out != 1 else ''}: "
            + ", ".join(parts)
            + f" in {self.wall_seconds:.1f} s"
        )
        if self.interrupted:
            text += (
                "; interrupted: the rest was not started"
                + (f", {self.unfinished} still in flight" if self.unfinished else "")
                + " (run the batch again to finish it)"
            )
        return text


def _label(outcome: InstructionOutcome, dry_run: bool) -> str:
    if dry_run and outcome is InstructionOutcome.SUCCEEDED:
        return "to do"
    if dry_run and outcome is InstructionOutcome.SKIPPED:
        return "done before"
    return outcome.value


class BatchTally:
    """Counts results into a `BatchSummary`: what every batch runner builds one with.

    Keeps the rejected lines and the instructions not done, and for the rest only
    counts, so a batch of any size is summarised in little memory.
    """

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.counts = dict.fromkeys(InstructionOutcome, 0)
        self.rejected: list[Line] = []
        self.not_done: list[NotDone] = []

    def add(self, number: int, result: InstructionResult) -> None:
        """Count the result of the instruction of line ``number``."""
        self.counts[result.outcome] += 1
        if not result.done:
            self.not_done.append(
                NotDone(
                    number=number,
                    instruction=result.instruction,
                    outcome=result.outcome,
                    message=result.message,
                    transaction_ids=tuple(t.id for t in result.transactions),
                )
            )

    def reject(self, line: Line) -> None:
        self.rejected.append(line)

    def summary(
        self,
        wall_seconds: float,
        *,
        interrupted: bool = False,
        unstarted: int = 0,
        unfinished: int = 0,
    ) -> BatchSummary:
        return BatchSummary(
            counts=self.counts,
            rejected=tuple(self.rejected),
            not_done=tuple(self.not_done),
            wall_seconds=wall_seconds,
            dry_run=self.dry_run,
            interrupted=interrupted,
            unstarted=unstarted,
            unfinished=unfinished,
        )


# -- reporting -------------------------------------------------------------------------


class Reporter(Protocol):
    """What a batch runner tells as it goes; every call comes from one thread.

    `paycore.oms.progress` has a progress bar for terminals and plain lines for logs.
    """

    def start(self, *, total: int | None, dry_run: bool) -> None:
        """The batch starts; ``total`` is how many lines it has, when known."""

    def result(self, number: int, result: InstructionResult) -> None:
        """The instruction of line ``number`` was carried out (or planned)."""

    def rejected(self, line: Line) -> None:
        """Line ``line.number`` was not an instruction: skipped."""

    def stopping(self, in_flight: int) -> None:
        """The batch was told to stop: waiting for the ``in_flight`` instructions."""

    def finish(self, summary: BatchSummary) -> None:
        """The batch is over (done or stopped)."""


class SilentReporter:
    """A `Reporter` that tells nothing (a batch run from code, with its summary read)."""

    def start(self, *, total: int | None, dry_run: bool) -> None:
        pass

    def result(self, number: int, result: InstructionResult) -> None:
        pass

    def rejected(self, line: Line) -> None:
        pass

    def stopping(self, in_flight: int) -> None:
        pass

    def finish(self, summary: BatchSummary) -> None:
        pass


def clipped(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (a reason for a report)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
