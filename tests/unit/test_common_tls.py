"""SPIFFE identities and HBONE's mutual TLS over socketpairs: who is accepted and who is not."""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile

import pytest
import trio

from components.common import pki, tls
from components.common.h2conn import open_h2_connection, serve_h2
from components.common.tls import Identity, IdentityError, TLSError

SERVER_ID = "spiffe://cluster.local/ns/default/sa/httpbin"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/sleep"


@pytest.fixture(scope="module")
def root() -> pki.RootCA:
    return pki.RootCA.generate()


@pytest.fixture(scope="module")
def server_cert(root) -> pki.IssuedCertificate:
    return root.issue(SERVER_ID)


@pytest.fixture(scope="module")
def client_cert(root) -> pki.IssuedCertificate:
    return root.issue(CLIENT_ID)


def _server_ctx(cert: pki.IssuedCertificate, root_pem: bytes) -> ssl.SSLContext:
    return tls.server_context(cert.chain_pem, cert.key_pem, root_pem)


def _client_ctx(cert: pki.IssuedCertificate, root_pem: bytes) -> ssl.SSLContext:
    return tls.client_context(cert.chain_pem, cert.key_pem, root_pem)


def _socket_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def _handshake(client_ctx, server_ctx, expected, trust_domain="cluster.local"):
    """Run both sides; return ((client stream, server identity) | exc, (server stream, client identity) | exc)."""
    client_t, server_t = _socket_streams()
    results: dict[str, object] = {}

    async def side(name, coro):
        try:
            results[name] = await coro
        except (TLSError, trio.BrokenResourceError) as exc:
            results[name] = exc

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "server", tls.tls_accept(server_t, server_ctx, trust_domain))
            nursery.start_soon(side, "client", tls.tls_connect(client_t, client_ctx, expected))
    return results["client"], results["server"]


async def _peer_hangs_up(stream: trio.SSLStream) -> bool:
    """After a TLS 1.3 handshake the client learns of a rejection on its first read."""
    try:
        with trio.fail_after(5):
            return await stream.receive_some() == b""
    except trio.BrokenResourceError:
        return True
    finally:
        await trio.aclose_forcefully(stream)


# Identities

@pytest.mark.parametrize("text, expected", [
    ("spiffe://cluster.local/ns/default/sa/sleep", Identity("cluster.local", "default", "sleep")),
    ("spiffe://example.org/ns/istio-system/sa/ztunnel", Identity("example.org", "istio-system", "ztunnel")),
])
def test_identity_parses_and_formats(text, expected):
    identity = Identity.parse(text)
    assert identity == expected
    assert str(identity) == text
    assert tls.parse_identity(text) == expected


@pytest.mark.parametrize("text", [
    "cluster.local/ns/default/sa/sleep",
    "http://cluster.local/ns/default/sa/sleep",
    "spiffe://cluster.local/ns/default",
    "spiffe://cluster.local/ns/default/sa/sleep/extra",
    "spiffe://cluster.local/namespace/default/sa/sleep",
    "spiffe://cluster.local/ns/default/serviceaccount/sleep",
    "spiffe://cluster.local/sa/sleep/ns/default",
    "",
])
def test_bad_identities_are_rejected_with_ztunnels_message(text):
    with pytest.raises(IdentityError, match=f"invalid spiffe: {text}"):
        Identity.parse(text)


def test_spiffe_sans_of_a_certificate(root):
    cert = root.issue(SERVER_ID).cert
    assert tls.spiffe_uris(cert) == [SERVER_ID]
    assert tls.cert_identities(cert) == [Identity.parse(SERVER_ID)]
    assert tls.spiffe_uris(root.cert) == []


def test_identity_checks_on_a_certificate(root):
    cert = root.issue(SERVER_ID).cert
    assert tls.verify_server_identity(cert, [CLIENT_ID, SERVER_ID]) == Identity.parse(SERVER_ID)
    with pytest.raises(TLSError) as info:
        tls.verify_server_identity(cert, [CLIENT_ID])
    assert str(info.value) == ("identity verification error: peer did not present the expected SAN "
                               f"({CLIENT_ID}), got {SERVER_ID}")
    assert tls.verify_client_trust_domain(cert, "cluster.local") == Identity.parse(SERVER_ID)
    with pytest.raises(TLSError) as info:
        tls.verify_client_trust_domain(cert, "clusterset.local")
    assert str(info.value) == ("identity verification error: peer did not present the expected trustdomain "
                               f"(clusterset.local), got {SERVER_ID}")


