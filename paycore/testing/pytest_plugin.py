"""paycore's pytest plugin (entry point ``pytest11: paycore``): sandboxes as fixtures.

- ``sandbox_server``: a factory; ``sandbox_server(DummySandbox(...))`` serves a
  sandbox (or any ASGI app) on loopback and returns the running `SandboxServer`;
  each server is asked to stop after the test (new connections are refused within
  ~0.1 s) and awaited at the end of the session.
- ``webhook_receiver``: a served `WebhookReceiver` (its ``url`` is ready to use).
- ``dummy_sandbox``, ``dummy_server``, ``dummy_gateway``: the dummy provider,
  served, and a `DummyGateway` configured for it. Override ``dummy_sandbox`` in a
  test module to change how the sandbox is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.types import ASGIApp

from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.sandbox.base import Sandbox
from paycore.sandbox.server import SandboxServer
from paycore.testing.webhook_receiver import WebhookReceiver

ServeSandbox = Callable[[Sandbox | ASGIApp], SandboxServer]


@pytest.fixture(scope="session")
def _stopping_sandbox_servers() -> Iterator[list[SandboxServer]]:
    # uvicorn takes ~0.1 s to shut down; servers asked to stop after a test finish
    # shutting down while the next tests run, and are awaited here at the end.
    stopping: list[SandboxServer] = []
    yield stopping
    for server in stopping:
        server.stop()


@pytest.fixture
def sandbox_server(_stopping_sandbox_servers: list[SandboxServer]) -> Iterator[ServeSandbox]:
    """Serve sandboxes for the duration of one test."""
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
        _stopping_sandbox_servers.extend(servers)


@pytest.fixture
def webhook_receiver(sandbox_server: ServeSandbox) -> WebhookReceiver:
    receiver = WebhookReceiver()
    receiver.base_url = sandbox_server(receiver.app()).url
    return receiver


@pytest.fixture
def dummy_sandbox() -> DummySandbox:
    return DummySandbox(seed=0)


@pytest.fixture
def dummy_server(sandbox_server: ServeSandbox, dummy_sandbox: DummySandbox) -> SandboxServer:
    return sandbox_server(dummy_sandbox)


@pytest.fixture
def dummy_gateway(dummy_sandbox: DummySandbox, dummy_server: SandboxServer) -> DummyGateway:
    gateway = DummyGateway.from_config(dummy_sandbox.gateway_config(dummy_server.url))
    assert isinstance(gateway, DummyGateway)
    return gateway
