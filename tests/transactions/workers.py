"""Worker processes for the concurrency tests.

Each worker is a deployment of its own: it builds its own `Store`, gateway and
`PaymentTransactionServices` from a database URL and a gateway config, and shares
nothing with the test process but the database and the sandbox.

`capture_when_released` runs in a `multiprocessing` process: it gets ready (store,
services, a first database connection), waits at a barrier with the other workers so
their captures really overlap, captures, and reports what came back on a queue.

Workers killed in the middle of a capture are `paycore.testing.crash_worker`.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from paycore.errors import PaymentBusy
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

# How long a worker waits at the barrier for the others to be ready.
BARRIER_TIMEOUT = 120.0
# How long a caller told to retry while the payment is busy keeps retrying.
RETRY_FOR = 60.0


@dataclass(frozen=True)
class CaptureJob:
    """A capture for a worker to make, and where: the ledger's URL and the gateway's config."""

    database_url: str
    gateway_config: dict[str, Any]
    payment_id: str
    minor_units: int
    currency: str
    idempotency_key: str
    retry_busy: bool = False  # retry after PaymentBusy, as a job would, with backoff


@dataclass(frozen=True)
class Outcome:
    """What one caller got in the end: the transaction it was handed, or the error it
    raised; ``busy`` counts the `PaymentBusy` answers it retried after.

    ``released_at`` and ``finished_at`` are `time.monotonic` readings, which every
    process of the machine shares: they tell whether the calls overlapped.
    """

    idempotency_key: str
    pid: int
    released_at: float
    finished_at: float
    busy: int = 0
    transaction_id: str | None = None
    status: str | None = None
    minor_units: int | None = None
    error: str | None = None
    message: str | None = None


class _Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class _Queue(Protocol):
    def put(self, item: Any) -> None: ...


def build_services(job: CaptureJob, *, hooks: Any = ...) -> PaymentTransactionServices:
    """This process's own services over the job's database and gateway.

    ``hooks`` as `PaymentTransactionServices` takes it: the process's hook manager by
    default, None for none.
    """
    gateway = DummyGateway.from_config(job.gateway_config)
    return PaymentTransactionServices(
        Store.connect(job.database_url), {"dummy": gateway}, hooks=hooks
    )


def capture(services: PaymentTransactionServices, job: CaptureJob, barrier: _Barrier) -> Outcome:
    """Wait for the other callers, capture, and tell what came back (never raises)."""
    barrier.wait(BARRIER_TIMEOUT)
    released_at = time.monotonic()
    busy = 0
    while True:
        try:
            transaction = services.capture(
                job.payment_id,
                Money(job.minor_units, job.currency),
                idempotency_key=job.idempotency_key,
            )
        except PaymentBusy as error:
            if job.retry_busy and time.monotonic() < released_at + RETRY_FOR:
                busy += 1
                time.sleep(random.uniform(0, min(0.1, 0.005 * 2**busy)))
                continue
            failure: Exception = error
        except Exception as error:
            failure = error
        else:
            return Outcome(
                idempotency_key=job.idempotency_key,
                pid=os.getpid(),
                released_at=released_at,
                finished_at=time.monotonic(),
                busy=busy,
                transaction_id=transaction.id,
                status=str(transaction.status),
                minor_units=transaction.amount.minor_units,
            )
        return Outcome(
            idempotency_key=job.idempotency_key,
            pid=os.getpid(),
            released_at=released_at,
            finished_at=time.monotonic(),
            busy=busy,
            error=type(failure).__name__,
            message=str(failure),
        )


def capture_when_released(job: CaptureJob, barrier: _Barrier, results: _Queue) -> None:
    """A worker process: get ready, wait at ``barrier``, capture, put an `Outcome`."""
    with build_services(job, hooks=None) as services:
        services.get_payment(job.payment_id)  # connect before the race, not during it
        results.put(capture(services, job, barrier))
