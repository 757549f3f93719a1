"""The HTTP/2 layer over in-memory streams and socketpairs: tunnels, requests, push streams, flow control,
GOAWAY, PING keepalive and a large transfer."""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import AsyncIterator

import h2.errors
import pytest
import trio
import trio.testing

from components.common import jsonlines
from components.common.h2conn import (CLIENT_CONFIG, SERVER_CONFIG, ConnectionClosed, ConnectionUnavailable,
                                      H2ClientConnection, H2Config, H2Request, H2ServerConnection, H2Stream,
                                      StreamReset, open_h2_connection, serve_h2)

MiB = 1024 * 1024


@asynccontextmanager
async def h2_pair(handler, client_config: H2Config = CLIENT_CONFIG, server_config: H2Config = SERVER_CONFIG,
                  transports=None) -> AsyncIterator[tuple[H2ClientConnection, H2ServerConnection]]:
    client_t, server_t = transports or trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve_h2, server_t, handler, config=server_config))
        async with open_h2_connection(client_t, client_config, authority="istiod.istio-system.svc:15012") as conn:
            yield conn, server
        nursery.cancel_scope.cancel()


async def echo(request: H2Request, stream: H2Stream) -> None:
    """A CONNECT target that echoes every byte, then ends its side when the client ends its own."""
    if request.method != "CONNECT":
        await stream.respond(400, end_stream=True)
        return
    await stream.respond(200)
    while data := await stream.receive_some():
        await stream.send_all(data)
    await stream.send_eof()


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    parts = []
    while data := await stream.receive_some():
        parts.append(data)
    return b"".join(parts)


# CONNECT tunnels

async def test_connect_tunnel_echoes_both_ways_and_keeps_receiving_after_half_close():
    seen: list[H2Request] = []

    async def handler(request, stream):
        seen.append(request)
        await echo(request, stream)

    with trio.fail_after(10):
        async with h2_pair(handler) as (conn, _):
            status, headers, stream = await conn.connect(
                "10.244.1.7:8080", [("forwarded", 'for="10.244.1.5:40000"'), ("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-00")])
            assert status == 200
            await stream.send_all(b"first ")
            assert await stream.receive_some() == b"first "
            await stream.send_all(b"second")
            await stream.send_eof()
            assert stream.local_ended
            assert await read_all(stream) == b"second"
            assert stream.remote_ended
    request = seen[0]
    assert (request.method, request.authority, request.path, request.scheme) == ("CONNECT", "10.244.1.7:8080", None, None)
    assert request.header("forwarded") == 'for="10.244.1.5:40000"'


async def test_server_keeps_sending_after_the_client_half_closed():
    async def summarize(request, stream):
        await stream.respond(200)
        received = await read_all(stream)
        for _ in range(3):
            await trio.sleep(0.01)
            await stream.send_all(hashlib.sha256(received).hexdigest().encode() + b"\n")
        await stream.send_eof()

    with trio.fail_after(10):
        async with h2_pair(summarize) as (conn, _):
            _, _, stream = await conn.connect("10.244.1.7:9000")
            await stream.send_all(b"x" * 100_000)
            await stream.send_eof()
            lines = (await read_all(stream)).splitlines()
    assert lines == [hashlib.sha256(b"x" * 100_000).hexdigest().encode()] * 3


async def test_many_concurrent_tunnels_on_one_connection():
    results: dict[int, bytes] = {}

    async def one(conn, index):
        payload = os.urandom(1000 + index * 997)
        _, _, stream = await conn.connect(f"10.244.2.{index}:80")
        async with trio.open_nursery() as nursery:
            async def writer():
                for offset in range(0, len(payload), 4096):
                    await stream.send_all(payload[offset:offset + 4096])
                await stream.send_eof()
            nursery.start_soon(writer)
            results[index] = await read_all(stream)
        assert results[index] == payload

    with trio.fail_after(20):
        async with h2_pair(echo) as (conn, server):
            async with trio.open_nursery() as nursery:
                for index in range(60):
                    nursery.start_soon(one, conn, index)
            assert conn.active_streams == 0
            assert server.active_streams == 0
    assert len(results) == 60


