"""What the OMS's Celery tasks do, and the services a worker does it with.

`paycore.oms.celery.make_celery` registers `carry_out` and `reconcile` as the tasks
``paycore.oms.carry_out`` and ``paycore.oms.reconcile``; see that module for the
contract. Each is a function of the bound task, so its logic reads without Celery's
machinery. A task's result is JSON (`result_json`): the instruction's key, its
outcome, the ledger's transaction ids, why it did not succeed, what a cancel left
held, which attempt it was, and whether the broker delivered the task again.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from attrs import frozen

from paycore.config import Settings, redact_url
from paycore.errors import InvalidRequest, PaycoreError, PaymentBusy
from paycore.oms.model import Instruction, InstructionOutcome, InstructionResult
from paycore.oms.order_payments import OrderPayments
from paycore.transactions.model import TransactionStatus
from paycore.transactions.orchestration import one_line
from paycore.transactions.services import PaymentTransactionServices

if TYPE_CHECKING:
    from paycore.oms.celery import CeleryConfig

__all__ = [
    "CARRY_OUT",
    "RECONCILE",
    "WorkerServices",
    "backoff",
    "carry_out",
    "reconcile",
    "result_json",
]

log = logging.getLogger("paycore.oms.celery")

CARRY_OUT = "paycore.oms.carry_out"
RECONCILE = "paycore.oms.reconcile"

# What a failed transaction's ``failure`` says when it was never sent.
_NOT_SENT = "GatewayUnavailable"
_MESSAGE = 300


@frozen
class Built:
    """A worker process's services, and the process that built them."""

    pid: int
    settings: Settings
    services: PaymentTransactionServices
    order_payments: OrderPayments


class WorkerServices:
    """The services a worker process carries tasks out with: built on first use, once
    per process (a forked child builds its own), closed when the process shuts down.

    ``settings`` are used when given; otherwise ``load()`` reads them (the settings
    file ``PAYCORE_CONFIG`` names) in the worker, not in the process that enqueues.
    """

    def __init__(
        self,
        settings: Settings | None,
        config: CeleryConfig,
        *,
        load: Callable[[], Settings],
    ) -> None:
        self.config = config
        self._settings = settings
        self._load = load
        self._lock = threading.Lock()
        self._built: Built | None = None

    def get(self) -> Built:
        built = self._built
        pid = os.getpid()
        if built is not None and built.pid == pid:
            return built
        with self._lock:
            if self._built is None or self._built.pid != pid:
                # One inherited from the parent process is the parent's to close.
                self._built = self._build(pid)
            return self._built

    def _build(self, pid: int) -> Built:
        settings = self._settings if self._settings is not None else self._load()
        services = PaymentTransactionServices.from_settings(settings)
        log.info(
            "paycore worker process %s: database %s, gateways %s",
            pid,
            redact_url(settings.database_url),
            ", ".join(settings.gateways) or "none",
        )
        return Built(pid, settings, services, OrderPayments(services))

    def close(self, *_: Any, **__: Any) -> None:
        """Close this process's services, if it built any (a Celery signal receiver)."""
        with self._lock:
            built, self._built = self._built, None
        if built is not None and built.pid == os.getpid():
            built.services.close()
            log.debug("paycore worker process %s: services closed", built.pid)


# -- paycore.oms.carry_out -----------------------------------------------------------------


def carry_out(task: Any, instruction_json: Any) -> dict[str, Any]:
    """Carry out one instruction (its JSON Lines form); see `paycore.oms.celery`."""
    request = task.request
    attempt = int(request.retries or 0) + 1
    redelivered = bool((request.delivery_info or {}).get("redelivered"))
    try:
        instruction = Instruction.from_json(instruction_json)
    except PaycoreError as error:
        log.warning("refused a task: %s", one_line(error))
        return _refused(None, error, attempt, redelivered)
    worker: WorkerServices = task.app.paycore_worker
    order_payments = worker.get().order_payments
    try:
        result = order_payments.carry_out(instruction)
    except PaymentBusy as error:
        # Another instruction of the order holds one of its payments: nothing was sent.
        _retry(task, instruction, one_line(error), attempt)
        return _refused(instruction, error, attempt, redelivered, gave_up=True)
    except PaycoreError as error:
        log.info("instruction %s cannot be carried out: %s", instruction.key, one_line(error))
        return _refused(instruction, error, attempt, redelivered)
    if _not_sent(result):
        _retry(task, instruction, result.message or "the gateway was unavailable", attempt)
        message = f"{result.message} (gave up after {attempt} attempts)"
        return result_json(
            _with_message(result, message), attempts=attempt, redelivered=redelivered
        )
    return result_json(result, attempts=attempt, redelivered=redelivered)


