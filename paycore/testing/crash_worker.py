"""A payments process that dies (SIGKILL) at a chosen step of a mutation's write-ahead.

The gateway contract's crash tests (`paycore.testing.contract_crash`) run it as a
process of its own: it is a deployment like any other, sharing nothing with the test
but the ledger's database and the provider's sandbox::

    python -m paycore.testing.crash_worker < job.json

It reads a `CrashJob` (JSON) on stdin, builds a `Store` on the job's database URL, the
gateway from its class path and config, and `PaymentTransactionServices` over them,
starts the job's capture or refund, and kills itself at the job's `CrashStep`. Just
before, it prints one line of JSON saying where it was. Each step is caught at a seam
paycore offers to anyone, never by patching paycore's internals:

==================  ============================================================
step                seam
==================  ============================================================
``before_write``    SQLAlchemy's ``before_execute`` event on the store's engine:
                    inside the write-ahead database transaction (payment locked),
                    as the ``pending`` row is about to be inserted
``before_send``     the HTTP client's transport: the write-ahead is committed, and
                    the first request of the exchange has not left the process
``before_record``   the ``paycore_gateway_exchange`` hook: the provider answered
                    and the outcome is not recorded yet
``after_record``    the ``paycore_transaction_recorded`` hook: the outcome is
                    committed, its notification not yet delivered
==================  ============================================================

A worker still alive once the call returns exits with status 1 and says why: the
step it was given never came.

The job carries secrets (the gateway's config, the database URL): it travels on stdin,
never on the command line, where any user of the machine could read it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import httpx
from attrs import frozen

from paycore.hookspecs import hookimpl

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from paycore.gateways.base import Gateway
    from paycore.gateways.scrub import Transcript
    from paycore.transactions.records import PaymentTransaction

__all__ = ["CrashJob", "CrashStep", "main"]


class CrashStep(StrEnum):
    """Where on the write-ahead path the worker dies (see the module's table)."""

    BEFORE_WRITE = "before_write"
    BEFORE_SEND = "before_send"
    BEFORE_RECORD = "before_record"
    AFTER_RECORD = "after_record"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen(kw_only=True)
class CrashJob:
    """A capture or refund for a worker to start, and where it dies.

    ``gateway_class`` is ``"module:qualname"``, so that a gateway not installed as an
    entry point (a variant defined in a test module) can be built too; ``import_path``
    is where the worker looks for it (the test process's ``sys.path``).
    """

    database_url: str = attrs.field(repr=False)
    gateway_name: str
    gateway_class: str
    gateway_config: dict[str, Any] = attrs.field(repr=False)
    payment_id: str
    operation: str  # "capture" or "refund"
    minor_units: int
    currency: str
    idempotency_key: str
    step: CrashStep = attrs.field(converter=CrashStep)
    import_path: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    def as_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CrashJob:
        return cls(**json.loads(text))


def class_path(cls: type[Any]) -> str:
    """``cls`` as ``"module:qualname"``, refusing a class no other process can import."""
    if "<locals>" in cls.__qualname__:
        raise TypeError(
            f"{cls.__qualname__} is defined inside a function: a crash worker cannot "
            "import it; define the gateway class at module level"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def die(**where: Any) -> NoReturn:
    """Say where this process is, then die the way a power cut or the OOM killer does."""
    print(json.dumps(where), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")  # pragma: no cover


class DieBeforeSending(httpx.BaseTransport):
    """A transport that dies when handed its first request, before sending it."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        die(step=CrashStep.BEFORE_SEND, sending=request.method)


class DieOnTheOutcome:
    """Hook implementations that die once the job's operation reaches ``step``."""

    def __init__(self, operation: str, step: CrashStep) -> None:
        self.operation = operation
        self.step = step

    @hookimpl
    def paycore_gateway_exchange(self, operation: str, transcript: Transcript) -> None:
        if self.step is CrashStep.BEFORE_RECORD and operation == self.operation:
            answered = [record.status_code for record in transcript.records if record.status_code]
            die(step=self.step, exchange=transcript.outcome, answered=answered)

    @hookimpl
    def paycore_transaction_recorded(self, transaction: PaymentTransaction) -> None:
        if self.step is CrashStep.AFTER_RECORD and transaction.type == self.operation:
            die(step=self.step, transaction_id=transaction.id, status=str(transaction.status))


def die_before_writing_ahead(engine: Engine) -> None:
    """Die as the ledger is about to insert a transaction row."""
    import sqlalchemy as sa

    from paycore.transactions.schema import transactions

    def before_execute(connection: Any, statement: Any, *args: Any) -> None:
        if isinstance(statement, sa.Insert) and statement.table is transactions:
            die(step=CrashStep.BEFORE_WRITE, inserting=transactions.name)

    sa.event.listen(engine, "before_execute", before_execute)


def gateway_type(path: str) -> type[Gateway]:
    """The gateway class at ``"module:qualname"``."""
    from paycore.gateways.base import Gateway

    module_name, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for name in qualname.split("."):
        found = getattr(found, name)
    if not (isinstance(found, type) and issubclass(found, Gateway)):
        raise TypeError(f"{path} is not a Gateway subclass")
    return found


def run(job: CrashJob) -> NoReturn:
    """Start the job's operation; die at its step (or exit 1 if the step never came)."""
    sys.path[:0] = [entry for entry in job.import_path if entry not in sys.path]
    from paycore.gateways.driver import GatewayDriver
    from paycore.money import Money
    from paycore.plugins import new_hook_manager
    from paycore.transactions.services import PaymentTransactionServices
    from paycore.transactions.store import Store

    hooks = new_hook_manager(load_entry_points=False)
    hooks.register(DieOnTheOutcome(job.operation, job.step))
    store = Store.connect(job.database_url)
    if job.step is CrashStep.BEFORE_WRITE:
        die_before_writing_ahead(store.engine)
    transport = DieBeforeSending() if job.step is CrashStep.BEFORE_SEND else httpx.HTTPTransport()
    client = httpx.Client(transport=transport, trust_env=False, follow_redirects=False)
    gateway = gateway_type(job.gateway_class).from_config(job.gateway_config)
    driver = GatewayDriver(gateway, client=client, hooks=hooks.hook)
    services = PaymentTransactionServices(store, {job.gateway_name: driver}, hooks=hooks.hook)
    mutation = {"capture": services.capture, "refund": services.refund}[job.operation]
    done = mutation(
        job.payment_id,
        Money(job.minor_units, job.currency),
        idempotency_key=job.idempotency_key,
    )
    sys.exit(f"the {job.operation} ended {done.status} without reaching {job.step}")


def main() -> None:
    run(CrashJob.from_json(sys.stdin.read()))


if __name__ == "__main__":
    main()
