"""Run callers in processes of their own, released together, and collect their answers.

Each process runs ``target(job, barrier, results)``: it gets ready (imports,
connections), waits at ``barrier`` for the others so their calls really overlap, then
puts one answer on ``results``. `released_together` starts one process per job, waits
for every answer and for every process to exit cleanly, and kills what is left.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

# Seconds to wait for every process's answer; they start in a few seconds.
PROCESSES_TIMEOUT = 120.0


def released_together(
    context: Any,
    target: Callable[[Any, Any, Any], None],
    jobs: Sequence[Any],
    *,
    timeout: float = PROCESSES_TIMEOUT,
) -> list[Any]:
    """Each job's answer, in the order they came; fails the test if one never comes."""
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [context.Process(target=target, args=(job, barrier, results)) for job in jobs]
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout
        answers: list[Any] = []
        for _ in jobs:
            try:
                answers.append(results.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                codes = [process.exitcode for process in processes]
                pytest.fail(f"{len(answers)} of {len(jobs)} processes answered; exit codes {codes}")
        for process in processes:
            process.join(timeout)
        assert [process.exitcode for process in processes] == [0] * len(jobs)
        return answers
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
