"""A request framed both by Content-Length and chunked is refused and its connection closed
(RFC 9112 §6.1), so bytes after its body are never served as another request."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.web.support import WebApp


def test_a_request_with_content_length_and_chunked_closes_the_connection(
    web_app: Callable[..., WebApp], web_log: Callable[[], list[dict[str, Any]]]
) -> None:
    app = web_app(deliver=False)
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = (
        b"POST /webhooks/dummy HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
    )
    url = urlsplit(app.url)
    with socket.create_connection((url.hostname, url.port)) as conn:
        conn.sendall(raw)
        conn.settimeout(0.5)
        got = b""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            got += chunk

    answers = got.count(b"HTTP/1.1 ")
    served = [" ".join(line["message"].split(" ")[:3]) for line in web_log()]
    assert (answers, served) == (1, ["POST /webhooks/dummy 400"]), (answers, served)
