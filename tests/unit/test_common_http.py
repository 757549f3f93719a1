"""components.common.http's Unix listener under a burst of clients."""

from __future__ import annotations

import trio

from components.common import http
from tests.unit.test_common_h2 import h2_pair, read_all


async def test_unix_listener_queues_a_burst_of_clients_beyond_128(tmp_path):
    # A kubelet starting 300 pods opens hundreds of apiserver connections at once; a backlog that
    # overflows makes trio report a connect that never happened, and the first send fails.
    path = str(tmp_path / "api.sock")
    listener = await http.open_unix_listener(path)
    streams = [await http.connect(f"unix:{path}") for _ in range(300)]
    for stream in streams:
        await stream.send_all(b"x")
    for stream in streams:
        await stream.aclose()
    await listener.aclose()


async def test_a_connection_close_exchange_over_an_h2_tunnel_ends_the_stream_instead_of_resetting_it():
    # The waypoint serves HTTP/1.1 inside HBONE CONNECT streams: after answering a request that
    # says `Connection: close`, the peer must get the whole response and END_STREAM, not a reset.
    async def hello(request: http.Request) -> http.Response:
        return http.Response.text("hello " * 1000)

    async def tunnel(request, stream) -> None:
        await stream.respond(200)
        await http.serve_connection(stream, hello)

    with trio.fail_after(10):
        async with h2_pair(tunnel) as (conn, _):
            _, _, stream = await conn.connect("10.244.1.7:8080")
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: httpbin\r\nconnection: close\r\n\r\n")
            answer = await read_all(stream)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"hello " * 1000)
