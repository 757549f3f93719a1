"""The benchmark load generator against its own sink and a tiny HTTP server, on loopback."""

from __future__ import annotations

import trio

from components.apps import loadgen
from components.common import http


async def test_send_counts_every_byte_and_connections_complete(nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, loadgen._sink, listeners)
    port = listeners[0].socket.getsockname()[1]
    result = await loadgen.send(f"127.0.0.1:{port}", 3 * loadgen.CHUNK + 5)
    assert result["bytes"] == 3 * loadgen.CHUNK + 5 and result["gbit_per_s"] > 0
    rate = await loadgen.connections(f"127.0.0.1:{port}", 0.3, 2)
    assert rate["connections"] > 0 and rate["failed"] == 0


async def test_latency_reports_percentiles_of_fresh_connections(nursery) -> None:
    async def handler(request: http.Request) -> http.Response:
        return http.Response.text("ok")

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(http.serve, listeners, handler)
    port = listeners[0].socket.getsockname()[1]
    result = await loadgen.latency(f"http://127.0.0.1:{port}/get", 20)
    assert result["requests"] == 20 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert loadgen._percentile(values, 0.5) == 51.0 and loadgen._percentile(values, 0.99) == 99.0
