"""``GET /health``: whether this app can take webhooks now, for load balancers and probes.

200 ``{"status": "ok", "store": "ok", "gateways": ["dummy", …]}`` when the ledger's
database answers a trivial query on its tables (in a worker thread, within
`STORE_TIMEOUT` seconds) and every configured gateway is loaded; else 503 with the
part that failed (``"store": "unreachable"``, ``"gateways_missing": [...]``). It asks
no provider: a provider being down is not this app's failure. One query at a time:
probes arriving while the database is slow share the one running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from paycore.transactions.store import payments
from paycore.web.request_log import request_log

if TYPE_CHECKING:
    from paycore.transactions.async_services import AsyncPaymentTransactionServices

__all__ = ["STORE_TIMEOUT", "HealthEndpoint"]

STORE_TIMEOUT = 2.0  # seconds the store has to answer


class HealthEndpoint:
    """Answers probes; ``configured`` are the gateway names the settings list."""

    def __init__(
        self, services: AsyncPaymentTransactionServices, configured: Collection[str]
    ) -> None:
        self.services = services
        self.configured = tuple(configured)
        self._probe: asyncio.Future[None] | None = None

    async def check(self, request: Request) -> Response:
        entry = request_log(request)
        loaded = sorted(self.services.drivers)
        missing = sorted(set(self.configured) - set(loaded))
        failure = await self._store_failure()
        store_ok = failure is None
        body: dict[str, Any] = {
            "status": "ok",
            "store": "ok" if store_ok else "unreachable",
            "gateways": loaded,
        }
        if missing or not loaded:
            body["gateways_missing"] = missing
        if store_ok and not missing and loaded:
            entry.quiet = True
            return JSONResponse(body)
        body["status"] = "unavailable"
        entry.reason = "store_unreachable" if not store_ok else "gateways_missing"
        entry.error = failure
        return JSONResponse(body, status_code=503)

    async def _store_failure(self) -> str | None:
        """None when the store answered; else the kind of failure, for the log."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(asyncio.to_thread(self._query))
            # Seen even when every probe gave up waiting for it.
            self._probe.add_done_callback(lambda probe: probe.cancelled() or probe.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), STORE_TIMEOUT)
        except TimeoutError:
            return "timeout"
        except Exception as error:
            return type(error).__name__
        return None

    def _query(self) -> None:
        with self.services.store.reading() as session:
            session.connection.execute(sa.select(payments.c.id).limit(1)).all()