@pytest.mark.parametrize("status", [400, 401, 503])
async def test_error_statuses_are_headers_only(status):
    async def refuse(request, stream):
        await stream.respond(status, end_stream=True)

    with trio.fail_after(10):
        async with h2_pair(refuse) as (conn, _):
            response = await conn.connect("10.244.1.7:8080")
            assert response.status == status and response.headers == []
            assert await response.stream.receive_some() == b""
            assert response.stream.remote_ended
            await response.stream.aclose()


async def test_a_handler_that_fails_answers_500():
    async def broken(request, stream):
        raise RuntimeError("boom")

    with trio.fail_after(10):
        async with h2_pair(broken) as (conn, _):
            status, _, body = await conn.request("GET", "/x")
    assert status == 500 and body == b""


# Request/response and streaming responses

async def test_json_request_and_response():
    async def ca(request, stream):
        body = json.loads(await stream.receive_all(1 * MiB))
        await stream.respond(200, [("content-type", "application/json")])
        await stream.send_all(json.dumps({"certChain": [body["csr"].upper()], "path": request.path,
                                          "authorization": request.header("authorization")}).encode())

    with trio.fail_after(10):
        async with h2_pair(ca) as (conn, _):
            status, headers, body = await conn.request(
                "POST", "/istio.v1.auth.IstioCertificateService/CreateCertificate",
                [("content-type", "application/json"), ("authorization", "Bearer token")],
                json.dumps({"csr": "pem"}).encode())
    assert status == 200
    assert ("content-type", "application/json") in headers
    assert json.loads(body) == {"certChain": ["PEM"], "authorization": "Bearer token",
                                "path": "/istio.v1.auth.IstioCertificateService/CreateCertificate"}


async def test_streaming_response_delivers_json_messages_one_after_another():
    snapshots = [{"version": i, "workloads": [{"uid": f"pod-{j}"} for j in range(i)]} for i in range(5)]
    big = {"version": 99, "blob": "y" * (3 * MiB)}

    async def push(request, stream):
        await stream.respond(200, [("content-type", "application/x-ndjson")])
        for snapshot in snapshots + [big]:
            await jsonlines.send_json(stream, snapshot)
            await trio.sleep(0.005)

    with trio.fail_after(10):
        async with h2_pair(push) as (conn, _):
            status, headers, stream = await conn.stream_response("GET", "/ambient/v1/subscribe")
            assert status == 200
            async with stream:
                received = [message async for message in jsonlines.JsonLinesReader(stream)]
    assert received == snapshots + [big]


async def test_json_lines_reader_limits_and_partial_messages():
    send, receive = trio.testing.memory_stream_pair()
    await send.send_all(b'{"a": 1}\n\n{"b"')
    await send.send_all(b': 2}\n{"c": ')
    await send.send_eof()
    reader = jsonlines.JsonLinesReader(receive)
    assert await reader.receive() == {"a": 1}
    assert await reader.receive() == {"b": 2}
    with pytest.raises(ValueError, match="inside a JSON message"):
        await reader.receive()
    send, receive = trio.testing.memory_stream_pair()
    await send.send_all(b"[" + b"1," * 100)
    with pytest.raises(jsonlines.MessageTooLarge):
        await jsonlines.JsonLinesReader(receive, max_message=64).receive()


# Flow control

async def test_a_reader_that_stops_reading_blocks_the_writer_within_the_window():
    release = trio.Event()
    buffered: list[int] = []
    total: list[int] = []

    async def slow(request, stream):
        await stream.respond(200)
        await release.wait()
        buffered.append(stream._buffered)
        total.append(len(await read_all(stream)))
        await stream.send_eof()

    chunk = 64 * 1024
    with trio.fail_after(20):
        async with h2_pair(slow) as (conn, _):
            _, _, stream = await conn.connect("10.244.1.7:8080")
            written = 0
            with trio.move_on_after(0.5):
                while True:
                    await stream.send_all(b"z" * chunk)
                    written += chunk
            # Blocked: exactly the 4 MiB stream window went out, nothing more.
            assert written == SERVER_CONFIG.stream_window
            # Other streams on the same connection still flow.
            _, _, other = await conn.connect("10.244.1.8:8080")
            release_other = other
            await release_other.aclose()
            release.set()
            await stream.send_all(b"z" * chunk)
            written += chunk
            await stream.send_eof()
            assert await stream.receive_some() == b""
    assert buffered[0] <= SERVER_CONFIG.stream_window
    assert total == [written]