def test_in_memory_pem_leaves_no_file_behind(root, server_cert, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    context = _server_ctx(server_cert, root.cert_pem)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert os.listdir(tmp_path) == []


# Handshakes

async def test_mtls_succeeds_with_matching_identities(root, server_cert, client_cert):
    sni_seen = []
    server_ctx = _server_ctx(server_cert, root.cert_pem)
    server_ctx.sni_callback = lambda sslobj, name, ctx: sni_seen.append(name)
    client, server = await _handshake(_client_ctx(client_cert, root.cert_pem), server_ctx, [SERVER_ID])
    client_stream, server_identity = client
    server_stream, client_identity = server
    assert server_identity == Identity.parse(SERVER_ID)
    assert client_identity == Identity.parse(CLIENT_ID)
    assert sni_seen == [None]
    for stream in (client_stream, server_stream):
        assert stream.version() == "TLSv1.3"
        assert stream.selected_alpn_protocol() == "h2"
        assert stream.cipher()[0] == "TLS_AES_256_GCM_SHA384"
    await client_stream.send_all(b"ping")
    assert await server_stream.receive_some() == b"ping"
    await client_stream.aclose()
    await server_stream.aclose()


async def test_h2_runs_over_the_mtls_stream(root, server_cert, client_cert):
    client, server = await _handshake(_client_ctx(client_cert, root.cert_pem),
                                      _server_ctx(server_cert, root.cert_pem), [SERVER_ID])

    async def handler(request, stream):
        await stream.respond(200, [("baggage", "k8s.namespace.name=default")])
        while data := await stream.receive_some():
            await stream.send_all(data.upper())
        await stream.send_eof()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_h2, server[0], handler)
        async with open_h2_connection(client[0]) as conn:
            status, headers, stream = await conn.connect("10.244.1.5:8080")
            assert status == 200 and headers == [("baggage", "k8s.namespace.name=default")]
            await stream.send_all(b"hello hbone")
            await stream.send_eof()
            assert await stream.receive_all(1024) == b"HELLO HBONE"


async def test_wrong_expected_san_fails_on_the_client(root, server_cert, client_cert):
    client, _ = await _handshake(_client_ctx(client_cert, root.cert_pem),
                                 _server_ctx(server_cert, root.cert_pem),
                                 ["spiffe://cluster.local/ns/default/sa/reviews"])
    assert isinstance(client, TLSError)
    assert str(client) == ("identity verification error: peer did not present the expected SAN "
                           f"(spiffe://cluster.local/ns/default/sa/reviews), got {SERVER_ID}")


async def test_client_from_another_trust_domain_is_refused(root, server_cert):
    foreign = root.issue("spiffe://clusterset.local/ns/default/sa/sleep")
    client, server = await _handshake(_client_ctx(foreign, root.cert_pem),
                                      _server_ctx(server_cert, root.cert_pem), [SERVER_ID])
    assert isinstance(server, TLSError)
    assert "expected trustdomain (cluster.local), got spiffe://clusterset.local/ns/default/sa/sleep" in str(server)
    assert await _peer_hangs_up(client[0])


async def test_server_cert_from_another_root_fails_the_client_handshake(root, client_cert):
    other = pki.RootCA.generate()
    client, server = await _handshake(_client_ctx(client_cert, root.cert_pem),
                                      _server_ctx(other.issue(SERVER_ID), other.cert_pem), [SERVER_ID])
    assert isinstance(client, TLSError)
    assert "tls handshake error" in str(client) and "certificate verify failed" in str(client)


async def test_client_cert_from_another_root_is_refused_by_the_server(root, server_cert):
    other = pki.RootCA.generate()
    client, server = await _handshake(_client_ctx(other.issue(CLIENT_ID), root.cert_pem),
                                      _server_ctx(server_cert, root.cert_pem), [SERVER_ID])
    assert isinstance(server, TLSError) and "certificate verify failed" in str(server)
    if not isinstance(client, Exception):
        assert await _peer_hangs_up(client[0])


async def test_client_without_a_certificate_is_refused(root, server_cert):
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.load_verify_locations(cadata=root.cert_pem.decode())
    bare.set_alpn_protocols(["h2"])
    client, server = await _handshake(bare, _server_ctx(server_cert, root.cert_pem), [SERVER_ID])
    assert isinstance(server, TLSError)
    if not isinstance(client, Exception):
        assert await _peer_hangs_up(client[0])


async def test_expired_leaf_is_rejected(root, client_cert):
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    expired = root.issue(SERVER_ID, datetime.timedelta(days=1), now=long_ago)
    client, _ = await _handshake(_client_ctx(client_cert, root.cert_pem),
                                 _server_ctx(expired, root.cert_pem), [SERVER_ID])
    assert isinstance(client, TLSError) and "certificate has expired" in str(client)


async def test_tls12_is_not_spoken(root, server_cert, client_cert):
    old = _client_ctx(client_cert, root.cert_pem)
    old.minimum_version = ssl.TLSVersion.TLSv1_2
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    client, server = await _handshake(old, _server_ctx(server_cert, root.cert_pem), [SERVER_ID])
    assert isinstance(client, TLSError) and isinstance(server, TLSError)
