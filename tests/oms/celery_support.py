"""Real Celery workers for the OMS tests, and a gate in front of the sandbox.

- `redis_url`: the Redis the tests use (``PAYCORE_TEST_REDIS_URL``, by default database
  15 of the local one). When it cannot be reached the test is skipped with the reason,
  or fails under ``CI=true``.
- `Deployment`: one test's deployment: a settings file naming the sandbox, the ledger's
  database, and a queue and key prefix of the test's own on Redis, so tests running at
  once never meet. `Deployment.start` runs ``celery worker`` processes (solo pool: one
  process each, so SIGKILL takes a whole worker) and waits until they consume;
  `Deployment.app` is the enqueuing side, configured alike. On `Deployment.close`
  the workers are killed and the test's keys deleted.
- `Gate`: ASGI middleware in front of the sandbox's app, set per payment to refuse its
  captures before processing (429: the gateway is unavailable), to process them and
  lose the answer (500: the outcome is unknown), to decline them (402), or to hold
  them a while; it counts the capture requests it sees per payment.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from paycore.config import Settings, load_settings, redact_url
from paycore.oms.celery import CeleryConfig, make_celery

REDIS_URL_ENV = "PAYCORE_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
# Seconds a worker may take to start consuming (two start at once on two cores).
START_TIMEOUT = 30.0

_CAPTURE_PATH = re.compile(r"/v1/payments/([^/]+)/captures")
_RECEIVED = re.compile(r"Task paycore\.oms\.carry_out\[([0-9a-f-]+)\] received")
_SUCCEEDED = re.compile(r"Task paycore\.oms\.carry_out\[([0-9a-f-]+)\] succeeded")


def redis_url() -> str:
    """The tests' Redis, reachable; otherwise a skip (a failure under ``CI=true``)."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        message = f"Redis at {redact_url(url)} (${REDIS_URL_ENV}) is not reachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


