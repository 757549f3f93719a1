"""components.common.http's Unix listener under a burst of clients."""

from __future__ import annotations

import os

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


async def test_a_unix_socket_path_longer_than_sun_path_is_reached_through_its_directory(tmp_path):
    """A node's socket under a long run directory (a long run root and cluster name) is longer
    than the 107 bytes a sockaddr_un holds; the client still reaches it."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "pluginevent.sock")
    assert len(path) > http.UNIX_PATH_MAX
    short = tmp_path / "s.sock"
    listener = await http.open_unix_listener(str(short))
    os.rename(short, path)

    async def handler(request: http.Request) -> http.Response:
        return http.Response.text("reached\n")

    async with trio.open_nursery() as nursery:
        await nursery.start(http.serve, [listener], handler)
        response = await http.request(f"unix:{path}", "GET", "/")
        assert response.body == b"reached\n"
        nursery.cancel_scope.cancel()
