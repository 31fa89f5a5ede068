"""SandboxServer: uvicorn in a background thread, on loopback."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from paycore.sandbox.server import SandboxServer, base_url


async def hello(request):
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])


def test_the_server_listens_on_a_free_loopback_port_until_it_stops(http):
    with SandboxServer(APP) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert http.get(server.url).text == "hello"

    with pytest.raises(httpx.ConnectError):
        http.get(server.url, timeout=1)


def test_two_servers_run_side_by_side(http, paycore_sandbox_server):
    first, second = paycore_sandbox_server(APP), paycore_sandbox_server(APP)

    assert first.port != second.port
    assert http.get(second.url).text == http.get(first.url).text == "hello"


def test_a_port_in_use_is_reported_at_start(paycore_sandbox_server):
    taken = paycore_sandbox_server(APP).port
    with pytest.raises(OSError, match="in use"):
        SandboxServer(APP, port=taken).start()


def test_the_url_is_unknown_before_the_server_starts():
    with pytest.raises(RuntimeError, match="not started"):
        _ = SandboxServer(APP).url


def test_a_server_that_fails_to_start_says_so():
    @asynccontextmanager
    async def broken_lifespan(app):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    app = Starlette(lifespan=broken_lifespan)
    with pytest.raises(RuntimeError, match="failed to start"):
        SandboxServer(app).start()


def test_an_ipv6_host_is_bracketed_in_the_url():
    assert base_url("::1", 8100) == "http://[::1]:8100"
    assert base_url("127.0.0.1", 8100) == "http://127.0.0.1:8100"