async def test_unread_data_of_closed_streams_returns_connection_window():
    """20 MiB over streams the server closes without reading: more than the 16 MiB connection window."""
    async def discard(request, stream):
        await stream.respond(200)
        await stream.receive_some(1)
        await stream.send_eof()

    with trio.fail_after(20):
        async with h2_pair(discard) as (conn, _):
            for _ in range(5):
                _, _, stream = await conn.connect("10.244.1.7:8080")
                with pytest.raises(trio.BrokenResourceError):
                    with trio.fail_after(5):
                        while True:
                            await stream.send_all(b"q" * MiB)
                await stream.aclose()
            status, _, stream = await conn.connect("10.244.1.7:8080")
            await stream.send_all(b"still flowing")
            assert status == 200


# Resets

async def test_client_reset_reaches_the_handler():
    outcome: list[BaseException] = []
    started = trio.Event()

    async def handler(request, stream):
        await stream.respond(200)
        started.set()
        try:
            await stream.receive_some()
        except StreamReset as exc:
            outcome.append(exc)

    with trio.fail_after(10):
        async with h2_pair(handler) as (conn, server):
            _, _, stream = await conn.connect("10.244.1.7:8080")
            await started.wait()
            await stream.aclose()
            while not outcome:
                await trio.sleep(0.01)
    assert outcome[0].remote and outcome[0].error_code == h2.errors.ErrorCodes.CANCEL


async def test_server_reset_reaches_the_client():
    async def handler(request, stream):
        await stream.respond(200)
        await stream.send_all(b"partial")
        stream.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)

    with trio.fail_after(10):
        async with h2_pair(handler) as (conn, _):
            _, _, stream = await conn.connect("10.244.1.7:8080")
            with pytest.raises(StreamReset) as info:
                while await stream.receive_some():
                    pass
            assert info.value.remote and info.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
            assert isinstance(info.value, trio.BrokenResourceError)
            with pytest.raises(StreamReset):
                await stream.send_all(b"more")


# GOAWAY, stream limits, closing

async def test_goaway_makes_the_client_refuse_new_streams_while_old_ones_finish():
    with trio.fail_after(10):
        async with h2_pair(echo) as (conn, server):
            _, _, stream = await conn.connect("10.244.1.7:8080")
            assert conn.can_open_stream
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.drain)
                while not conn.goaway_received:
                    await trio.sleep(0.01)
                assert not conn.can_open_stream and conn.available_streams == 0
                with pytest.raises(ConnectionUnavailable, match="GOAWAY"):
                    await conn.connect("10.244.1.7:8080")
                await stream.send_all(b"after goaway")
                assert await stream.receive_some() == b"after goaway"
                await stream.send_eof()
                assert await stream.receive_some() == b""
            assert server.closed and "GOAWAY" in server.close_reason
            with trio.fail_after(2):
                while not conn.closed:
                    await trio.sleep(0.01)


async def test_stream_limit_is_tracked_for_the_pool():
    block = trio.Event()

    async def hold(request, stream):
        await stream.respond(200)
        await block.wait()

    config = CLIENT_CONFIG.replace(max_concurrent_streams=3)
    with trio.fail_after(10):
        async with h2_pair(hold, client_config=config) as (conn, _):
            streams = [(await conn.connect("10.0.0.1:80")).stream for _ in range(3)]
            assert conn.available_streams == 0
            with pytest.raises(ConnectionUnavailable, match="stream limit"):
                conn.open_stream("CONNECT", authority="10.0.0.1:80")
            await streams[0].aclose()
            assert conn.available_streams == 1
            block.set()


async def test_server_advertises_its_concurrency_limit():
    async def hold(request, stream):
        await stream.respond(200)
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with h2_pair(hold, server_config=SERVER_CONFIG.replace(max_concurrent_streams=2),
                           client_config=CLIENT_CONFIG) as (conn, _):
            await conn.connect("10.0.0.1:80")
            await conn.connect("10.0.0.1:80")
            assert conn.available_streams == 0


