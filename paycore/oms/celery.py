"""OMS instructions on Celery workers, with Redis as the broker (DESIGN §7).

The embedded default runs a batch in one process (`paycore.oms.jobs`); this runs it
on as many worker processes, on as many machines, as the queue has::

    # each worker: the settings file names the database and the gateways
    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app worker -c 4
    # once, for the periodic reconciliation
    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app beat
    # and a batch, enqueued and waited for
    paycore oms run instructions.jsonl --celery

Tasks (JSON in, JSON out; no pickles cross the broker):

- ``paycore.oms.carry_out(instruction_json)``: one instruction, through
  `paycore.oms.OrderPayments`. It is idempotent by the instruction's key, so a task
  run twice, or delivered again after its worker died, does the work once at the
  provider. It is retried, with exponential backoff and jitter, only when nothing was
  sent: the gateway was unavailable, or another instruction held one of the order's
  payments. ``unknown`` is returned as it is (sent, no answer: reconciliation finds
  out; sending again blindly could do it twice), ``declined`` is final, and an
  instruction that cannot be carried out comes back ``failed`` with the reason at once.
- ``paycore.oms.reconcile()``: `paycore.transactions.reconcile.Reconciler` and the
  checkout sweep, every ``reconcile_every`` seconds from ``celery beat``.

Delivery is at least once: a task is acknowledged after it ran (``acks_late``), a
worker process that dies hands its task back (``reject_on_worker_lost``), and a whole
worker that dies leaves its task with Redis, which delivers it again once the
``visibility_timeout`` has passed. That timeout must be longer than any task takes
(a few gateway exchanges of at most their total timeout) and than any retry's wait,
or Redis would deliver a task still running or waiting; retries never wait more than
half of it. Each worker fetches one task at a time (``prefetch_multiplier=1``).

Workers build their services once per process, from the settings they were given or
the file ``PAYCORE_CONFIG`` names, and close them on shutdown. The broker and its
options come from `CeleryConfig`, read from the environment (``PAYCORE_CELERY_*``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from attrs import evolve, field, frozen

from paycore.config import Settings, load_settings, redact_url
from paycore.errors import ConfigurationError, InvalidRequest
from paycore.oms.celery_tasks import (
    CARRY_OUT,
    RECONCILE,
    WorkerServices,
    carry_out,
    reconcile,
)

if TYPE_CHECKING:
    from celery import Celery  # type: ignore[import-untyped]

    from paycore.oms.jobs import BatchSummary, Line, Reporter
    from paycore.oms.model import Instruction

__all__ = [
    "CARRY_OUT",
    "DEFAULT_BROKER_URL",
    "DEFAULT_QUEUE",
    "RECONCILE",
    "CeleryConfig",
    "make_celery",
    "run_batch_on_celery",
]

log = logging.getLogger("paycore.oms.celery")

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "paycore.oms"
RESULTS_KEPT = timedelta(days=1)
# How often, at most, a worker looks for tasks a dead worker left behind.
MAX_RESTORE_INTERVAL = 10.0

_ENV_PREFIX = "PAYCORE_CELERY_"
# The settings read from the environment as numbers, and how.
_NUMBERS: dict[str, type[int] | type[float]] = {
    "visibility_timeout": float,
    "max_retries": int,
    "retry_backoff": float,
    "retry_backoff_max": float,
    "reconcile_every": float,
}
_QUEUE_NAME = "queue: 1 to 200 letters, digits, '.', '_', ':' or '-'"


def _positive(name: str) -> Any:
    def check(_: Any, __: Any, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name} must be a number of seconds")
        if not (value > 0 and math.isfinite(value)):
            raise InvalidRequest(f"{name} must be a positive number of seconds")

    return check


def _queue(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidRequest(_QUEUE_NAME)
    if not all(c.isascii() and (c.isalnum() or c in "._:-") for c in value):
        raise InvalidRequest(_QUEUE_NAME)


def _key_prefix(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or len(value) > 100 or not value.isprintable():
        raise InvalidRequest("key_prefix must be at most 100 printable characters")


def _retries(_: Any, __: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidRequest("max_retries must be a whole number from 0 to 100")


def _url(_: Any, attribute: Any, value: str | None) -> None:
    if value is None and attribute.name == "result_backend":
        return
    if not isinstance(value, str) or "://" not in value:
        raise InvalidRequest(f"{attribute.name} must be a URL such as {DEFAULT_BROKER_URL}")


@frozen(kw_only=True)
class CeleryConfig:
    """Where the tasks go and how they are delivered and retried.

    ``broker_url`` and ``result_backend`` (by default the broker) name Redis
    (``redis://[:password@]host:port/db``); tasks go to ``queue``, and every key
    either writes starts with ``key_prefix`` (several deployments on one Redis).
    ``visibility_timeout``: seconds before Redis delivers again a task whose worker
    never acknowledged it (see the module). A task whose gateway was unavailable is
    retried up to ``max_retries`` times, the n-th after about ``retry_backoff * 2**n``
    seconds (at most ``retry_backoff_max``, and at most half the visibility timeout).
    ``reconcile_every``: seconds between periodic reconciliations.

    `from_env` reads each from ``PAYCORE_CELERY_<NAME>`` (``PAYCORE_CELERY_BROKER_URL``
    …). URLs may hold a password: the repr masks it.
    """

    broker_url: str = field(default=DEFAULT_BROKER_URL, validator=_url, repr=redact_url)
    result_backend: str | None = field(default=None, validator=_url, repr=redact_url)
    queue: str = field(default=DEFAULT_QUEUE, validator=_queue)
    key_prefix: str = field(default="", validator=_key_prefix)
    visibility_timeout: float = field(default=600.0, validator=_positive("visibility_timeout"))
    max_retries: int = field(default=5, validator=_retries)
    retry_backoff: float = field(default=2.0, validator=_positive("retry_backoff"))
    retry_backoff_max: float = field(default=120.0, validator=_positive("retry_backoff_max"))
    reconcile_every: float = field(default=300.0, validator=_positive("reconcile_every"))

    @property
    def results_url(self) -> str:
        return self.result_backend or self.broker_url

    @property
    def longest_wait(self) -> float:
        """The longest a retry waits: shorter than Redis would wait for its task."""
        return min(self.retry_backoff_max, self.visibility_timeout / 2)

    @property
    def restore_interval(self) -> float:
        """How often a worker looks for tasks left behind by a dead worker."""
        return max(1.0, min(MAX_RESTORE_INTERVAL, self.visibility_timeout / 4))

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] = os.environ) -> CeleryConfig:
        """The settings' ``[celery]`` table, each value overridden by its
        ``PAYCORE_CELERY_*`` variable when set (the defaults for the rest)."""
        from_file = dict(settings.celery)
        try:
            cls(**from_file)
        except InvalidRequest as error:
            raise ConfigurationError(settings.subject, [f"celery: {error}"]) from None
        return cls.from_env(env, base=from_file)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, *, base: Mapping[str, Any] | None = None
    ) -> CeleryConfig:
        """The config the ``PAYCORE_CELERY_*`` variables set, over ``base`` (values
        already read, such as the settings file's), the defaults for the rest.

        One `ConfigurationError` names every variable that is wrong.
        """
        values: dict[str, Any] = dict(base or {})
        problems: list[str] = []
        for attribute in cls.__attrs_attrs__:
            name = _ENV_PREFIX + attribute.name.upper()
            text = env.get(name)
            if not text:
                continue
            number = _NUMBERS.get(attribute.name)
            if number is None:
                values[attribute.name] = text
                continue
            try:
                values[attribute.name] = number(text)
            except ValueError:
                problems.append(f"{name}: must be a number, not {text[:32]!r}")
        for attribute_name, value in values.items():
            try:
                cls(**{attribute_name: value})
            except InvalidRequest as error:
                problems.append(f"{_ENV_PREFIX}{attribute_name.upper()}: {error}")
        if problems:
            raise ConfigurationError("environment", sorted(problems))
        return cls(**values)


def make_celery(
    settings: Settings | None = None,
    *,
    broker_url: str | None = None,
    config: CeleryConfig | None = None,
) -> Celery:
    """A Celery app with paycore's OMS tasks, configured as the module describes.

    ``config`` defaults to `CeleryConfig.from_env`; ``broker_url`` replaces its broker
    (and the result backend, unless one is set). Workers of the app carry tasks out
    with services built from ``settings``, by default the settings file
    ``PAYCORE_CONFIG`` names, read when the first task arrives.
    """
    from celery import Celery

    if config is None:
        config = (
            CeleryConfig.from_env() if settings is None else CeleryConfig.from_settings(settings)
        )
    if broker_url is not None:
        config = evolve(config, broker_url=broker_url)
    if settings is not None and not isinstance(settings, Settings):
        raise InvalidRequest(f"settings must be paycore Settings, not {type(settings).__name__}")
    app = Celery("paycore", set_as_current=False)
    transport: dict[str, Any] = {
        "visibility_timeout": config.visibility_timeout,
        # One scan per interval: a dead worker's task comes back soon after the timeout.
        "unacked_restore_interval": config.restore_interval,
        "unacked_restore_throttle": 1,
    }
    results: dict[str, Any] = {}
    if config.key_prefix:
        transport["global_keyprefix"] = config.key_prefix
        results["global_keyprefix"] = config.key_prefix
    app.conf.update(
        broker_url=config.broker_url,
        result_backend=config.results_url,
        broker_transport_options=transport,
        result_backend_transport_options=results,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_default_queue=config.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        result_expires=RESULTS_KEPT,
        enable_utc=True,
        timezone="UTC",
        beat_schedule={
            RECONCILE: {
                "task": RECONCILE,
                "schedule": config.reconcile_every,
                # A run that could not start before the next one is due is dropped.
                "options": {"queue": config.queue, "expires": config.reconcile_every},
            }
        },
    )
    worker = WorkerServices(settings, config, load=load_settings)
    app.paycore_worker = worker
    app.task(name=CARRY_OUT, bind=True)(carry_out)
    app.task(name=RECONCILE, bind=True)(reconcile)
    _close_on_shutdown(worker)
    log.debug(
        "paycore Celery app: broker %s, queue %s",
        redact_url(config.broker_url),
        config.queue,
    )
    return app


def _close_on_shutdown(worker: WorkerServices) -> None:
    from celery import signals

    # A prefork child closes its own; a solo or threads worker closes at its shutdown.
    signals.worker_process_shutdown.connect(worker.close)
    signals.worker_shutdown.connect(worker.close)


def run_batch_on_celery(
    settings: Settings | None,
    entries: Iterable[Line | Instruction],
    *,
    reporter: Reporter | None = None,
    concurrency_limit: int | None = None,
    timeout: float | None = None,
    total: int | None = None,
    stop: threading.Event | None = None,
    grace: float | None = None,
    app: Celery | None = None,
) -> BatchSummary:
    """Enqueue ``entries`` on the Celery workers, wait for their results, summarise.

    The same contract as `paycore.oms.jobs.run_batch`: rejected lines are reported
    and never enqueued, every result goes to ``reporter``, instructions about one order
    run one after the other. At most ``concurrency_limit`` instructions are enqueued
    and unfinished at once (by default up to `paycore.oms.celery_batch.MAX_IN_FLIGHT`).
    After ``timeout`` seconds, or once ``stop`` is set, nothing more is enqueued; the
    results of what was are awaited ``grace`` seconds more (the workers still carry
    them out) and the summary says what was left. ``app`` defaults to
    ``make_celery(settings)``.
    """
    from paycore.oms.celery_batch import CeleryBatch

    return CeleryBatch(
        app if app is not None else make_celery(settings),
        reporter=reporter,
        concurrency_limit=concurrency_limit,
        timeout=timeout,
        stop=stop,
        grace=grace,
    ).run(entries, total)
