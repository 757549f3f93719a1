"""`python -m components.ztunnel` as a process in its own network namespace, with a fake istiod
(push stream), a fake CA and a fake istio-cni handing it two pods' namespaces: seed 002's
listeners and log lines, curl through HBONE, the L4 policy's 401 (curl exit 56), readiness,
config_dump and the SIGTERM drain. Root only; everything stays inside namespaces it creates."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
from functools import partial

import pytest
import trio

from components.ca.root import serving_credentials
from components.ca.server import server_context
from components.common import jsonlines, pki, zds
from components.common.h2conn import H2Request, H2Stream, serve_h2
from components.ztunnel import sockets
from components.ztunnel.sockets import Netns
from tests.unit.test_ztunnel_inpod import FakeCni
from tests.unit.test_ztunnel_root import CLIENT_IP, SERVER_IP, VIP, mesh_config
from tests.unit.ztunnel_netns import Namespace, link, missing_tools

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=missing_tools() or "")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeIstiod:
    """The push stream: the current config as a JSON line, again on every `push`."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.version = 1
        self.changed = trio.Event()

    def push(self, config: dict) -> None:
        self.version += 1
        self.config = dict(config, version=str(self.version))
        self.changed.set()
        self.changed = trio.Event()

    async def handler(self, request: H2Request, stream: H2Stream) -> None:
        await stream.respond(200, [("content-type", "application/x-ndjson")])
        while True:
            changed = self.changed
            await stream.send_all(jsonlines.encode(self.config))
            await changed.wait()


def ca_handler(root: pki.RootCA):
    async def handler(request: H2Request, stream: H2Stream) -> None:
        body = json.loads(await stream.receive_all(1 << 20))
        identity = body["metadata"]["ImpersonatedIdentity"]
        leaf = root.sign_csr(body["csr"], [identity], datetime.timedelta(seconds=body["validityDuration"]))
        await stream.respond(200, [("content-type", "application/json")])
        await stream.send_all(json.dumps({"certChain": root.cert_chain(leaf)}).encode())
        await stream.send_eof()
    return handler


