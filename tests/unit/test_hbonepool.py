"""The HBONE pool against in-memory HTTP/2 servers (reference 1.6)."""

from __future__ import annotations

import trio
import trio.testing

from components.common.h2conn import CLIENT_CONFIG, H2ClientConnection, H2ServerConnection, serve_h2
from components.common.tls import Identity
from components.common.hbonepool import HbonePool, PoolKey

SLEEP = Identity("cluster.local", "default", "sleep")
HTTPBIN = Identity("cluster.local", "default", "httpbin")
KEY = PoolKey(SLEEP, (HTTPBIN,), ("10.0.0.2", 15008), "10.0.0.1")


class Servers:
    """A connector whose every connection reaches a fresh in-memory server that answers 200 and
    echoes; records keys and keeps the server connections (to drain them)."""

    def __init__(self, nursery: trio.Nursery, max_streams: int = 100, delay: float = 0) -> None:
        self.nursery = nursery
        self.max_streams = max_streams
        self.delay = delay
        self.keys: list[PoolKey] = []
        self.servers: list[H2ServerConnection] = []

    async def handler(self, request, stream) -> None:
        await stream.respond(200)
        async for data in stream:
            await stream.send_all(data)
        await stream.send_eof()

    async def __call__(self, key: PoolKey) -> H2ClientConnection:
        self.keys.append(key)
        await trio.sleep(self.delay)
        client, server = trio.testing.memory_stream_pair()
        self.servers.append(await self.nursery.start(serve_h2, server, self.handler))
        return H2ClientConnection(client, CLIENT_CONFIG.replace(max_concurrent_streams=self.max_streams,
                                                                ping_interval=None))


async def tunnel(pool: HbonePool, key: PoolKey = KEY):
    stream = await pool.open_connect(key, "10.0.0.2:8080", [("baggage", "x")])
    status, _ = await stream.response()
    assert status == 200
    return stream


async def test_connections_are_reused_per_key():
    async with trio.open_nursery() as nursery:
        servers = Servers(nursery)
        pool = HbonePool(servers)
        await nursery.start(pool.run)
        first = await tunnel(pool)
        second = await tunnel(pool)
        assert len(servers.keys) == 1 and len(pool.connections(KEY)) == 1
        await first.send_all(b"ping")
        assert await first.receive_some() == b"ping"
        other_source = PoolKey(SLEEP, (HTTPBIN,), ("10.0.0.2", 15008), "10.0.0.9")
        other_sans = PoolKey(SLEEP, (Identity("cluster.local", "default", "x"),), ("10.0.0.2", 15008), "10.0.0.1")
        await tunnel(pool, other_source)
        await tunnel(pool, other_sans)
        assert servers.keys == [KEY, other_source, other_sans] and len(pool) == 3
        await second.aclose()
        nursery.cancel_scope.cancel()


async def test_a_full_connection_gets_a_sibling():
    async with trio.open_nursery() as nursery:
        servers = Servers(nursery, max_streams=3)
        pool = HbonePool(servers)
        await nursery.start(pool.run)
        streams = [await tunnel(pool) for _ in range(7)]
        assert [c.active_streams for c in pool.connections(KEY)] == [3, 3, 1]
        await streams[0].send_eof()
        await streams[0].aclose()
        await trio.sleep(0.01)
        await tunnel(pool)
        assert len(servers.keys) == 3
        nursery.cancel_scope.cancel()


async def test_one_connect_at_a_time_per_key():
    async with trio.open_nursery() as nursery:
        servers = Servers(nursery, delay=0.05)
        pool = HbonePool(servers)
        await nursery.start(pool.run)
        async with trio.open_nursery() as clients:
            for _ in range(10):
                clients.start_soon(tunnel, pool)
        assert len(servers.keys) == 1
        nursery.cancel_scope.cancel()


async def test_goaway_moves_new_streams_to_a_new_connection():
    async with trio.open_nursery() as nursery:
        servers = Servers(nursery)
        pool = HbonePool(servers)
        await nursery.start(pool.run)
        old = await tunnel(pool)
        nursery.start_soon(servers.servers[0].drain)
        await trio.sleep(0.01)
        new = await tunnel(pool)
        assert len(servers.keys) == 2
        await old.send_all(b"still")
        assert await old.receive_some() == b"still"
        for stream in (old, new):
            await stream.send_eof()
        nursery.cancel_scope.cancel()


async def test_connector_errors_reach_the_caller_and_later_calls_retry():
    attempts = []

    async def failing(key):
        attempts.append(key)
        raise OSError("connection refused")

    async with trio.open_nursery() as nursery:
        pool = HbonePool(failing)
        await nursery.start(pool.run)
        for _ in range(2):
            try:
                await pool.open_connect(KEY, "10.0.0.2:8080", [])
            except OSError as exc:
                assert "refused" in str(exc)
        assert len(attempts) == 2 and len(pool) == 0
        nursery.cancel_scope.cancel()


async def test_idle_connections_are_released(autojump_clock):
    async with trio.open_nursery() as nursery:
        servers = Servers(nursery)
        pool = HbonePool(servers, idle_timeout=300)
        await nursery.start(pool.run)
        stream = await tunnel(pool)
        await trio.sleep(600)
        assert len(pool) == 1  # a stream is open: not idle
        await stream.send_eof()
        await stream.receive_some()
        await stream.aclose()
        await trio.sleep(299)
        assert len(pool) == 1
        await trio.sleep(20)
        assert len(pool) == 0
        nursery.cancel_scope.cancel()
