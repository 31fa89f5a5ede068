"""A merchant's webhook endpoint on loopback: records every delivery as it arrived.

What a sandbox delivers to when no real merchant is listening: `paycore demo`, and
tests (the ``paycore_webhook_receiver`` fixture). Serve `WebhookReceiver.app()` with a
`SandboxServer`, set `WebhookReceiver.base_url` to the server's URL, and point a
sandbox's ``webhook_url`` at `WebhookReceiver.url`. The first ``fail_first``
deliveries are answered ``failure_status``, to exercise the sender's retries.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from attrs import Factory, frozen
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from paycore.transactions.model import WebhookRequest

__all__ = ["ReceivedWebhook", "WebhookReceiver"]

PATH = "/webhooks"


@frozen(kw_only=True)
class ReceivedWebhook:
    """One delivery: raw body bytes, lower-case headers and the query string's
    parameters (for providers that call back with GET), untouched."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    answered: int  # the status code the receiver replied with
    query: Mapping[str, str] = Factory(dict)

    def as_request(self) -> WebhookRequest:
        """The delivery as the core hands it to a plugin's ``handle_webhook``."""
        return WebhookRequest(
            method=self.method,
            headers=self.headers,
            body=self.body,
            query=self.query,
            received_at=self.received_at,
        )


class WebhookReceiver:
    """Records deliveries posted to ``PATH``; thread-safe to read while the server runs."""

    def __init__(self, *, fail_first: int = 0, failure_status: int = 500) -> None:
        self.fail_first = fail_first
        self.failure_status = failure_status
        self.base_url: str | None = None  # set once served
        self._received: list[ReceivedWebhook] = []
        self._condition = threading.Condition()

    @property
    def url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the webhook receiver is not served yet")
        return self.base_url + PATH

    @property
    def received(self) -> tuple[ReceivedWebhook, ...]:
        with self._condition:
            return tuple(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> tuple[ReceivedWebhook, ...]:
        """Wait until ``count`` deliveries arrived; return them all (maybe fewer on timeout)."""
        with self._condition:
            self._condition.wait_for(lambda: len(self._received) >= count, timeout)
            return tuple(self._received)

    def app(self) -> Starlette:
        return Starlette(routes=[Route(PATH, self._receive, methods=["POST", "GET"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._condition:
            failing = len(self._received) < self.fail_first
            status = self.failure_status if failing else 200
            self._received.append(
                ReceivedWebhook(
                    method=request.method,
                    headers=dict(request.headers),
                    body=body,
                    query=dict(request.query_params),
                    received_at=datetime.now(UTC),
                    answered=status,
                )
            )
            self._condition.notify_all()
        return JSONResponse({"received": not failing}, status_code=status)
