"""A merchant's slow hook runs in a worker thread: other requests are not held up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.hookspecs import hookimpl
from paycore.transactions.model import GatewayEvent
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import WebApp, deliver, on_the_page, registered, signed, start_checkout

HOOK_SECONDS = 1.0


class _SlowAudit:
    """An audit hook that writes somewhere slow (a DB, an HTTP API): synchronous code."""

    def __init__(self) -> None:
        self.started = threading.Event()

    @hookimpl
    def paycore_webhook_received(self, gateway: str, events: Sequence[GatewayEvent]) -> None:
        self.started.set()
        time.sleep(HOOK_SECONDS)


def test_a_slow_webhook_received_hook_does_not_stall_other_requests(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
) -> None:
    app = web_app(deliver=False)
    started = start_checkout(services, app)
    on_the_page(http, started, "approve")
    body = encode_json(dict(paycore_dummy_sandbox.events[-1]))
    audit = _SlowAudit()

    with registered(audit), ThreadPoolExecutor(1) as pool:
        delivery = pool.submit(deliver, http, app, body, signed(paycore_dummy_sandbox, body))
        assert audit.started.wait(5)
        began = time.perf_counter()
        probe = http.get(f"{app.url}/health")
        probe_seconds = time.perf_counter() - began
        assert delivery.result().status_code == 200

    assert probe.status_code == 200
    # The probe needs a few ms; were the hook on the event loop, it would wait for it.
    assert probe_seconds < HOOK_SECONDS / 2, f"/health took {probe_seconds:.2f} s"
