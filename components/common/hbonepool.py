"""Pooled HBONE connections (ztunnel's `WorkloadHBONEPool`): one pool per ztunnel pod proxy, one
per waypoint.

Connections are keyed by (source identity, expected destination identities, destination
`ip:15008`, source IP): the source IP is part of the key because the source is spoofed, so
tunnels of two clients never share a TCP connection they should not. A connection is reused until
it holds `max_streams` streams (100) or stops taking new ones (GOAWAY, closed); then another is
opened for the same key. Only one connection per key is being established at a time; concurrent
requesters wait for it and share it. A connection nobody used for `idle_timeout` is closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import trio

from components.common.h2conn import ConnectionUnavailable, H2ClientConnection, H2Stream
from components.common.addresses import Address, format_address
from components.common.tls import Identity

log = logging.getLogger("ztunnel.pool")

Headers = list[tuple[str, str]]
SWEEP_INTERVAL = 10.0
POOL_IDLE_TIMEOUT = 300.0          # ztunnel's POOL_UNUSED_RELEASE_TIMEOUT


@dataclass(frozen=True)
class PoolKey:
    src_id: Identity
    dst_ids: tuple[Identity, ...]
    dst: Address
    src_ip: str

    def __str__(self) -> str:
        ids = ",".join(str(i) for i in self.dst_ids)
        return f"{self.src_ip}({self.src_id})->{format_address(self.dst)}[{ids}]"


Connector = Callable[[PoolKey], Awaitable[H2ClientConnection]]


class HbonePool:
    """Run with `await nursery.start(pool.run)`; connections live in that task's nursery."""

    def __init__(self, connector: Connector, *, idle_timeout: float = POOL_IDLE_TIMEOUT) -> None:
        self._connector = connector
        self._idle_timeout = idle_timeout
        self._connections: dict[PoolKey, list[H2ClientConnection]] = {}
        self._locks: dict[PoolKey, trio.Lock] = {}
        self._last_used: dict[H2ClientConnection, float] = {}
        self._nursery: trio.Nursery | None = None

    def connections(self, key: PoolKey) -> list[H2ClientConnection]:
        return list(self._connections.get(key, ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._connections.values())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                await trio.sleep(SWEEP_INTERVAL)
                self._sweep()

    def _sweep(self) -> None:
        """Close connections that carried nothing for `idle_timeout` (measured from the last
        sweep that saw them busy, or their last checkout)."""
        assert self._nursery is not None
        now = trio.current_time()
        for conns in list(self._connections.values()):
            for conn in list(conns):
                if conn.active_streams:
                    self._last_used[conn] = now
                elif now - self._last_used.get(conn, now) >= self._idle_timeout:
                    conns.remove(conn)
                    self._nursery.start_soon(conn.aclose)

    def _usable(self, key: PoolKey) -> H2ClientConnection | None:
        for conn in self._connections.get(key, ()):
            if conn.can_open_stream:
                return conn
        return None

    async def _checkout(self, key: PoolKey) -> H2ClientConnection:
        conn = self._usable(key)
        if conn is not None:
            return conn
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                conn = self._usable(key)
                if conn is not None:
                    return conn
                conn = await self._connector(key)
                assert self._nursery is not None
                await self._nursery.start(self._run_connection, key, conn)
                return conn
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._locks.pop(key, None)

    async def _run_connection(self, key: PoolKey, conn: H2ClientConnection,
                              *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        conns = self._connections.setdefault(key, [])
        conns.append(conn)
        self._last_used[conn] = trio.current_time()
        log.debug("new HBONE connection %s", key)
        try:
            await conn.run(task_status=task_status)
        finally:
            self._last_used.pop(conn, None)
            current = self._connections.get(key)
            if current is not None:
                if conn in current:
                    current.remove(conn)
                if not current:
                    del self._connections[key]

    async def open_connect(self, key: PoolKey, authority: str, headers: Headers) -> H2Stream:
        """Send a CONNECT on a pooled connection for `key` (opening one if needed); the stream
        is returned at once, its response still to come (`await stream.response()`)."""
        while True:
            conn = await self._checkout(key)
            try:
                stream = conn.open_stream("CONNECT", authority=authority, headers=headers)
            except ConnectionUnavailable:
                await trio.lowlevel.checkpoint()
                continue
            self._last_used[conn] = trio.current_time()
            return stream
