"""Copying both ways with half-close and byte counts."""

from __future__ import annotations

import trio
import trio.testing

from components.ztunnel.relay import relay


def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def test_half_close_passes_through_and_counts():
    client, down = socket_pair()
    up, server = socket_pair()
    counts = {"sent": 0, "received": 0}

    def count(key):
        def add(n):
            counts[key] += n
        return add

    result = []

    async def run_relay():
        result.append(await relay(down, up, count("sent"), count("received")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_relay)
        await client.send_all(b"request" * 1000)
        await client.send_eof()
        received = b""
        async for chunk in server:
            received += chunk
        assert received == b"request" * 1000
        # The server answers after the client's EOF: the other direction still works.
        await server.send_all(b"response")
        await server.send_eof()
        answer = b""
        async for chunk in client:
            answer += chunk
        assert answer == b"response"
    assert result == [None]
    assert counts == {"sent": 7000, "received": 8}


async def test_an_error_ends_both_directions():
    client, down = socket_pair()
    up, server = socket_pair()
    result = []

    async def run_relay():
        result.append(await relay(down, up, lambda n: None, lambda n: None))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_relay)
        await client.send_all(b"x")
        assert await server.receive_some() == b"x"
        await up.aclose()  # the upstream breaks under the relay
        with trio.fail_after(5):
            while not result:
                await trio.sleep(0.01)
    assert result[0] is not None
