"""Run a sandbox's ASGI app with uvicorn: in a background thread, or in the foreground.

`SandboxServer` is what tests and the demo use::

    with SandboxServer(sandbox.app()) as server:
        gateway = DummyGateway.from_config(sandbox.gateway_config(server.url))

It binds loopback on a free port, returns once the server accepts connections and
stops it on exit. It leaves the host process's logging configuration alone.

`serve_forever` is ``paycore sandbox serve``: listen first with `listen_on` (a port
in use is an `OSError` there, before anything is printed), then serve in the
foreground with uvicorn's logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["SandboxServer", "base_url", "listen_on", "serve_forever"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
# Seconds a request still running at shutdown (a stalled one) may take before it is cancelled.
_GRACEFUL_SHUTDOWN = 1
_BACKLOG = 2048  # uvicorn's
# In the foreground (``serve_forever``): seconds requests still running at shutdown get,
# and how many connections are served at once (more are answered 503).
GRACEFUL_SHUTDOWN_SECONDS = 10
CONCURRENCY_LIMIT = 1000


class _Server(uvicorn.Server):
    async def main_loop(self) -> None:
        # uvicorn looks for a stop request every 0.1 s; tests start and stop a sandbox
        # per test, so look every 0.01 s (on_tick still refreshes the Date header).
        counter = 0
        while not await self.on_tick(counter):
            await asyncio.sleep(0.01)
            counter = (counter + 1) % 864000


class SandboxServer:
    """A uvicorn server for ``app`` in a background thread; a context manager.

    ``port=0`` picks a free port; `url` tells which (``http://127.0.0.1:54321``).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=access_log,
            log_level=log_level,
            log_config=None,
            lifespan="auto",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server was not started; use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return base_url(self.host, self.port)

    def start(self) -> SandboxServer:
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        sock = listen_on(self.host, self._requested_port)
        self._socket = sock
        self._port = sock.getsockname()[1]
        self._server = _Server(self._config)
        self._thread = threading.Thread(
            target=self._run,
            args=(self._server, sock),
            name=f"sandbox-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_started()
        return self

    def request_stop(self) -> None:
        """Ask the server to stop, without waiting (to stop several at once)."""
        if self._server is not None:
            self._server.should_exit = True

    def stop(self) -> None:
        """Stop and wait until the server has shut down. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        # uvicorn exits the process when the app's startup fails; here the thread
        # ends instead, and `start` reports it.
        with contextlib.suppress(SystemExit):
            server.run(sockets=[sock])

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the sandbox server failed to start; see the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start in {_START_TIMEOUT:g} s")
            time.sleep(0.005)

    def __repr__(self) -> str:
        state = self.url if self._thread is not None else "stopped"
        return f"<SandboxServer {state}>"


def listen_on(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (port 0 picks a free one), to serve on.

    Connections queue from the moment it returns, so its address may be announced at
    once. Raises `OSError` when the address cannot be bound (the port is in use, the
    host is not an address of this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP, and with Nagle on every answer waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve_forever(
    app: ASGIApp,
    sock: socket.socket,
    *,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve ``app`` on the bound ``sock`` in the foreground until interrupted (Ctrl-C).

    Uses uvicorn's logging; closes ``sock`` when done.
    """
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        # A stalled client must not keep a stopping server (and its app's shutdown) waiting.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        limit_concurrency=CONCURRENCY_LIMIT,
    )
    with sock, contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
