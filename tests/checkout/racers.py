"""Processes that complete one checkout at once: each a deployment of its own.

`complete_when_released` builds its own `Store`, dummy gateway, services and
`CheckoutService` from a database URL and a gateway config, waits at a barrier with
the others, completes the checkout, and reports what it got. Its hooks write each
"checkout finished" notification to a file, one line each, so the test can count them
across processes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paycore.checkout import Checkout, CheckoutService
from paycore.gateways.dummy import DummyGateway
from paycore.hookspecs import hookimpl
from paycore.plugins import new_hook_manager
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

BARRIER_TIMEOUT = 120.0


@dataclass(frozen=True)
class CompleteJob:
    database_url: str
    gateway_config: dict[str, Any]
    checkout_id: str
    confirm: bool
    notifications: str  # a file: one line per "checkout finished" hook call


class _Recorder:
    def __init__(self, path: str) -> None:
        self.path = path

    @hookimpl
    def paycore_checkout_finished(self, checkout: Checkout) -> None:
        line = json.dumps({"checkout": checkout.id, "status": checkout.status, "pid": os.getpid()})
        with Path(self.path).open("a") as file:
            file.write(line + "\n")


def complete_when_released(job: CompleteJob, barrier: Any, results: Any) -> None:
    store = Store.connect(job.database_url)
    manager = new_hook_manager(load_entry_points=False)
    manager.register(_Recorder(job.notifications))
    gateway = DummyGateway.from_config(job.gateway_config)
    with PaymentTransactionServices(store, {"dummy": gateway}, hooks=manager.hook) as services:
        checkout = CheckoutService(services)
        checkout.get(job.checkout_id)  # connected and warm before the race
        barrier.wait(BARRIER_TIMEOUT)
        try:
            done = checkout.complete(job.checkout_id, confirm=job.confirm)
            results.put({"status": str(done.status), "order_id": done.order_id})
        except Exception as error:  # reported to the test, which fails on it
            results.put({"error": f"{type(error).__name__}: {error}"})
