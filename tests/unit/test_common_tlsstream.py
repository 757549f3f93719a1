"""TLSStream against trio.SSLStream and itself over socketpairs, and a large HBONE-shaped transfer."""

from __future__ import annotations

import hashlib
import os
import ssl
import time

import pytest
import trio
import trio.testing

from components.common import pki, tls
from components.common.h2conn import open_h2_connection, serve_h2
from components.common.tlsstream import TLSStream

SERVER_ID = "spiffe://cluster.local/ns/default/sa/httpbin"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/sleep"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    root = pki.RootCA.generate()
    server, client = root.issue(SERVER_ID), root.issue(CLIENT_ID)
    return (tls.client_context(client.chain_pem, client.key_pem, root.cert_pem),
            tls.server_context(server.chain_pem, server.key_pem, root.cert_pem))


def _pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def _connected(client_stream, server_stream) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_stream.do_handshake)
        nursery.start_soon(server_stream.do_handshake)


@pytest.mark.parametrize("client_kind, server_kind", [
    (TLSStream, trio.SSLStream), (trio.SSLStream, TLSStream), (TLSStream, TLSStream)])
async def test_interoperates_with_trio_sslstream(contexts, client_kind, server_kind):
    client_ctx, server_ctx = contexts
    a, b = _pair()
    client = client_kind(a, client_ctx, server_hostname=None)
    server = server_kind(b, server_ctx, server_side=True)
    payload = os.urandom(3 * MiB + 123)
    with trio.fail_after(20):
        await _connected(client, server)
        assert client.version() == server.version() == "TLSv1.3"
        assert client.selected_alpn_protocol() == "h2"
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            while len(received) < len(payload):
                received += await server.receive_some()
            await server.send_all(b"reply")
            assert await client.receive_some() == b"reply"
        assert received == payload
        await client.aclose()
        assert await server.receive_some() == b""
        await server.aclose()


async def test_one_receive_returns_many_records(contexts):
    client_ctx, server_ctx = contexts
    a, b = _pair()
    client, server = TLSStream(a, client_ctx), TLSStream(b, server_ctx, server_side=True)
    with trio.fail_after(10):
        await _connected(client, server)
        await client.send_all(b"r" * 128 * 1024)
        await trio.sleep(0.05)
        data = await server.receive_some()
        assert len(data) > 16 * 1024
        await client.aclose()
        await server.aclose()


async def test_truncation_without_close_notify_is_an_error(contexts):
    client_ctx, server_ctx = contexts
    a, b = trio.testing.memory_stream_pair()
    client, server = TLSStream(a, client_ctx), TLSStream(b, server_ctx, server_side=True)
    with trio.fail_after(10):
        await _connected(client, server)
        await client.send_all(b"last words")
        await a.aclose()
        assert await server.receive_some() == b"last words"
        with pytest.raises(trio.BrokenResourceError, match="without close_notify"):
            await server.receive_some()
        with pytest.raises(trio.BrokenResourceError):
            await server.receive_some()
        await server.aclose()


async def test_session_tickets_from_a_peer_are_absorbed(contexts):
    client_ctx, _ = contexts
    root = pki.RootCA.generate()
    issued = root.issue(SERVER_ID)
    ticketing = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ticketing.minimum_version = ssl.TLSVersion.TLSv1_3
    tls.load_cert_chain_pem(ticketing, issued.chain_pem, issued.key_pem)
    plain_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain_client.check_hostname = False
    plain_client.load_verify_locations(cadata=root.cert_pem.decode())
    a, b = _pair()
    client = TLSStream(a, plain_client)
    server = trio.SSLStream(b, ticketing, server_side=True)
    with trio.fail_after(10):
        await _connected(client, server)
        await server.send_all(b"after tickets")
        assert await client.receive_some() == b"after tickets"
        await client.aclose()
        await server.aclose()


async def test_busy_and_closed_streams_say_so(contexts):
    client_ctx, server_ctx = contexts
    a, b = _pair()
    client, server = TLSStream(a, client_ctx), TLSStream(b, server_ctx, server_side=True)
    with trio.fail_after(10):
        await _connected(client, server)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.receive_some)
            await trio.sleep(0.01)
            with pytest.raises(trio.BusyResourceError):
                await server.receive_some()
            await client.send_all(b"x")
        await client.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"y")
        await server.aclose()


async def test_64_mib_through_an_hbone_shaped_tunnel(contexts):
    """mTLS + HTTP/2 CONNECT over a socketpair, echoed back; both ends run in this one process."""
    client_ctx, server_ctx = contexts
    a, b = _pair()
    size = 64 * MiB
    chunk = os.urandom(MiB)
    expected = hashlib.sha256(chunk * (size // MiB)).digest()
    digest = hashlib.sha256()
    count = 0

    async def echo(request, stream):
        await stream.respond(200)
        while data := await stream.receive_some():
            await stream.send_all(data)
        await stream.send_eof()

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            accepted: list = []

            async def accept():
                accepted.append(await tls.tls_accept(b, server_ctx))

            nursery.start_soon(accept)
            client_stream, peer = await tls.tls_connect(a, client_ctx, [SERVER_ID])
        assert str(peer) == SERVER_ID and str(accepted[0][1]) == CLIENT_ID
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_h2, accepted[0][0], echo)
            async with open_h2_connection(client_stream) as conn:
                started = time.perf_counter()
                status, _, stream = await conn.connect("10.244.1.7:8080")
                assert status == 200

                async def writer():
                    for _ in range(size // MiB):
                        await stream.send_all(chunk)
                    await stream.send_eof()

                async with trio.open_nursery() as inner:
                    inner.start_soon(writer)
                    while data := await stream.receive_some():
                        digest.update(data)
                        count += len(data)
                elapsed = time.perf_counter() - started
    assert count == size and digest.digest() == expected
    print(f"\n{size // MiB} MiB echoed through mTLS + HTTP/2 CONNECT (both ends in this process): "
          f"{elapsed:.2f}s, {size / elapsed / 1e6:.0f} MB/s each way")
