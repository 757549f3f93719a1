"""A pod proxy's connection handling without namespaces: the inbound CONNECT server over an
in-memory HTTP/2 connection and outbound passthrough, against apps on loopback (sockets unmarked,
no source spoofing: the client and the app share 127.0.0.1)."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from components.common.h2conn import CLIENT_CONFIG, ConnectionUnavailable, H2ClientConnection, serve_h2
from components.common.tls import Identity
from components.ztunnel import inbound, outbound
from components.ztunnel.certs import CertManager
from components.ztunnel.config import Config
from components.ztunnel.metrics import Metrics
from components.ztunnel.proxy import ProxyInputs, WorkloadProxy
from components.ztunnel.sockets import Netns
from components.ztunnel.state import Store, WorkloadInfo
from tests.unit.ztunnel_fixtures import allow_principal, captured_log, config, workload

SLEEP_ID = Identity("cluster.local", "default", "sleep")
LOCAL = workload("httpbin-1", "127.0.0.1", sa="httpbin")
INFO = WorkloadInfo("httpbin-1", "default", "httpbin")


@pytest.fixture
def lines():
    with captured_log() as handler:
        yield handler


def make_proxy(policies=()) -> WorkloadProxy:
    store = Store()
    store.update(config([LOCAL, workload("sleep-1", "10.244.1.4", sa="sleep")], policies=list(policies)))
    inputs = ProxyInputs(Config(node_name="node1"), store, CertManager(lambda i: None), Metrics())
    return WorkloadProxy(inputs, "pod-uid", INFO, Netns.current(mark=None))


async def echo_app(host="127.0.0.1", *, task_status=trio.TASK_STATUS_IGNORED):
    async def serve(stream):
        async with stream:
            async for data in stream:
                await stream.send_all(data)

    listeners = await trio.open_tcp_listeners(0, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(serve, listeners)


async def h2_to(proxy: WorkloadProxy, nursery: trio.Nursery) -> H2ClientConnection:
    client, server = trio.testing.memory_stream_pair()

    async def handler(request, stream):
        await inbound.serve_connect(proxy, ("127.0.0.1", 40000), ("127.0.0.1", 15008), SLEEP_ID, request, stream)

    nursery.start_soon(serve_h2, server, handler)
    conn = H2ClientConnection(client, CLIENT_CONFIG.replace(ping_interval=None))
    await nursery.start(conn.run)
    return conn


async def test_connect_is_proxied_to_the_app_with_baggage(lines):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(echo_app)
        conn = await h2_to(proxy, nursery)
        status, headers, stream = await conn.connect(f"127.0.0.1:{port}")
        assert status == 200
        assert dict(headers)["baggage"].startswith("k8s.cluster.name=Kubernetes,k8s.namespace.name=default,")
        await stream.send_all(b"hello")
        assert await stream.receive_some() == b"hello"
        await stream.send_eof()
        assert await stream.receive_some() == b""
        with trio.fail_after(5):
            while not lines.find("connection complete"):
                await trio.sleep(0.01)
        (line,) = lines.find("connection complete")
        assert "\tinfo\taccess\t" in line
        assert f"dst.addr=127.0.0.1:15008 dst.hbone_addr=127.0.0.1:{port}" in line
        assert 'src.identity="spiffe://cluster.local/ns/default/sa/sleep"' in line
        assert 'direction="inbound" bytes_sent=5 bytes_recv=5' in line
        body, _ = proxy.inputs.metrics.render()
        assert b'istio_tcp_connections_closed_total{reporter="destination"' in body
        nursery.cancel_scope.cancel()


async def test_denied_connect_is_401(lines):
    proxy = make_proxy([allow_principal("cluster.local/ns/default/sa/other")])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(echo_app)
        conn = await h2_to(proxy, nursery)
        status, _, _ = await conn.connect(f"127.0.0.1:{port}")
        assert status == 401
        (line,) = lines.find("connection complete")
        assert "\terror\taccess\t" in line
        assert line.endswith('error="connection closed due to policy rejection: allow policies exist, but none allowed"')
        body, _ = proxy.inputs.metrics.render()
        assert b'istio_tcp_connections_failed_total{reporter="destination"' in body
        assert b'response_flags="DENY"' in body
        nursery.cancel_scope.cancel()


async def test_app_not_listening_is_503(lines):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        conn = await h2_to(proxy, nursery)
        status, _, _ = await conn.connect("127.0.0.1:1")
        assert status == 503
        assert lines.find("connection complete", 'error="connection failed: Connection refused (os error 111)"')
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("authority,status,error", [
    ("10.1.1.1:80", 400, "ip mismatch: 127.0.0.1 != 10.1.1.1"),
    ("127.0.0.1:15001", 503, "attempted recursive call to ourselves"),
])
async def test_early_rejections(lines, authority, status, error):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        conn = await h2_to(proxy, nursery)
        assert (await conn.connect(authority)).status == status
        (line,) = lines.find("connection failed")
        assert line.endswith(f'direction="inbound" error="{error}"')
        nursery.cancel_scope.cancel()


async def test_non_connect_method_is_400():
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        conn = await h2_to(proxy, nursery)
        response = await conn.request("GET", "/")
        assert response.status == 400
        nursery.cancel_scope.cancel()


async def test_policy_change_closes_live_connections(lines):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(echo_app)
        conn = await h2_to(proxy, nursery)
        _, _, stream = await conn.connect(f"127.0.0.1:{port}")
        await stream.send_all(b"one")
        assert await stream.receive_some() == b"one"
        assert len(proxy.connections) == 1
        proxy.inputs.store.update(config([LOCAL], policies=[allow_principal("cluster.local/ns/default/sa/sleep")]))
        assert proxy.connections.reevaluate(proxy.inputs.store.state) == []
        proxy.inputs.store.update(config([LOCAL], policies=[allow_principal("cluster.local/ns/default/sa/x")]))
        assert len(proxy.connections.reevaluate(proxy.inputs.store.state)) == 1
        with pytest.raises(trio.BrokenResourceError):
            with trio.fail_after(5):
                while await stream.receive_some():
                    pass
        with trio.fail_after(5):
            while not lines.find("connection complete"):
                await trio.sleep(0.01)
        assert lines.find("closed because it's no longer allowed after a policy update")
        assert lines.find("connection complete", 'error="connection closed due to policy change"')
        nursery.cancel_scope.cancel()


async def test_draining_sends_goaway_and_lets_running_streams_finish(lines):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(echo_app)
        client, server = trio.testing.memory_stream_pair()

        async def handler(request, stream):
            await inbound.serve_connect(proxy, ("127.0.0.1", 40000), ("127.0.0.1", 15008), SLEEP_ID, request, stream)

        served = trio.Event()

        async def serve():
            await inbound.serve_until_drained(proxy, server, handler)
            served.set()

        nursery.start_soon(serve)
        conn = H2ClientConnection(client, CLIENT_CONFIG.replace(ping_interval=None))
        await nursery.start(conn.run)
        _, _, stream = await conn.connect(f"127.0.0.1:{port}")
        proxy.draining.set()
        with trio.fail_after(5):
            while not conn.goaway_received:
                await trio.sleep(0.01)
        assert not conn.can_open_stream
        with pytest.raises(ConnectionUnavailable):
            await conn.connect(f"127.0.0.1:{port}")
        await stream.send_all(b"still here")
        assert await stream.receive_some() == b"still here"
        assert not served.is_set()
        await stream.send_eof()
        assert await stream.receive_some() == b""
        with trio.fail_after(5):
            await served.wait()
        nursery.cancel_scope.cancel()


async def test_outbound_passthrough_to_an_unknown_destination(lines):
    proxy = make_proxy()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(echo_app, "127.0.0.2")  # no workload has this IP
        a, b = trio.socket.socketpair()
        app_side, ztunnel_side = trio.SocketStream(a), trio.SocketStream(b)
        nursery.start_soon(outbound.proxy_to, proxy, ztunnel_side, ("127.0.0.1", 5555), ("127.0.0.2", port))
        await app_side.send_all(b"data")
        assert await app_side.receive_some() == b"data"
        await app_side.send_eof()
        assert await app_side.receive_some() == b""
        with trio.fail_after(5):
            while not lines.find("connection complete"):
                await trio.sleep(0.01)
        (line,) = lines.find("connection complete")
        assert f"dst.addr=127.0.0.2:{port}" in line and 'direction="outbound" bytes_sent=4 bytes_recv=4' in line
        assert "src.identity" not in line
        body, _ = proxy.inputs.metrics.render()
        assert b'connection_security_policy="unknown"' in body
        nursery.cancel_scope.cancel()


async def test_outbound_self_call_is_refused(lines):
    proxy = make_proxy()
    a, b = trio.socket.socketpair()
    async with trio.SocketStream(a) as app_side:
        await outbound.proxy_to(proxy, trio.SocketStream(b), ("127.0.0.1", 5555), ("127.0.0.1", 15008))
        (line,) = lines.find("connection failed")
        assert line.endswith('direction="outbound" error="attempted recursive call to ourselves"')
        await trio.aclose_forcefully(app_side)


async def tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        client = await trio.open_tcp_stream(*listener.socket.getsockname())
        server = await listener.accept()
    return client, server


async def test_a_refused_client_reads_the_end_or_a_reset_as_its_unread_bytes_decide(lines):
    """ztunnel drops a refused client's socket: the kernel sends FIN, or RST if bytes are unread."""
    proxy = make_proxy()

    async def refuse(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
        await outbound.proxy_to(proxy, stream, ("127.0.0.1", 5555), ("127.0.0.1", 15008))

    quiet, server = await tcp_pair()
    await proxy._serve(refuse, server)
    async with quiet:
        assert await quiet.receive_some() == b""
    talker, server = await tcp_pair()
    await talker.send_all(b"GET / HTTP/1.1\r\n\r\n")
    with trio.fail_after(5):
        assert await server.socket.recv(1, socket.MSG_PEEK) == b"G"  # arrived, still unread
    await proxy._serve(refuse, server)
    async with talker:
        with pytest.raises(trio.BrokenResourceError):
            await talker.receive_some()
    assert len(lines.find("connection failed", "attempted recursive call to ourselves")) == 2


async def test_garbage_and_silence_on_15008_are_refused(lines, autojump_clock):
    from components.common import pki
    from components.common.caclient import WorkloadCertificate
    from components.ztunnel import socks5

    root = pki.RootCA.generate()

    async def fetch(identity):
        issued = root.issue(str(identity))
        return WorkloadCertificate(identity, issued.key_pem, (issued.cert_pem, root.cert_pem), issued.cert)

    proxy = make_proxy()
    proxy.inputs.certs = CertManager(fetch)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.inputs.certs.run)
        for payload in (b"GET / HTTP/1.1\r\n\r\n" * 10, b""):
            client, server = await tcp_pair()
            if payload:
                await client.send_all(payload)
            with trio.fail_after(30):
                await inbound.handle(proxy, server)
            await client.aclose()
        failed = lines.find("connection failed", 'direction="inbound"')
        assert len(failed) == 2
        assert "tls handshake error" in failed[0] and "tls handshake timed out" in failed[1]
        # A SOCKS5 client that speaks something else is closed without a tunnel.
        client, server = await tcp_pair()
        await client.send_all(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00")
        async with server:
            await socks5.handle(proxy, server)
        try:
            assert await client.receive_some() == b""
        except trio.BrokenResourceError:
            pass  # closed with its bytes unread: a reset
        assert not lines.find("connection complete")
        nursery.cancel_scope.cancel()
