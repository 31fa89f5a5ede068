"""Group commit: many threads' small writes share one database transaction and one commit.

A durable SQLite commit waits for the disk (``synchronous=FULL``: an fsync, a few
milliseconds), and SQLite has one writer at a time; so webhook events recorded one
transaction each are bounded by the disk at a few hundred a second, however many
deliveries arrive at once. `GroupCommit` runs the writes waiting at the same time in
one transaction, each in a savepoint of its own, and commits them together: one wait
for the disk for all of them.

Each unit of work is isolated as it would be alone: one that raises is rolled back to
its savepoint (the others stand) and its caller gets the exception; a failed commit
fails every unit of the group. No caller gets an answer before its work is committed.
The thread whose unit arrives when no group is running leads: it commits what is
waiting, then hands the lead to the first unit that arrived meanwhile, so no caller
works for others longer than one group.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from paycore.transactions.store import Store, StoreSession

__all__ = ["GroupCommit"]

T = TypeVar("T")

# Units committed together at most: a group holds the write lock while it runs.
MAX_GROUP = 64


class _Unit(Generic[T]):
    __slots__ = ("done", "error", "lead", "value", "work")

    def __init__(self, work: Callable[[StoreSession], T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.lead = False  # set (with done) when this unit's thread is to lead
        self.value: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs units of work on ``store`` in shared write transactions; see the module."""

    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._lock = threading.Lock()
        self._waiting: list[_Unit[object]] = []
        self._running = False

    def run(self, work: Callable[[StoreSession], T]) -> T:
        """``work(session)`` in a write transaction, committed; its value or its exception."""
        unit: _Unit[T] = _Unit(work)
        with self._lock:
            self._waiting.append(unit)  # type: ignore[arg-type]
            unit.lead = not self._running
            self._running = True
        if not unit.lead:
            unit.done.wait()
        if unit.lead:
            self._lead()
        if unit.error is not None:
            raise unit.error
        return unit.value  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit one group (this thread's unit is its first), then pass the lead on."""
        with self._lock:
            group = self._waiting[: self.max_group]
            del self._waiting[: self.max_group]
        try:
            self._commit(group)
        finally:
            with self._lock:
                successor = self._waiting[0] if self._waiting else None
                self._running = successor is not None
            for unit in group:
                unit.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()

    def _commit(self, group: list[_Unit[object]]) -> None:
        try:
            with self.store.writing() as session:
                for unit in group:
                    savepoint = session.connection.begin_nested()
                    try:
                        unit.value = unit.work(session)
                    except Exception as error:
                        savepoint.rollback()
                        unit.error = error
                    else:
                        savepoint.commit()
        except BaseException as error:
            # Nothing of the group was committed: no unit may report what it did, not even
            # a failure, which may have come from a sibling's writes now rolled back (a
            # "duplicate" of an event another unit inserted).
            for unit in group:
                unit.value, unit.error = None, error
            if not isinstance(error, Exception):
                raise
