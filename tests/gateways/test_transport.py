"""The sharded HTTP transport of the sync drivers, against a real loopback server."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import httpx
import pytest

from paycore.errors import InvalidRequest
from paycore.gateways.transport import AsyncShardedTransport, ShardedTransport
from paycore.testing.loopback import FaultyServer, respond


def _in_threads(count: int, work: object) -> None:
    assert callable(work)
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)


def test_threads_take_the_pools_in_turn_and_keep_theirs() -> None:
    transport = ShardedTransport(connections=8, shards=4)
    seen: list[set[int]] = []
    lock = threading.Lock()
    together = threading.Barrier(8)  # all alive at once: no thread reused

    def work() -> None:
        together.wait(timeout=5)
        mine = {id(transport._pool()) for _ in range(5)}
        together.wait(timeout=5)
        with lock:
            seen.append(mine)

    _in_threads(8, work)
    assert len(seen) == 8
    assert all(len(pools) == 1 for pools in seen)  # a thread keeps its pool
    per_pool = [sum(1 for pools in seen if id(pool) in pools) for pool in transport.pools]
    assert per_pool == [2, 2, 2, 2]
    transport.close()


def test_connections_are_a_total_shared_by_the_pools() -> None:
    with FaultyServer([respond(200, b"{}", delay=0.05)]) as server:
        transport = ShardedTransport(connections=8, shards=4)
        statuses: list[int] = []

        with httpx.Client(transport=transport) as client:

            def work() -> None:
                for _ in range(4):
                    statuses.append(client.get(f"{server.url}/ping").status_code)

            _in_threads(16, work)
        assert statuses == [200] * 64
        # Two connections per pool: 16 threads at once make no more than 8 in all,
        # and more than one pool's two.
        assert 2 < len(server._threads) <= 8


def test_close_closes_the_connections_of_every_pool() -> None:
    with FaultyServer([respond(200, b"{}", delay=0.02)]) as server:
        transport = ShardedTransport(connections=4, shards=4)
        client = httpx.Client(transport=transport)

        def work() -> None:
            client.get(f"{server.url}/ping")

        _in_threads(4, work)
        assert len(server._threads) == 4
        assert any(thread.is_alive() for thread in server._threads)  # kept alive
        client.close()
        deadline = time.monotonic() + 5
        while any(t.is_alive() for t in server._threads) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(thread.is_alive() for thread in server._threads)


def test_async_requests_go_to_the_pools_in_turn_within_the_total() -> None:
    with FaultyServer([respond(200, b"{}", delay=0.05)]) as server:
        transport = AsyncShardedTransport(connections=8, shards=4)

        async def main() -> list[int]:
            async with httpx.AsyncClient(transport=transport) as client:
                answers = await asyncio.gather(
                    *(client.get(f"{server.url}/ping") for _ in range(32))
                )
            return [answer.status_code for answer in answers]

        assert asyncio.run(main()) == [200] * 32
        # 32 at once: each pool made its two connections, and no more.
        assert len(server._threads) == 8
        deadline = time.monotonic() + 5  # closing the client closed them all
        while any(t.is_alive() for t in server._threads) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(thread.is_alive() for thread in server._threads)


def test_fewer_connections_than_pools_makes_one_pool_per_connection() -> None:
    transport = ShardedTransport(connections=3, shards=16)
    assert len(transport.pools) == 3
    transport.close()


def test_the_pools_share_one_tls_context_built_from_the_options_given() -> None:
    # Each pool loading the CA bundle itself cost a driver 0.4 s of CPU to build.
    for transport in (ShardedTransport(), AsyncShardedTransport()):
        contexts = {id(pool._pool._ssl_context) for pool in transport.pools}
        assert len(transport.pools) == 16
        assert len(contexts) == 1
    unverified = ShardedTransport(shards=2, verify=False)
    (context,) = {pool._pool._ssl_context for pool in unverified.pools}
    assert context is not None
    assert context.verify_mode is ssl.CERT_NONE
    unverified.close()


@pytest.mark.parametrize(
    "options",
    [
        {"connections": 0},
        {"shards": -1},
        {"shards": True},
        {"connections": 2.5},
        {"limits": httpx.Limits(max_connections=4)},
    ],
)
def test_bad_sizes_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        ShardedTransport(**options)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        AsyncShardedTransport(**options)  # type: ignore[arg-type]
