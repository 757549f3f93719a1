"""ztunnel's data path through real namespaces: listeners bound in a pod's netns passed by fd,
the transparent connect to the app, and a client's connection captured by the in-pod rules,
carried over HBONE and authorized. Root only (unshare -n); everything stays in the namespaces.
"""

from __future__ import annotations

import os
import socket

import pytest
import trio

from components.common import pki
from components.common.caclient import WorkloadCertificate
from components.ztunnel import sockets
from components.ztunnel.app import HANDLERS
from components.ztunnel.certs import CertManager
from components.ztunnel.config import Config
from components.ztunnel.metrics import Metrics
from components.ztunnel.proxy import ProxyInputs, WorkloadProxy
from components.ztunnel.sockets import Netns
from components.ztunnel.state import Store, WorkloadInfo
from tests.unit.ztunnel_fixtures import captured_log
from tests.unit.ztunnel_netns import Namespace, link, missing_tools

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=missing_tools() or "")

CLIENT_IP, SERVER_IP, VIP = "10.0.0.1", "10.0.0.2", "10.96.0.5"


def workload(name: str, sa: str, ip: str) -> dict:
    return {"uid": f"Kubernetes//Pod/default/{name}-1", "name": f"{name}-1", "namespace": "default",
            "workloadIps": [ip], "serviceAccount": sa, "trustDomain": "cluster.local", "node": "node1",
            "protocol": "HBONE", "networkMode": "Standard", "workloadName": name, "workloadType": "pod",
            "canonicalName": name, "canonicalRevision": "v1", "clusterId": "Kubernetes", "status": "Healthy",
            "authorizationPolicies": [], "services": []}


def mesh_config(policies: list | None = None) -> dict:
    client, server = workload("sleep", "sleep", CLIENT_IP), workload("httpbin", "httpbin", SERVER_IP)
    server["services"] = ["default/httpbin.default.svc.cluster.local"]
    service = {"name": "httpbin", "namespace": "default", "hostname": "httpbin.default.svc.cluster.local",
               "vips": [f"/{VIP}"], "ports": {"8000": 8080}, "subjectAltNames": [],
               "endpoints": {server["uid"]: {"workloadUid": server["uid"], "port": {"8000": 8080},
                                             "status": "Healthy"}}}
    return {"version": "1", "workloads": [client, server], "services": [service], "policies": policies or []}


@pytest.fixture
def pods():
    client, server = Namespace.create(), Namespace.create()
    try:
        link(client, CLIENT_IP, server, SERVER_IP)
        client.install_inpod_rules()
        server.install_inpod_rules()
        yield client, server
    finally:
        client.close()
        server.close()


@pytest.fixture(scope="module")
def root_ca() -> pki.RootCA:
    return pki.RootCA.generate()


@pytest.fixture
def captured():
    with captured_log() as handler:
        yield handler


async def echo_server(netns: Netns, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """An app in the pod: answers each connection with `<peer ip>|` then echoes."""
    sock = sockets.listener_socket(netns, "0.0.0.0", port, transparent=False, mark=None)

    async def serve(stream: trio.SocketStream) -> None:
        peer = sockets.canonical(stream.socket.getpeername())[0]
        async with stream:
            await stream.send_all(f"{peer}|".encode())
            async for data in stream:
                await stream.send_all(data)

    await trio.serve_listeners(serve, [trio.SocketListener(sock)], task_status=task_status)


async def app_connect(netns: Netns, address: tuple[str, int]) -> trio.SocketStream:
    """A connection the pod's app makes: no mark, so the pod's rules capture it."""
    sock = trio.socket.from_stdlib_socket(netns.socket(socket.AF_INET, mark=None))
    with trio.fail_after(10):
        await sock.connect(address)
    return trio.SocketStream(sock)


async def exchange(stream: trio.SocketStream, data: bytes) -> bytes:
    await stream.send_all(data)
    await stream.send_eof()
    received = b""
    with trio.fail_after(10):
        async for chunk in stream:
            received += chunk
    return received


class Mesh:
    def __init__(self, root_ca: pki.RootCA) -> None:
        async def fetch(identity):
            issued = root_ca.issue(str(identity))
            return WorkloadCertificate(identity, issued.key_pem, (issued.cert_pem, root_ca.cert_pem), issued.cert)

        self.store = Store()
        self.store.update(mesh_config())
        self.metrics = Metrics()
        self.inputs = ProxyInputs(Config(node_name="node1"), self.store, CertManager(fetch), self.metrics)


async def test_listeners_bound_in_pod_netns(pods):
    client, _server = pods
    inputs = ProxyInputs(Config(node_name="node1"), Store(), CertManager(lambda i: None), Metrics())
    proxy = WorkloadProxy(inputs, "uid-1", WorkloadInfo("sleep-1", "default", "sleep"), Netns(os.dup(client.fd)))
    proxy.bind()
    try:
        listening = client.run("ss", "-ntl")
        for address in ("*:15001", "*:15006", "*:15008", "127.0.0.1:15080"):
            assert address in listening, listening
        for sock in proxy.listeners.values():
            assert sock.getsockopt(socket.SOL_SOCKET, sockets.SO_MARK) == 0x539
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        proxy.stop_listening()
    assert "15001" not in client.run("ss", "-ntl")


async def test_transparent_connect_keeps_client_ip(pods):
    _client, server = pods
    netns = Netns(server.fd)
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, netns, 8080)
        stream = await sockets.connect(netns, (SERVER_IP, 8080), source_ip="10.1.2.3")
        async with stream:
            assert await exchange(stream, b"hi") == b"10.1.2.3|hi"
        nursery.cancel_scope.cancel()