async def test_closing_the_client_fails_its_streams_and_ends_the_server():
    async def hold(request, stream):
        await stream.respond(200)
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with h2_pair(hold) as (conn, server):
            _, _, stream = await conn.connect("10.0.0.1:80")
            await conn.aclose()
            assert conn.closed and not conn.can_open_stream
            with pytest.raises(ConnectionClosed):
                await stream.receive_some()
            with trio.fail_after(2):
                while not server.closed:
                    await trio.sleep(0.01)


# PING keepalive

async def test_ping_timeout_drops_a_dead_connection():
    client_t, silent_peer = trio.testing.memory_stream_pair()
    config = CLIENT_CONFIG.replace(ping_interval=0.05, ping_timeout=0.1)
    conn = H2ClientConnection(client_t, config)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(conn.run)
            stream = conn.open_stream("CONNECT", authority="10.0.0.1:80")
            with pytest.raises(ConnectionClosed, match="ping timeout"):
                await stream.response()
    assert conn.closed and conn.close_reason.startswith("ping timeout")
    assert not conn.can_open_stream


async def test_pings_keep_a_live_idle_connection_open():
    fast = dict(ping_interval=0.02, ping_timeout=0.2)
    with trio.fail_after(10):
        async with h2_pair(echo, CLIENT_CONFIG.replace(**fast), SERVER_CONFIG.replace(**fast)) as (conn, server):
            await trio.sleep(0.5)
            assert not conn.closed and not server.closed
            _, _, stream = await conn.connect("10.0.0.1:80")
            await stream.send_eof()
            assert await stream.receive_some() == b""


# Throughput

@pytest.mark.parametrize("size", [64 * MiB])
async def test_large_transfer_through_a_tunnel_over_a_socketpair(size):
    a, b = trio.socket.socketpair()
    chunk = os.urandom(MiB)
    expected = hashlib.sha256()
    for _ in range(size // MiB):
        expected.update(chunk)
    received = hashlib.sha256()
    count = 0
    with trio.fail_after(120):
        async with h2_pair(echo, transports=(trio.SocketStream(a), trio.SocketStream(b))) as (conn, _):
            started = time.perf_counter()
            _, _, stream = await conn.connect("10.244.1.7:8080")

            async def writer():
                for _ in range(size // MiB):
                    await stream.send_all(chunk)
                await stream.send_eof()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                while data := await stream.receive_some():
                    received.update(data)
                    count += len(data)
            elapsed = time.perf_counter() - started
    assert count == size and received.digest() == expected.digest()
    print(f"\n{size // MiB} MiB echoed through one HTTP/2 CONNECT tunnel (both ends in this process): "
          f"{elapsed:.2f}s, {size / elapsed / 1e6:.0f} MB/s each way")


# Settings, limits, protocol errors

async def _settings_seen_by_a_raw_peer(conn_factory, client_side: bool):
    """Start our connection against a bare h2 state machine and report what it announced."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    ours, theirs = trio.testing.memory_stream_pair()
    peer = h2.connection.H2Connection(h2.config.H2Configuration(client_side=client_side))
    peer.initiate_connection()
    await theirs.send_all(peer.data_to_send())
    settings: dict[int, int] = {}
    window_increment = 0
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            conn = conn_factory(ours)
            await nursery.start(conn.run)
            while not settings or not window_increment:
                for event in peer.receive_data(await theirs.receive_some()):
                    if isinstance(event, h2.events.RemoteSettingsChanged):
                        settings = {int(k): v.new_value for k, v in event.changed_settings.items()}
                    elif isinstance(event, h2.events.WindowUpdated) and event.stream_id == 0:
                        window_increment = event.delta
            await conn.aclose()
    codes = h2.settings.SettingCodes
    return {codes(k).name: v for k, v in settings.items()}, window_increment


async def test_server_announces_ztunnels_settings():
    settings, increment = await _settings_seen_by_a_raw_peer(
        lambda t: H2ServerConnection(t, echo), client_side=True)
    assert settings["INITIAL_WINDOW_SIZE"] == 4 * MiB
    assert settings["MAX_FRAME_SIZE"] == MiB
    assert settings["MAX_HEADER_LIST_SIZE"] == 64 * 1024
    assert settings["MAX_CONCURRENT_STREAMS"] == 200
    assert increment == 16 * MiB - 65535


async def test_client_announces_ztunnels_settings():
    settings, increment = await _settings_seen_by_a_raw_peer(
        lambda t: H2ClientConnection(t), client_side=False)
    assert settings["INITIAL_WINDOW_SIZE"] == 4 * MiB
    assert settings["MAX_FRAME_SIZE"] == MiB
    assert settings["MAX_HEADER_LIST_SIZE"] == 16 * 1024
    assert settings["ENABLE_PUSH"] == 0
    assert increment == 16 * MiB - 65535


async def test_header_lists_over_the_limits():
    """Over the server's 64 KiB: 431 on that stream and the connection goes on (h2's server);
    past the hard bound, or over the client's 16 KiB in a response, the connection ends."""
    async def big_answer(request, stream):
        await stream.respond(200, [("x-big", "v" * 20_000)], end_stream=True)

    with trio.fail_after(10):
        async with h2_pair(echo) as (conn, server):
            status, _, stream = await conn.connect("10.0.0.1:80", [("x-fine", "v" * 40_000)])
            assert status == 200
            await stream.aclose()
            status, _, stream = await conn.connect("10.0.0.1:80", [(f"x-big-{i}", "v" * 4000) for i in range(18)])
            assert status == 431
            await stream.aclose()
            status, _, stream = await conn.connect("10.0.0.1:80")
            assert status == 200
            await stream.aclose()
            with pytest.raises(ConnectionClosed):
                await conn.connect("10.0.0.1:80", [(f"x-huge-{i}", "v" * 4000) for i in range(80)])
        async with h2_pair(big_answer) as (conn, _):
            with pytest.raises(ConnectionClosed, match="protocol error"):
                await conn.connect("10.0.0.1:80")


async def test_garbage_ends_the_server_connection():
    client_t, server_t = trio.testing.memory_stream_pair()
    server = H2ServerConnection(server_t, echo)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run)
            await client_t.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await read_all(client_t) != b""
    assert server.close_reason.startswith("protocol error")


