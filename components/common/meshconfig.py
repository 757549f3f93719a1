"""The subscription to istiod's ambient config, for ztunnel and waypoints.

```
async with meshconfig.subscribe("istiod.istio-system.svc:15010", node="worker") as configs:
    async for config in configs:      # {"version", "type", "workloads", "services", "policies"}
        ...
```

One background task keeps an h2c stream open to `GET /v1/ambient?node=&id=` and reconnects
forever, backing off from 10 ms doubling to 5 s (back to 10 ms once a stream delivered a config);
istiod sends its current config first on every stream, so a reconnect always yields it again.
Only the newest config is held: a consumer slower than istiod's pushes skips the stale ones,
which is harmless because every message is a full snapshot.

It is a context manager around an iterator, not an async generator, because the background
task lives in a nursery and trio does not allow yielding out of a nursery.
"""

from __future__ import annotations

import logging
import socket
import urllib.parse
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import trio

from components.common.h2conn import CLIENT_CONFIG, ConnectionUnavailable, H2Config, open_h2_connection
from components.common.jsonlines import JsonLinesReader

log = logging.getLogger(__name__)

PATH = "/v1/ambient"
INITIAL_BACKOFF = 0.01
MAX_BACKOFF = 5.0
MAX_ERROR_BODY = 64 * 1024

Config = dict[str, Any]


class SubscribeRefused(Exception):
    """istiod answered the subscription with an error status."""


class Subscription:
    """The newest config received; iterate to get each newer one (each iterator on its own)."""

    def __init__(self) -> None:
        self.latest: Config | None = None
        self.connected = False
        self.received = 0
        self._changed = trio.Event()

    def _deliver(self, config: Config) -> None:
        self.latest = config
        self.received += 1
        self._changed.set()
        self._changed = trio.Event()

    def __aiter__(self) -> AsyncIterator[Config]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Config]:
        seen = 0
        while True:
            while self.received == seen:
                await self._changed.wait()
            seen = self.received
            assert self.latest is not None
            yield self.latest


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


_FAILURES = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ConnectionUnavailable, ValueError,
             SubscribeRefused)


async def _stream_once(address: str, path: str, subscription: Subscription, config: H2Config,
                       on_connect: Callable[[], object] | None) -> tuple[bool, str]:
    """One subscription stream until it ends: (whether it delivered anything, why it ended).

    Failures are caught inside the connection's block: raised through its nursery they would
    come out wrapped in an exception group.
    """
    host, port = _split(address)
    try:
        transport = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        return False, str(exc)
    delivered = False
    async with open_h2_connection(transport, config, authority=address, scheme="http") as conn:
        try:
            status, _headers, stream = await conn.stream_response("GET", path)
            async with stream:
                if status != 200:
                    body = await stream.receive_all(MAX_ERROR_BODY)
                    raise SubscribeRefused(f"istiod answered {status}: {body.decode(errors='replace').strip()}")
                subscription.connected = True
                if on_connect is not None:
                    on_connect()
                async for message in JsonLinesReader(stream):
                    delivered = True
                    subscription._deliver(message)
            reason = "stream ended"
        except _FAILURES as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            subscription.connected = False
    return delivered, reason


async def _run(address: str, path: str, subscription: Subscription, config: H2Config,
               on_connect: Callable[[], object] | None) -> None:
    delay = INITIAL_BACKOFF
    while True:
        delivered, reason = await _stream_once(address, path, subscription, config, on_connect)
        if delivered:
            delay = INITIAL_BACKOFF
        log.warning("XDS client connection error: %s, retrying in %s", reason,
                    f"{delay * 1000:.0f}ms" if delay < 1 else f"{delay:.1f}s")
        await trio.sleep(delay)
        delay = next_backoff(delay)


def next_backoff(delay: float) -> float:
    return min(delay * 2, MAX_BACKOFF)


@asynccontextmanager
async def subscribe(address: str, node: str, *, subscriber_id: str | None = None,
                    on_connect: Callable[[], object] | None = None,
                    config: H2Config = CLIENT_CONFIG) -> AsyncIterator[Subscription]:
    """Subscribe to istiod at `host:port` as a proxy on Kubernetes node `node`.

    `subscriber_id` names this proxy in istiod's logs and /debug/syncz (default: the hostname,
    which in a pod is the pod's name). `on_connect` is called each time a stream is accepted.
    """
    query = urllib.parse.urlencode({"node": node, "id": subscriber_id or socket.gethostname()})
    subscription = Subscription()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run, address, f"{PATH}?{query}", subscription, config, on_connect)
        try:
            yield subscription
        finally:
            nursery.cancel_scope.cancel()
