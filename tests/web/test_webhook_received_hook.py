"""``paycore_webhook_received``: once per delivery whose events were stored, after commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest

from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.json_codec import encode_json
from paycore.hookspecs import hookimpl
from paycore.transactions.model import GatewayEvent
from paycore.transactions.services import PaymentTransactionServices
from tests.web.support import WebApp, deliver, on_the_page, registered, signed, start_checkout


class _Received:
    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    @hookimpl
    def paycore_webhook_received(self, gateway: str, events: Sequence[GatewayEvent]) -> None:
        self.seen.append((gateway, tuple(event.event_id for event in events)))


@pytest.fixture
def received() -> Iterator[list[tuple[str, tuple[str, ...]]]]:
    recorder = _Received()
    with registered(recorder):
        yield recorder.seen


def test_a_delivery_is_reported_once_and_its_repeats_not_at_all(
    web_app: Callable[..., WebApp],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    received: list[tuple[str, tuple[str, ...]]],
) -> None:
    app = web_app(deliver=False)
    started = start_checkout(services, app)
    on_the_page(http, started, "approve")
    event = dict(paycore_dummy_sandbox.events[-1])
    body = encode_json(event)

    for _ in range(3):
        assert deliver(http, app, body, signed(paycore_dummy_sandbox, body)).status_code == 200
    forged = deliver(http, app, body, {"Dummy-Signature": "t=1,v1=00"})

    assert forged.status_code == 400
    assert received == [("dummy", (event["id"],))]