async def test_client_drain_lets_running_streams_finish():
    with trio.fail_after(10):
        async with h2_pair(echo) as (conn, server):
            _, _, stream = await conn.connect("10.0.0.1:80")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.drain)
                while not server.goaway_received:
                    await trio.sleep(0.01)
                assert not conn.can_open_stream
                with pytest.raises(ConnectionUnavailable, match="draining"):
                    conn.open_stream("CONNECT", authority="10.0.0.1:80")
                await stream.send_all(b"still here")
                assert await stream.receive_some() == b"still here"
                await stream.send_eof()
                assert await stream.receive_some() == b""
            assert conn.closed


async def test_cancelling_a_connect_resets_the_stream():
    arrived = trio.Event()
    outcome: list[BaseException] = []

    async def slow(request, stream):
        arrived.set()
        try:
            await stream.receive_some()
        except StreamReset as exc:
            outcome.append(exc)

    with trio.fail_after(10):
        async with h2_pair(slow) as (conn, server):
            with trio.move_on_after(0.2):
                await conn.connect("10.0.0.1:80")
            assert arrived.is_set()
            while not outcome:
                await trio.sleep(0.01)
            assert conn.active_streams == 0 and conn.available_streams == 100
    assert outcome[0].error_code == h2.errors.ErrorCodes.CANCEL


async def test_wait_send_all_might_not_block_waits_for_window():
    release = trio.Event()

    async def slow(request, stream):
        await stream.respond(200)
        await release.wait()
        await read_all(stream)

    with trio.fail_after(10):
        async with h2_pair(slow) as (conn, _):
            _, _, stream = await conn.connect("10.0.0.1:80")
            await stream.wait_send_all_might_not_block()
            await stream.send_all(b"w" * SERVER_CONFIG.stream_window)
            with trio.move_on_after(0.2) as scope:
                await stream.wait_send_all_might_not_block()
            assert scope.cancelled_caught
            release.set()
            await stream.wait_send_all_might_not_block()
            await stream.send_eof()
