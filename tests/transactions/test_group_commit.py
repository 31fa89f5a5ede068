"""Group commit: writes waiting at the same time share one commit, each isolated in a
savepoint, and no caller hears of its write before it is committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from paycore.transactions.group_commit import GroupCommit
from paycore.transactions.store import Store, StoreSession, webhook_events

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def record(event_id: str) -> Callable[[StoreSession], bool]:
    def work(session: StoreSession) -> bool:
        return session.record_event(
            {
                "gateway": "dummy",
                "event_id": event_id,
                "event_type": "payment.captured",
                "transaction_type": "sale",
                "outcome": "succeeded",
                "occurred_at": NOW,
                "received_at": NOW,
                "disposition": "unmatched",
            }
        )

    return work


def stored(store: Store) -> list[str]:
    with store.reading() as session:
        return sorted(session.connection.execute(sa.select(webhook_events.c.event_id)).scalars())


def commits(store: Store) -> list[int]:
    counted = [0]

    @sa.event.listens_for(store.engine, "commit")
    def count(_: object) -> None:
        counted[0] += 1

    return counted


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.001)


def held_then_grouped(
    group: GroupCommit, works: list[Callable[[StoreSession], object]]
) -> list[Future[object]]:
    """A first unit holds the group open until every one of ``works`` waits behind it."""
    holding, release = threading.Event(), threading.Event()

    def hold(session: StoreSession) -> bool:
        holding.set()
        release.wait(10)
        return record("evt_first")(session)

    pool = ThreadPoolExecutor(len(works) + 1)
    first = pool.submit(group.run, hold)
    assert holding.wait(10)
    futures = [pool.submit(group.run, work) for work in works]
    wait_until(lambda: len(group._waiting) == len(works))  # all behind the first
    release.set()
    pool.shutdown(wait=True)
    return [first, *futures]


def test_units_waiting_together_share_one_commit(paycore_ledger: Store) -> None:
    group = GroupCommit(paycore_ledger)
    counted = commits(paycore_ledger)

    futures = held_then_grouped(group, [record(f"evt_{n}") for n in range(8)])

    assert [future.result() for future in futures] == [True] * 9
    assert counted[0] == 2  # the first alone, then the eight waiting behind it together
    assert stored(paycore_ledger) == sorted(["evt_first", *(f"evt_{n}" for n in range(8))])


def test_a_unit_that_fails_is_rolled_back_alone(paycore_ledger: Store) -> None:
    group = GroupCommit(paycore_ledger)

    def fails(session: StoreSession) -> bool:
        record("evt_failing")(session)
        raise ValueError("this one fails")

    futures = held_then_grouped(group, [record("evt_a"), fails, record("evt_a"), record("evt_b")])

    with pytest.raises(ValueError, match="this one fails"):
        futures[2].result()
    # The same event twice in one group: the second is told it was stored before.
    assert [futures[n].result() for n in (0, 1, 3, 4)] == [True, True, False, True]
    assert stored(paycore_ledger) == ["evt_a", "evt_b", "evt_first"]


def test_a_caller_hears_of_its_write_only_once_it_is_committed(paycore_ledger: Store) -> None:
    group = GroupCommit(paycore_ledger)
    seen = []

    def answered(event_id: str) -> None:
        assert group.run(record(event_id))
        seen.append(event_id in stored(paycore_ledger))  # read on another connection

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(answered, [f"evt_{n}" for n in range(40)]))

    assert seen == [True] * 40


def test_a_failed_commit_fails_every_unit_of_its_group_even_one_that_saw_a_duplicate(
    paycore_ledger: Store,
) -> None:
    # Two units of one group record the same event; the second finds the first's row and
    # fails as a duplicate (as the ledger's events do). Then the group's commit fails:
    # the event is not stored, so neither may hear "stored" nor "duplicate".
    group = GroupCommit(paycore_ledger)
    commits_seen = [0]

    @sa.event.listens_for(paycore_ledger.engine, "commit")
    def fail_the_second(_: object) -> None:
        commits_seen[0] += 1
        if commits_seen[0] == 2:
            raise OSError("the disk is full")

    def again(session: StoreSession) -> bool:
        if not record("evt_once")(session):
            raise KeyError("evt_once was stored before")
        return True

    futures = held_then_grouped(group, [record("evt_once"), again])

    assert futures[0].result() is True  # the first group committed
    for future in futures[1:]:
        with pytest.raises(OSError, match="the disk is full"):
            future.result()
    assert stored(paycore_ledger) == ["evt_first"]
