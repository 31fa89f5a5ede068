"""A `Sandbox` delivering to several webhook targets, each with its own signer, and the
middleware hook around its routes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.sandbox import FaultPlan, WebhookReceiver
from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET, Sandbox


class Stamp:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-stamp", b"1")]}
            await send(message)

        await self.app(scope, receive, stamped)


class TargetedSandbox(Sandbox):
    """Events name their targets in ``to`` (all targets when absent)."""

    name = "targeted"

    def routes(self) -> list:
        return [Route("/ping", lambda request: JSONResponse({"ok": True}))]

    def middleware(self) -> list[Middleware]:
        return [Middleware(Stamp)]

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        return {"Signed-By": "default"}

    def webhook_targets(self, event: Mapping[str, Any]) -> Iterable[str]:
        return event.get("to") or super().webhook_targets(event)


def signer(name: str):
    return lambda body: {"Signed-By": name}


@pytest.fixture
def other_receiver(paycore_sandbox_server) -> WebhookReceiver:
    receiver = WebhookReceiver()
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


def test_each_target_gets_its_copy_signed_its_own_way(paycore_webhook_receiver, other_receiver):
    sandbox = TargetedSandbox(webhook_url=paycore_webhook_receiver.url)
    sandbox.add_webhook_target("we_2", other_receiver.url, sign=signer("we_2"))

    sandbox.emit({"id": "evt_1"})
    sandbox.emit({"id": "evt_2", "to": ["we_2"]})

    assert sandbox.wait_for_webhooks(5)
    default_copy = [json.loads(d.body)["id"] for d in paycore_webhook_receiver.received]
    assert default_copy == ["evt_1"]
    assert [d.headers["signed-by"] for d in paycore_webhook_receiver.received] == ["default"]
    assert [
        (json.loads(d.body)["id"], d.headers["signed-by"]) for d in other_receiver.received
    ] == [
        ("evt_1", "we_2"),
        ("evt_2", "we_2"),
    ]
    assert {a.url for a in sandbox.webhook_attempts} == {
        paycore_webhook_receiver.url,
        other_receiver.url,
    }
    assert [e["id"] for e in sandbox.events] == ["evt_1", "evt_2"]
    sandbox.close()


def test_a_removed_target_gets_nothing_more_and_its_attempts_stay(paycore_webhook_receiver):
    sandbox = TargetedSandbox(webhook_url=paycore_webhook_receiver.url)
    sandbox.emit({"id": "evt_1"})
    assert sandbox.wait_for_webhooks(5)

    sandbox.remove_webhook_target(DEFAULT_WEBHOOK_TARGET)
    sandbox.remove_webhook_target("never_added")
    sandbox.emit({"id": "evt_2"})

    assert sandbox.wait_for_webhooks(5)
    assert [json.loads(d.body)["id"] for d in paycore_webhook_receiver.received] == ["evt_1"]
    assert [a.event_id for a in sandbox.webhook_attempts] == ["evt_1"]


def test_adding_a_target_under_a_used_name_replaces_it(paycore_webhook_receiver, other_receiver):
    sandbox = TargetedSandbox()
    sandbox.add_webhook_target("we_1", paycore_webhook_receiver.url, sign=signer("old"))
    sandbox.add_webhook_target("we_1", other_receiver.url, sign=signer("new"))

    sandbox.emit({"id": "evt_1"})

    assert sandbox.wait_for_webhooks(5)
    assert paycore_webhook_receiver.received == ()
    assert [d.headers["signed-by"] for d in other_receiver.received] == ["new"]
    sandbox.close()


def test_faults_reach_targets_added_later(paycore_webhook_receiver):
    sandbox = TargetedSandbox(faults=FaultPlan(webhook_next=("duplicate",)))
    sandbox.add_webhook_target("we_1", paycore_webhook_receiver.url, sign=signer("we_1"))

    sandbox.emit({"id": "evt_1"})

    assert len(paycore_webhook_receiver.wait_for(2)) == 2
    sandbox.close()


def test_the_middleware_wraps_every_route(paycore_sandbox_server, http: httpx.Client):
    url = paycore_sandbox_server(TargetedSandbox()).url

    assert http.get(url + "/ping").headers["x-stamp"] == "1"
    assert http.get(url + "/_sandbox/faults").headers["x-stamp"] == "1"
