"""The TCP echo server, over in-memory streams."""

from __future__ import annotations

import trio
import trio.testing

from components.apps.echo import echo


async def test_echoes_every_byte_until_the_client_closes():
    client, server = trio.testing.memory_stream_pair()
    payload = bytes(range(256)) * 1024
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, server)
        await client.send_all(b"hello\n")
        assert await client.receive_some(6) == b"hello\n"
        await client.send_all(payload)
        await client.send_eof()
        while True:
            data = await client.receive_some(65536)
            if not data:
                break
            received += data
    assert bytes(received) == payload


async def test_a_vanished_client_ends_the_connection():
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, server)
        await client.send_all(b"x")
        await client.aclose()