def _not_sent(result: InstructionResult) -> bool:
    """Failed, and only because a gateway could not be reached: safe to send again."""
    if result.outcome is not InstructionOutcome.FAILED:
        return False
    failed = [t for t in result.transactions if t.status is TransactionStatus.FAILED]
    return bool(failed) and all(t.failure == _NOT_SENT for t in failed)


def _retry(task: Any, instruction: Instruction, why: str, attempt: int) -> None:
    """Have Celery run the task again after a backoff; returns when retries are spent."""
    config: CeleryConfig = task.app.paycore_worker.config
    if attempt > config.max_retries:
        log.warning("instruction %s: %s; no retries left", instruction.key, why)
        return
    delay = backoff(attempt, config)
    log.info("instruction %s: %s; retry %s in %.1f s", instruction.key, why, attempt, delay)
    raise task.retry(countdown=delay, max_retries=config.max_retries)


def backoff(attempt: int, config: CeleryConfig, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt`` (1 first): doubling from ``retry_backoff``, at
    most `CeleryConfig.longest_wait`, and spread over its upper half so workers that
    failed together do not come back together."""
    ceiling = min(config.longest_wait, config.retry_backoff * 2.0 ** min(attempt - 1, 64))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def _refused(
    instruction: Instruction | None,
    error: PaycoreError,
    attempt: int,
    redelivered: bool,
    *,
    gave_up: bool = False,
) -> dict[str, Any]:
    """A failed result: the instruction was refused (as a rule before anything was sent;
    what it did before stays recorded under its keys, and running it again carries on)."""
    message = _clip(one_line(error))
    if gave_up:
        message += f" (gave up after {attempt} attempts)"
    return {
        "key": None if instruction is None else instruction.key,
        "outcome": InstructionOutcome.FAILED.value,
        "transactions": [],
        "message": message,
        "held": None,
        "attempts": attempt,
        "redelivered": redelivered,
    }


def result_json(
    result: InstructionResult, *, attempts: int = 1, redelivered: bool = False
) -> dict[str, Any]:
    """An instruction's result as a task returns it (JSON; amounts in minor units)."""
    held = result.held
    return {
        "key": result.instruction.key,
        "outcome": result.outcome.value,
        "transactions": [t.id for t in result.transactions],
        "message": result.message,
        "held": None
        if held is None
        else {"amount": held.minor_units, "currency": held.currency.code},
        "attempts": attempts,
        "redelivered": redelivered,
    }


def _with_message(result: InstructionResult, message: str) -> InstructionResult:
    from attrs import evolve

    return evolve(result, message=_clip(message))


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE else text[: _MESSAGE - 1] + "…"


# -- paycore.oms.reconcile -----------------------------------------------------------------


def reconcile(task: Any, older_than: float | None = None) -> dict[str, Any]:
    """Check the ledger's unsettled transactions with their gateways, then complete the
    checkouts waiting past the grace period; returns the counts of both.

    ``older_than`` (seconds) replaces the grace period (5 minutes) for this run.
    """
    from paycore.checkout import CheckoutService
    from paycore.transactions.reconcile import DEFAULT_GRACE, Reconciler

    if older_than is not None and (
        isinstance(older_than, bool)
        or not isinstance(older_than, int | float)
        or not (older_than >= 0 and math.isfinite(older_than))
    ):
        raise InvalidRequest("older_than must be a number of seconds, zero or more")
    built: Built = task.app.paycore_worker.get()
    age = None if older_than is None else timedelta(seconds=older_than)
    report = Reconciler(built.services).run(older_than=age)
    log.info("reconciliation: %s", report.summary())
    checkout = CheckoutService(
        built.services,
        capture=built.settings.checkout.capture,
        return_base_url=built.settings.webhook_base_url,
        options_timeout=built.settings.checkout.options_timeout,
    )
    finished = checkout.complete_unfinished(older_than=age if age is not None else DEFAULT_GRACE)
    statuses = Counter(str(c.status) for c in finished)
    return {
        "transactions": {**report.counts, "redelivered": report.redelivered},
        "checkouts": {
            "checked": len(finished),
            "completed": statuses["completed"],
            "failed": statuses["failed"],
            "waiting": statuses["submitted"],
        },
    }