async def serve_in(netns: Netns, port: int, on_connection, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    sock = sockets.listener_socket(netns, "127.0.0.1", port, transparent=False, mark=None)
    await trio.serve_listeners(on_connection, [trio.SocketListener(sock)], task_status=task_status)


async def http_app(netns: Netns, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    sock = sockets.listener_socket(netns, "0.0.0.0", 8080, transparent=False, mark=None)

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            body = b"<title>httpbin.org</title>\n"
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                                  + body)

    await trio.serve_listeners(serve, [trio.SocketListener(sock)], task_status=task_status)


async def http_get(netns: Netns, port: int, path: str) -> tuple[int, bytes]:
    """GET from inside ztunnel's netns (its admin ports are not reachable from ours)."""
    sock = trio.socket.from_stdlib_socket(netns.socket(socket.AF_INET, mark=None))
    await sock.connect(("127.0.0.1", port))
    async with trio.SocketStream(sock) as stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nhost: localhost\r\n\r\n".encode())
        data = b""
        async for chunk in stream:
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def curl(pod: Namespace, url: str) -> tuple[int, bytes]:
    result = await trio.run_process(["nsenter", "-t", str(pod.pid), "-n", "curl", "-s", "-m", "10", url],
                                    capture_stdout=True, check=False)
    return result.returncode, result.stdout


@pytest.fixture
def cluster():
    ztunnel_ns, client, server = Namespace.create(), Namespace.create(), Namespace.create()
    try:
        link(client, CLIENT_IP, server, SERVER_IP)
        client.install_inpod_rules()
        server.install_inpod_rules()
        yield ztunnel_ns, client, server
    finally:
        for ns in (ztunnel_ns, client, server):
            ns.close()


async def wait_for(predicate, timeout: float = 15) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


@pytest.mark.skipif(not os.path.exists("/usr/bin/curl"), reason="needs curl")
async def test_ztunnel_process(cluster, tmp_path):
    ztunnel_ns, client, server = cluster
    own = Netns(ztunnel_ns.fd, mark=None)
    root = pki.RootCA.generate()
    (tmp_path / "root-cert.pem").write_bytes(root.cert_pem)
    (tmp_path / "istio-token").write_text("token")
    istiod = FakeIstiod(mesh_config())
    cni = FakeCni(str(tmp_path / "ztunnel.sock"))
    await cni.start()
    ca_context = server_context(*serving_credentials(root))
    lines: list[str] = []

    async def ca_connection(transport):
        await serve_h2(trio.SSLStream(transport, ca_context, server_side=True, https_compatible=True),
                       ca_handler(root))

    env = dict(os.environ, NODE_NAME="node1", POD_NAME="ztunnel-abcde", POD_NAMESPACE="istio-system",
               XDS_ADDRESS="127.0.0.1:15010", CA_ADDRESS="127.0.0.1:15012",
               CA_ROOT_CA=str(tmp_path / "root-cert.pem"), AUTH_TOKEN=str(tmp_path / "istio-token"),
               INPOD_UDS=cni.path, PYTHONPATH=REPO)

    async def read_logs(process):
        buffer = b""
        async for chunk in process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines.extend(line.decode() for line in complete)

    def logged(*parts):
        return [line for line in lines if all(p in line for p in parts)]

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_in, own, 15010, partial(serve_h2, handler=istiod.handler))
        await nursery.start(serve_in, own, 15012, ca_connection)
        await nursery.start(http_app, Netns(server.fd, mark=None))
        process = await trio.lowlevel.open_process(
            ["nsenter", "-t", str(ztunnel_ns.pid), "-n", sys.executable, "-m", "components.ztunnel"],
            env=env, cwd=REPO, stderr=subprocess.PIPE)
        nursery.start_soon(read_logs, process)
        try:
            with trio.fail_after(20):
                conn = await cni.accept()
            # istio-cni's snapshot, then the pods as they come.
            assert (await cni.send(conn, zds.SnapshotSent())).error == ""
            for uid, name, sa in (("uid-client", "sleep-1", "sleep"), ("uid-server", "httpbin-1", "httpbin")):
                pod = client if name == "sleep-1" else server
                fd = os.dup(pod.fd)
                try:
                    await zds.send_request(conn, zds.AddWorkload(uid, zds.WorkloadInfo(name, "default", sa)), fd)
                finally:
                    os.close(fd)
                assert (await zds.receive_ack(conn)).error == ""
            await wait_for(lambda: len(logged("listener established")) == 8)
            listening = client.run("ss", "-ntl")
            for address in ("*:15001", "*:15006", "*:15008", "127.0.0.1:15080"):
                assert address in listening
            assert logged("listener established", "address=[::]:15008", 'component="inbound"', "transparent=true")
            assert logged("pod received, starting proxy", 'uid="uid-client"', 'name="sleep-1"')
            await wait_for(lambda: logged("received response", "istio.workload.Address", "size=3"), 5)

            with trio.fail_after(15):
                while (await http_get(own, 15021, "/healthz/ready"))[0] != 200:
                    await trio.sleep(0.05)

            rc, body = await curl(client, f"http://{VIP}:8000/")
            assert (rc, body) == (0, b"<title>httpbin.org</title>\n")
            await wait_for(lambda: logged("connection complete", 'direction="inbound"'))
            assert logged("connection complete", 'direction="outbound"', f"dst.addr={SERVER_IP}:15008")

            policy = {"name": "allow-sleep-to-httpbin", "namespace": "default", "scope": "Namespace",
                      "action": "Allow", "dryRun": False,
                      "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/notsleep"}]}]]]}
            istiod.push(mesh_config([policy]))
            await wait_for(lambda: logged("istio.security.Authorization", "size=1"))
            rc, _ = await curl(client, f"http://{VIP}:8000/")
            # A reset (56, seed 002's) or, when ztunnel closes before curl has sent its request on a
            # loaded machine, an empty reply (52): the same race exists with the real ztunnel.
            assert rc in (52, 56)
            await wait_for(lambda: logged("connection complete", 'error="http status: 401 Unauthorized"'))

            status, body = await http_get(own, 15000, "/config_dump")
            dump = json.loads(body)
            assert status == 200 and {c["identity"] for c in dump["certificates"]} == {
                "spiffe://cluster.local/ns/default/sa/sleep", "spiffe://cluster.local/ns/default/sa/httpbin"}
            assert {v["state"] for v in dump["workloadState"].values()} == {"Up"}
            status, body = await http_get(own, 15020, "/metrics")
            assert b'response_flags="DENY"' in body

            process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await process.wait() == 0
            assert "15001" not in client.run("ss", "-ntl")
        except BaseException:
            print("\n".join(lines))
            raise
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            nursery.cancel_scope.cancel()