class Worker:
    """One ``celery worker`` process and its log."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def received(self) -> list[str]:
        """The ids of the carry_out tasks it received, in order."""
        return _RECEIVED.findall(self.text())

    def succeeded(self) -> set[str]:
        return set(_SUCCEEDED.findall(self.text()))

    def holding_a_task(self) -> bool:
        """Whether it received a task it has not finished (by its log)."""
        received = self.received()
        return bool(received) and received[-1] not in self.succeeded()

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement of what it holds."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class Deployment:
    """Settings, Redis keys and worker processes of one test; see the module."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        broker_url: str,
        database_url: str,
        gateway_config: Mapping[str, Any],
        visibility_timeout: float = 30.0,
        retry_backoff: float = 0.2,
        max_retries: int = 3,
    ) -> None:
        self.tmp_path = tmp_path
        tag = uuid.uuid4().hex[:12]
        self.config = CeleryConfig(
            broker_url=broker_url,
            queue=f"paycore.test.{tag}",
            key_prefix=f"paycore-test-{tag}:",
            visibility_timeout=visibility_timeout,
            retry_backoff=retry_backoff,
            retry_backoff_max=max(retry_backoff, 1.0),
            max_retries=max_retries,
        )
        self.settings_file = tmp_path / "paycore.toml"
        self.settings_file.write_text(_settings_toml(gateway_config))
        # The database URL goes by the environment: it may carry a password.
        self.env = {
            **os.environ,
            "PAYCORE_CONFIG": str(self.settings_file),
            "PAYCORE_DATABASE_URL": database_url,
            **{
                f"PAYCORE_CELERY_{name.upper()}": str(value)
                for name, value in _env_values(self.config).items()
            },
        }
        self.settings: Settings = load_settings(self.settings_file, env=self.env)
        self.app = make_celery(self.settings, config=self.config)
        self.workers: list[Worker] = []

    def start(self, count: int = 1) -> list[Worker]:
        """Start ``count`` workers at once and wait until each consumes its queue."""
        started = [self._spawn() for _ in range(count)]
        deadline = time.monotonic() + START_TIMEOUT
        for worker in started:
            while " ready." not in worker.text():
                if worker.process.poll() is not None:
                    pytest.fail(f"worker {worker.name} exited:\n{worker.text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"worker {worker.name} did not start:\n{worker.text()[-3000:]}")
                time.sleep(0.02)
        return started

    def _spawn(self) -> Worker:
        name = f"w{len(self.workers)}"
        log = self.tmp_path / f"worker-{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "paycore.oms.celery_app",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}.{self.config.queue}@%h",
            # Alone on their queue: no waiting for (or talking to) other workers.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp_path
            )
        worker = Worker(name, process, log)
        self.workers.append(worker)
        return worker

    def call(self, task: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Send ``task`` to the workers and wait for its result."""
        return self.app.send_task(task, args=list(args), kwargs=kwargs).get(timeout=timeout)

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.text()[-4000:]}" for w in self.workers)

    def close(self) -> None:
        # Killed: the test is over and nothing they hold matters now, and a warm
        # shutdown waits out the broker's poll (a second per worker).
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
        for worker in self.workers:
            worker.process.wait()
        self.app.close()
        client = redis.Redis.from_url(self.config.broker_url)
        try:
            keys = list(client.scan_iter(match=f"{self.config.key_prefix}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()


def _env_values(config: CeleryConfig) -> dict[str, Any]:
    names = ("broker_url", "queue", "key_prefix", "visibility_timeout", "max_retries")
    names += ("retry_backoff", "retry_backoff_max")
    return {name: getattr(config, name) for name in names}


def _settings_toml(gateway_config: Mapping[str, Any]) -> str:
    lines = ["[gateways.dummy]"]
    for key, value in gateway_config.items():
        if isinstance(value, Mapping):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    for key, value in gateway_config.items():
        if isinstance(value, Mapping):
            lines.append(f"[gateways.dummy.{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


# -- the gate ------------------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Any]


class Gate:
    """ASGI middleware answering some of a payment's capture requests itself.

    Rules are per payment, by the provider's payment id (the ledger's
    ``gateway_reference``): `refuse` its next captures with a 429 before the sandbox
    sees them, `lose` the answers to its captures (the sandbox processes them; the
    client gets a 500), `decline` them (402, a card decline), or `hold` them.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.captures: Counter[str] = Counter()  # capture requests seen, per payment
        self._refuse: dict[str, int] = {}
        self._lose: set[str] = set()
        self._decline: set[str] = set()
        self._hold: dict[str, float] = {}

    def refuse(self, payment: str, times: int) -> None:
        self._refuse[payment] = times

    def lose(self, payment: str) -> None:
        self._lose.add(payment)

    def decline(self, payment: str) -> None:
        self._decline.add(payment)

    def hold(self, payment: str, seconds: float) -> None:
        """Keep each of its captures ``seconds`` before the sandbox sees it."""
        self._hold[payment] = seconds

    def open(self, payment: str) -> None:
        self._hold.pop(payment, None)
        self._refuse.pop(payment, None)
        self._lose.discard(payment)
        self._decline.discard(payment)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        match = _CAPTURE_PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        payment = match[1]
        self.captures[payment] += 1
        if payment in self._hold:
            await asyncio.sleep(self._hold[payment])
        if self._refuse.get(payment, 0) > 0:
            self._refuse[payment] -= 1
            await _answer(send, 429, {"error": {"type": "rate_limit_error", "code": "busy"}})
        elif payment in self._decline:
            body = {"error": {"type": "card_error", "code": "card_declined", "message": "no"}}
            await _answer(send, 402, body)
        elif payment in self._lose:

            async def swallow(message: dict[str, Any]) -> None:
                pass

            await self.app(scope, receive, swallow)
            await _answer(send, 500, {"error": {"type": "api_error", "code": "lost"}})
        else:
            await self.app(scope, receive, send)


async def _answer(send: Send, status: int, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    if status == 429:
        headers.append((b"retry-after", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
