"""The CA client against CAs that misbehave: a leaf for another identity (ztunnel's SanError), an
empty chain, a leaf for another key, answers that are not the protocol, no CA at all, a CA that
never answers."""

from __future__ import annotations

import datetime
import json
from functools import partial
from typing import Callable

import pytest
import trio

from components.ca.root import serving_credentials
from components.ca.server import server_context
from components.common import caclient, pki
from components.common.h2conn import H2Request, H2Stream, serve_h2

SLEEP = "spiffe://cluster.local/ns/default/sa/sleep"
OTHER = "spiffe://cluster.local/ns/default/sa/other"


@pytest.fixture(scope="module")
def root() -> pki.RootCA:
    return pki.RootCA.generate()


Answer = Callable[[dict], tuple[int, bytes]]


async def fake_ca(nursery: trio.Nursery, root: pki.RootCA, answer: Answer) -> str:
    """A TLS+HTTP/2 server with the CA's serving certificate that answers every request with `answer(request)`."""
    context = server_context(*serving_credentials(root))

    async def handler(request: H2Request, stream: H2Stream) -> None:
        status, body = answer(json.loads(await stream.receive_all(1 << 20)))
        await stream.respond(status, [("content-type", "application/json")])
        await stream.send_all(body)
        await stream.send_eof()

    async def connection(transport: trio.SocketStream) -> None:
        await serve_h2(trio.SSLStream(transport, context, server_side=True, https_compatible=True), handler)

    listeners = await nursery.start(partial(trio.serve_tcp, connection, 0, host="127.0.0.1"))
    return f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"


def signing_for(root: pki.RootCA, identity: str) -> Answer:
    def answer(request: dict) -> tuple[int, bytes]:
        leaf = root.sign_csr(request["csr"], [identity], datetime.timedelta(hours=1))
        return 200, json.dumps({"certChain": root.cert_chain(leaf)}).encode()
    return answer


async def test_the_request_is_ztunnels_and_a_good_answer_is_accepted(nursery, root):
    seen: list[dict] = []

    def answer(request: dict) -> tuple[int, bytes]:
        seen.append(request)
        return signing_for(root, SLEEP)(request)

    address = await fake_ca(nursery, root, answer)
    cert = await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=True, ttl_seconds=600)
    request = seen[0]
    assert request["validityDuration"] == 600 and request["metadata"] == {"ImpersonatedIdentity": SLEEP}
    csr = pki.load_csr(request["csr"])
    assert pki.csr_uris(csr) == [SLEEP] and list(csr.subject) == []
    assert cert.chain_pem == cert.cert_pem and cert.root_pem == root.cert_pem
    assert pki.load_private_key(cert.key_pem).public_key().public_numbers() == cert.cert.public_key().public_numbers()
    await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=False)
    assert "metadata" not in seen[1]


async def test_a_leaf_for_another_identity_is_a_san_error(nursery, root):
    address = await fake_ca(nursery, root, signing_for(root, OTHER))
    with pytest.raises(caclient.SanError, match=f"did not find expected SAN: {SLEEP}"):
        await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=True)


async def test_an_empty_chain_is_an_error(nursery, root):
    address = await fake_ca(nursery, root, lambda request: (200, b'{"certChain": []}'))
    with pytest.raises(caclient.EmptyResponse, match=f"chain returned from CA is empty for: {SLEEP}"):
        await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=True)


async def test_a_leaf_for_another_key_is_an_error(nursery, root):
    stranger = root.issue(SLEEP)
    address = await fake_ca(nursery, root, lambda request: (
        200, json.dumps({"certChain": [stranger.cert_pem.decode(), root.cert_pem.decode()]}).encode()))
    with pytest.raises(caclient.CAClientError, match="not for the key of the request"):
        await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=True)


@pytest.mark.parametrize("status, body, error", [
    (200, b"not json", "invalid response from CA"),
    (200, b'{"certChain": ["garbage"]}', "invalid certificate chain from CA"),
    (503, b"upstream connect error", "HTTP status 503: upstream connect error"),
])
async def test_answers_outside_the_protocol_are_errors(nursery, root, status, body, error):
    address = await fake_ca(nursery, root, lambda request: (status, body))
    with pytest.raises(caclient.CAClientError, match=error):
        await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=False)


async def test_no_ca_listening_is_unavailable(root):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with pytest.raises(caclient.CAUnavailable) as info:
        await caclient.fetch_certificate(f"127.0.0.1:{port}", root.cert_pem, "tok", SLEEP, impersonate=False)
    assert info.value.code == 14
    assert str(info.value).startswith(
        "signing gRPC error (The service is currently unavailable): client error (Connect)")


async def test_a_ca_that_never_answers_hits_the_deadline(nursery, root):
    async def silent(transport: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
    address = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"
    with pytest.raises(caclient.CAUnavailable) as info:
        await caclient.fetch_certificate(address, root.cert_pem, "tok", SLEEP, impersonate=False, timeout=0.2)
    assert (info.value.code, info.value.status) == (4, "DeadlineExceeded")


async def test_an_identity_that_is_not_spiffe_is_rejected_before_any_request(root):
    with pytest.raises(ValueError, match="invalid spiffe"):
        await caclient.fetch_certificate("127.0.0.1:1", root.cert_pem, "tok", "sleep", impersonate=False)
