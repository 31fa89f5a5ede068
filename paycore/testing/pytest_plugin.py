"""paycore's pytest plugin (entry point ``pytest11: paycore``): sandboxes as fixtures.

pytest loads it into every project where paycore is installed, so every fixture is
named ``paycore_…`` (never shadowing a project's own ``sandbox_server``), and the
heavy modules (uvicorn, starlette, the sandboxes) are imported only when a test asks
for a fixture.

- ``paycore_sandbox_server``: a factory; ``paycore_sandbox_server(DummySandbox(...))``
  serves a sandbox (or any ASGI app) on a free loopback port and returns the running
  `paycore.sandbox.SandboxServer` (``.url``). After the test each sandbox stops
  delivering webhooks and each server is asked to stop (new connections are refused
  within ~0.1 s); they are awaited at the end of the session.
- ``paycore_webhook_receiver``: a served `paycore.sandbox.WebhookReceiver`, a
  merchant endpoint recording every delivery; point a sandbox's ``webhook_url`` at
  its ``url``.
- ``paycore_dummy_sandbox``: a `DummySandbox` (seeded, so its ids repeat). Override
  it in a test module or conftest to build the sandbox differently (webhooks, faults).
- ``paycore_dummy_server``: ``paycore_dummy_sandbox``, served.
- ``paycore_dummy_gateway``: a `DummyGateway` configured for ``paycore_dummy_server``.

A client talking to these servers should be built with ``trust_env=False``, so a
proxy set in the environment (``HTTP_PROXY``) cannot capture loopback traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeAlias

import pytest

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from paycore.gateways.dummy import DummyGateway
    from paycore.gateways.dummy_sandbox import DummySandbox
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer
    from paycore.sandbox.webhook_receiver import WebhookReceiver

# What ``paycore_sandbox_server`` gives: serve a `Sandbox` or an ASGI app.
ServeSandbox: TypeAlias = "Callable[[Sandbox | ASGIApp], SandboxServer]"


@pytest.fixture(scope="session")
def _paycore_stopping_servers() -> Iterator[list[SandboxServer]]:
    # uvicorn takes ~0.1 s to shut down; servers asked to stop after a test finish
    # shutting down while the next tests run, and are awaited here at the end.
    stopping: list[SandboxServer] = []
    yield stopping
    for server in stopping:
        server.stop()


@pytest.fixture
def paycore_sandbox_server(
    _paycore_stopping_servers: list[SandboxServer],
) -> Iterator[ServeSandbox]:
    """Serve sandboxes (or ASGI apps) on loopback for the duration of one test."""
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer

    servers: list[SandboxServer] = []
    sandboxes: list[Sandbox] = []

    def serve(target: Sandbox | ASGIApp) -> SandboxServer:
        if isinstance(target, Sandbox):
            sandboxes.append(target)
            target = target.app()
        server = SandboxServer(target).start()
        servers.append(server)
        return server

    try:
        yield serve
    finally:
        for sandbox in sandboxes:
            sandbox.close()
        for server in servers:
            server.request_stop()
        _paycore_stopping_servers.extend(servers)


@pytest.fixture
def paycore_webhook_receiver(paycore_sandbox_server: ServeSandbox) -> WebhookReceiver:
    """A served merchant endpoint recording every webhook delivery."""
    from paycore.sandbox.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


@pytest.fixture
def paycore_dummy_sandbox() -> DummySandbox:
    """The dummy provider's sandbox, seeded; override to build it differently."""
    from paycore.gateways.dummy_sandbox import DummySandbox

    return DummySandbox(seed=0)


@pytest.fixture
def paycore_dummy_server(
    paycore_sandbox_server: ServeSandbox, paycore_dummy_sandbox: DummySandbox
) -> SandboxServer:
    """``paycore_dummy_sandbox``, served on loopback."""
    return paycore_sandbox_server(paycore_dummy_sandbox)


@pytest.fixture
def paycore_dummy_gateway(
    paycore_dummy_sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> DummyGateway:
    """A `DummyGateway` configured for ``paycore_dummy_server``."""
    from paycore.gateways.dummy import DummyGateway

    gateway = DummyGateway.from_config(
        paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    )
    assert isinstance(gateway, DummyGateway)
    return gateway
