"""The dummy provider's sandbox in a process of its own, for the benchmarks.

A separate process, as in production: the sandbox's work does not share the
benchmark's interpreter (nor its GIL), so what is measured is the client side.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sandbox_process(webhook_url: str | None = None) -> Iterator[dict[str, Any]]:
    """`paycore sandbox serve dummy` on a free loopback port, delivering its webhooks to
    ``webhook_url`` when given; yields the gateway config."""
    command = [sys.executable, "-m", "paycore", "sandbox", "serve", "dummy", "--port", "0"]
    if webhook_url is not None:
        command += ["--webhook-url", webhook_url]
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("webhook_secret"):
                break
        snippet = "".join(lines[lines.index("[gateways.dummy]\n") :])
        yield dict(tomllib.loads(snippet)["gateways"]["dummy"])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
