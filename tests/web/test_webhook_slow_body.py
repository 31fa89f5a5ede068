"""A webhook body that stalls is given up on (408) after the endpoint's body timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from paycore.web import webhooks
from tests.web.support import WebApp

PATIENCE = 3.0  # seconds the test waits for the answer


def test_a_stalled_body_is_given_up_on(
    web_app: Callable[..., WebApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BODY_TIMEOUT", PATIENCE - 1)
    app = web_app(deliver=False)
    url = urlsplit(app.webhook_url)
    with socket.create_connection((url.hostname, url.port)) as conn:
        conn.sendall(
            b"POST /webhooks/dummy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"id": '
        )
        conn.settimeout(PATIENCE + 2)
        began = time.monotonic()
        try:
            answer = conn.recv(1024)
        except TimeoutError:
            answer = None
        waited = time.monotonic() - began

    # Expected: a 408 (or the connection closed) once the body stalled for a while.
    assert answer is not None and waited < PATIENCE + 1, f"no answer after {waited:.1f} s"