async def test_hbone_through_captured_pods(pods, root_ca, captured):
    client, server = pods
    mesh = Mesh(root_ca)
    # A proxy owns (and closes) its netns fd, as it owns the one ZDS sent.
    client_proxy = WorkloadProxy(mesh.inputs, "uid-c", WorkloadInfo("sleep-1", "default", "sleep"),
                                 Netns(os.dup(client.fd)))
    server_proxy = WorkloadProxy(mesh.inputs, "uid-s", WorkloadInfo("httpbin-1", "default", "httpbin"),
                                 Netns(os.dup(server.fd)))
    async with trio.open_nursery() as nursery:
        await nursery.start(mesh.inputs.certs.run)
        for proxy in (client_proxy, server_proxy):
            proxy.bind()
            await nursery.start(proxy.run, HANDLERS)
        await nursery.start(echo_server, Netns(server.fd), 8080)

        # To the service VIP: HBONE to the endpoint, the app sees the client's own IP.
        stream = await app_connect(Netns(client.fd), (VIP, 8000))
        async with stream:
            assert await exchange(stream, b"hello") == f"{CLIENT_IP}|hello".encode()
        # To the pod IP directly.
        stream = await app_connect(Netns(client.fd), (SERVER_IP, 8080))
        async with stream:
            assert await exchange(stream, b"x" * 1_000_000) == f"{CLIENT_IP}|".encode() + b"x" * 1_000_000

        with trio.fail_after(5):
            while len(captured.find("connection complete", 'direction="inbound"')) < 2:
                await trio.sleep(0.01)
        outbound = captured.find("connection complete", 'direction="outbound"')
        assert f"dst.addr={SERVER_IP}:15008" in outbound[0]
        assert f"dst.hbone_addr={SERVER_IP}:8080" in outbound[0]
        assert 'dst.service="httpbin.default.svc.cluster.local"' in outbound[0]
        assert 'src.identity="spiffe://cluster.local/ns/default/sa/sleep"' in outbound[0]
        assert "bytes_sent=5 bytes_recv=14" in outbound[0]

        # An ALLOW policy for another principal: the client's connection is reset.
        policy = {"name": "allow-other", "namespace": "default", "scope": "Namespace", "action": "Allow",
                  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/other"}]}]]], "dryRun": False}
        mesh.store.update(mesh_config([policy]))
        stream = await app_connect(Netns(client.fd), (VIP, 8000))
        async with stream:
            with pytest.raises(trio.BrokenResourceError):
                await exchange(stream, b"hello")
        with trio.fail_after(5):
            while not captured.find("connection complete", "http status: 401 Unauthorized"):
                await trio.sleep(0.01)
        assert captured.find("connection complete", 'direction="inbound"',
                             "connection closed due to policy rejection: allow policies exist, but none allowed")
        body, _ = mesh.metrics.render()
        assert b'response_flags="DENY"' in body
        nursery.cancel_scope.cancel()


async def test_plaintext_inbound_through_tproxy(pods, root_ca, captured):
    """A client outside the mesh (its packets carry ztunnel's mark, so its own pod's rules let
    them pass) reaches the server pod's 15006; L4 policy sees no identity."""
    client, server = pods
    mesh = Mesh(root_ca)
    server_proxy = WorkloadProxy(mesh.inputs, "uid-s", WorkloadInfo("httpbin-1", "default", "httpbin"),
                                 Netns(os.dup(server.fd)))
    outside = Netns(client.fd)  # marked sockets: not captured on the client side
    async with trio.open_nursery() as nursery:
        await nursery.start(mesh.inputs.certs.run)
        server_proxy.bind()
        await nursery.start(server_proxy.run, HANDLERS)
        await nursery.start(echo_server, Netns(server.fd), 8080)
        stream = await sockets.connect(outside, (SERVER_IP, 8080))
        async with stream:
            assert await exchange(stream, b"plain") == f"{CLIENT_IP}|plain".encode()
        with trio.fail_after(5):
            while not captured.find("connection complete", 'direction="inbound"'):
                await trio.sleep(0.01)
        (line,) = captured.find("connection complete", 'direction="inbound"')
        assert f"dst.addr={SERVER_IP}:8080" in line and "src.identity" not in line and "dst.hbone_addr" not in line

        # Principals can never match a connection without identity: denied, the client is reset.
        mesh.store.update(mesh_config([{"name": "allow-sleep", "namespace": "default", "scope": "Namespace",
                                        "action": "Allow", "dryRun": False,
                                        "rules": [[[{"principals": [{"Presence": []}]}]]]}]))
        stream = await sockets.connect(outside, (SERVER_IP, 8080))
        async with stream:
            with pytest.raises(trio.BrokenResourceError):
                await exchange(stream, b"plain")
        body, _ = mesh.metrics.render()
        assert b'connection_security_policy="unknown"' in body and b'response_flags="DENY"' in body
        nursery.cancel_scope.cancel()
