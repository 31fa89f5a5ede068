"""A raw HTTP server on loopback that misbehaves on request, for testing error handling.

Each accepted request is answered by the next `Behaviour` in the server's script (the
last one repeats), so a test can say "reset, then answer 200" and watch a retry. It
speaks HTTP/1.1 over plain sockets, so faults are real faults on the wire, not mocks
of a client library:

- `respond(status, body)`: a normal answer;
- `hang()`: read the request, never answer (the client's read timeout fires);
- `reset()`: read the request, then reset the connection (RST);
- `truncate(status, body)`: promise a body, send half of it, close;
- `vanish()`: read the request, stop listening, never answer (later connections
  are refused: the provider went away after receiving).

`refused_address()` gives a port nothing listens on; `SaturatedListener` a port whose
accept queue is full, so connecting times out.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from attrs import frozen

__all__ = [
    "Behaviour",
    "FaultyServer",
    "SaturatedListener",
    "hang",
    "refused_address",
    "reset",
    "respond",
    "truncate",
    "vanish",
]


@frozen
class Behaviour:
    action: str  # "respond", "hang", "reset", "truncate" or "vanish"
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds to wait before answering


def respond(
    status: int = 200,
    body: bytes | str = b"{}",
    content_type: str = "application/json",
    *,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Behaviour:
    return Behaviour(
        "respond",
        status,
        body.encode() if isinstance(body, str) else body,
        content_type,
        tuple((headers or {}).items()),
        delay,
    )


def hang() -> Behaviour:
    return Behaviour("hang")


def reset() -> Behaviour:
    return Behaviour("reset")


def vanish() -> Behaviour:
    return Behaviour("vanish")


def truncate(status: int = 200, body: bytes | str = b'{"id": "x", "status": "ok"}') -> Behaviour:
    return Behaviour("truncate", status, body.encode() if isinstance(body, str) else body)


_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultyServer:
    """A loopback HTTP server following a script of behaviours, one per request.

    ``requests`` keeps the raw bytes of every request received, in order.
    """

    def __init__(self, script: Sequence[Behaviour]) -> None:
        if not script:
            raise ValueError("a FaultyServer needs at least one behaviour")
        self.script = list(script)
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._acceptor.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)
        self._sock.close()

    def _next_behaviour(self, raw: bytes) -> Behaviour:
        with self._lock:
            index = len(self.requests)
            self.requests.append(raw)
            return self.script[min(index, len(self.script) - 1)]

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self._stop.is_set():
                raw = self._read_request(conn)
                if raw is None:
                    return
                behaviour = self._next_behaviour(raw)
                if not self._act(conn, behaviour):
                    return

    def _read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv(conn)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None
            body += chunk
        return head + b"\r\n\r\n" + body

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
        return b""

    def _act(self, conn: socket.socket, behaviour: Behaviour) -> bool:
        """Carry out one behaviour; False when the connection is finished."""
        if behaviour.action == "vanish":
            self._sock.close()
        if behaviour.action in ("hang", "vanish"):
            self._stop.wait()
            return False
        if behaviour.action == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if behaviour.delay and self._stop.wait(behaviour.delay):
            return False
        reason = _REASONS.get(behaviour.status, "Status")
        extra = "".join(f"{name}: {value}\r\n" for name, value in behaviour.headers)
        head = (
            f"HTTP/1.1 {behaviour.status} {reason}\r\n"
            f"Content-Type: {behaviour.content_type}\r\n{extra}"
            f"Content-Length: {len(behaviour.body)}\r\n\r\n"
        ).encode()
        if behaviour.action == "truncate":
            conn.sendall(head + behaviour.body[: len(behaviour.body) // 2])
            return False
        conn.sendall(head + behaviour.body)
        return True


def refused_address() -> str:
    """A loopback URL on which nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class SaturatedListener:
    """A loopback port whose accept queue is full: new connections time out.

    The socket listens with a backlog of zero and never accepts; a few connections
    fill the queue, after which the kernel drops new connection attempts.
    """

    def __init__(self, fillers: int = 4) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        self._fillers: list[socket.socket] = []
        port = self._sock.getsockname()[1]
        for _ in range(fillers):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            self._fillers.append(filler)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for filler in self._fillers:
            filler.close()
        self._sock.close()
