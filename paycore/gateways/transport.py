"""The HTTP transport of the sync drivers: httpx's own, split into a few small pools.

httpx's connection pool (httpcore's) matches waiting requests to connections by
scanning every connection, on every request and every release, under one lock; each
scan also polls the idle sockets. Its cost per request grows with the connections
times the threads waiting, so a pool of 64 connections shared by 64 threads spends
more of the interpreter on bookkeeping than on HTTP: bare requests from 64 threads to
a loopback server took about 2.3 ms of CPU each through one pool of 64, and 0.6 ms
through 16 pools of 4 (the baseline of ``bench/oms_batch.py`` measures it).

`ShardedTransport` keeps the same connections in ``shards`` ordinary
`httpx.HTTPTransport` pools, each with its share of the limits. A thread is given a
shard the first time it sends (round robin) and keeps it, so the threads spread
evenly and each pool only ever sees a few of them. The pools share one TLS context:
each would otherwise load the CA bundle anew (25 ms of CPU apiece, 0.4 s for a
driver's 16 pools, paid by every process that builds one). `AsyncShardedTransport` does the
same for `httpx.AsyncClient` (whose pool suffers worse: 7.8 ms of CPU per request
from 64 tasks through one pool, 1.0 ms through 16), handing requests to its pools in
turn. Everything else (TLS, HTTP/1.1 keep-alive, timeouts, errors) is httpx's,
unchanged.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import httpx

from paycore.errors import InvalidRequest

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_SHARDS",
    "AsyncShardedTransport",
    "ShardedTransport",
]

# Connections kept alive, in all: a driver's threads rarely exceed this many at once.
DEFAULT_CONNECTIONS = 64
# Pools: past about four threads per pool, the pool's bookkeeping starts to show.
DEFAULT_SHARDS = 16


class ShardedTransport(httpx.BaseTransport):
    """``shards`` `httpx.HTTPTransport` pools sharing ``connections`` between them.

    Every connection is kept alive (gateways are a few hosts, called again and
    again). ``options`` go to each pool's `httpx.HTTPTransport` (``verify``, ``cert``,
    ``retries`` …); ``limits`` is not among them: give ``connections`` instead.
    Thread-safe; `close` closes every pool.
    """

    def __init__(
        self,
        *,
        connections: int = DEFAULT_CONNECTIONS,
        shards: int = DEFAULT_SHARDS,
        **options: Any,
    ) -> None:
        shards, limits = _split(connections, shards, options)
        options = _one_tls_context(options)
        self.pools = tuple(httpx.HTTPTransport(limits=limits, **options) for _ in range(shards))
        self._assigned = threading.local()
        self._next = itertools.count()
        self._counting = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pool().handle_request(request)

    def close(self) -> None:
        for pool in self.pools:
            pool.close()

    def _pool(self) -> httpx.HTTPTransport:
        shard: int | None = getattr(self._assigned, "shard", None)
        if shard is None:
            with self._counting:
                shard = next(self._next) % len(self.pools)
            self._assigned.shard = shard
        return self.pools[shard]


class AsyncShardedTransport(httpx.AsyncBaseTransport):
    """``shards`` `httpx.AsyncHTTPTransport` pools sharing ``connections``; requests go
    to the pools in turn. As `ShardedTransport` otherwise; for one event loop."""

    def __init__(
        self,
        *,
        connections: int = DEFAULT_CONNECTIONS,
        shards: int = DEFAULT_SHARDS,
        **options: Any,
    ) -> None:
        shards, limits = _split(connections, shards, options)
        options = _one_tls_context(options)
        self.pools = tuple(
            httpx.AsyncHTTPTransport(limits=limits, **options) for _ in range(shards)
        )
        self._next = itertools.count()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self.pools[next(self._next) % len(self.pools)]
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def _split(connections: int, shards: int, options: dict[str, Any]) -> tuple[int, httpx.Limits]:
    """How many pools, and each one's limits, for ``connections`` over ``shards``."""
    for name, value in (("connections", connections), ("shards", shards)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{name} must be a positive integer")
    if "limits" in options:
        raise InvalidRequest("give connections, not limits: every connection is kept alive")
    shards = min(shards, connections)
    each = math.ceil(connections / shards)
    return shards, httpx.Limits(max_connections=each, max_keepalive_connections=each)


def _one_tls_context(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``verify`` (and ``cert``) made into one TLS context, built as
    each pool would build its own, for every pool to share."""
    shared = dict(options)
    tls = {"verify": shared.pop("verify", True), "trust_env": shared.get("trust_env", True)}
    if "cert" in shared:
        tls["cert"] = shared.pop("cert")
    shared["verify"] = httpx.create_ssl_context(**tls)
    return shared
