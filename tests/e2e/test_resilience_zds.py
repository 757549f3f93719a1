"""Malformed ZDS messages against a live ztunnel (issue 7): on httpbin's node the test takes the
server side of /var/run/ztunnel/ztunnel.sock over from istio-cni (SIGSTOP, its socket moved
aside, ours bound in its place), restarts that ztunnel by SIGKILL so that it connects to us,
hands it the node's pods in the real wire format (an Add with each pod's netns fd, then
SnapshotSent), then sends each malformed message. For every one ztunnel must NACK it ("failure to
read message : ..."), log it, close the connection and come back with a new hello, keep serving
the pods it has (across nodes and on the node), not restart, start no proxy again and leak no fd.
The socket is then handed back to istio-cni, which must capture every pod of the node again
with no pod restarted and one set of rules each (ztunnel-and-istio-facts.md section 3). Needs root.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

from components.common import zds
from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e import runprocs
from tests.e2e.test_ambient_l4 import (NS, TITLE, assert_seed_002_rules, config_dump, curl, eventually, in_pod,
                                       iptables_save, metric_sum, metrics, pod, pod_log, set_enrolment,
                                       wait_for_log, ztunnel_on)
from tests.e2e.test_resilience_bad_input import settled_fds

pytestmark = pytest.mark.e2e
TEST_TIMEOUT = 60.0
EXCHANGE_TIMEOUT = 5.0  # istio-cni's read/write deadline
CNI_LABEL = "k8s-app=istio-cni-node"

# A WorkloadRequest whose only field is number 15, a type ZDS does not have (an empty message).
UNKNOWN_TYPE = bytes([15 << 3 | 2, 0])

NEWCOMER = """
apiVersion: v1
kind: Pod
metadata: {name: newcomer, namespace: ambient-demo, labels: {app: newcomer}}
spec:
  terminationGracePeriodSeconds: 0
  nodeSelector: {kubernetes.io/hostname: %s}
  containers:
  - name: curl
    image: curlimages/curl
    command: ["/bin/sleep", "infinity"]
"""


@pytest.fixture(scope="module")
def zds_mesh() -> Iterator[Cluster]:
    """topologies/ambient.yaml with ambient-demo enrolled, as `e2e-res-zds`."""
    with cluster_up(REPO / "topologies" / "ambient.yaml", "e2e-res-zds") as cluster:
        trio.run(set_enrolment, cluster, True)
        yield cluster


@dataclass(frozen=True)
class NodePod:
    name: str
    uid: str
    service_account: str
    restarts: int
    netns: Path  # the pod's netns as the host sees it, through the run's /proc


async def node_pods(cluster: Cluster, node: str) -> list[NodePod]:
    """The ambient-demo pods of `node`."""
    items = (await cluster.api.list("v1", "Pod", NS, field_selector=f"spec.nodeName={node}"))["items"]
    pods = []
    for obj in items:
        meta = obj["metadata"]
        sandbox = json.loads((cluster.run.pod_dir(NS, meta["name"]) / "sandbox.json").read_text())
        pods.append(NodePod(meta["name"], meta["uid"], obj["spec"]["serviceAccountName"],
                            sum(c["restartCount"] for c in obj["status"]["containerStatuses"]),
                            Path(f"/proc/{cluster.run.init_pid()}/root/proc/{sandbox['pause_pid']}/ns/net")))
    return sorted(pods, key=lambda p: p.name)


async def node_agent(cluster: Cluster, node: str) -> dict[str, Any]:
    items = (await cluster.api.list("v1", "Pod", "istio-system", label_selector=CNI_LABEL,
                                    field_selector=f"spec.nodeName={node}"))["items"]
    (agent,) = items
    return agent


async def ztunnel_restarts(cluster: Cluster, name: str) -> int:
    return (await cluster.api.get("v1", "Pod", "istio-system", name))["status"]["containerStatuses"][0]["restartCount"]


class FakeNodeAgent:
    """istio-cni's side of ZDS, spoken by the test on the node's socket path: the real messages,
    and the malformed ones."""

    def __init__(self, path: Path, pods: list[NodePod]):
        self.path = path
        self.pods = pods
        self.listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.conn: trio.socket.SocketType | None = None

    async def listen(self) -> None:
        await self.listener.bind(str(self.path))
        self.listener.listen(4)

    async def accept(self) -> None:
        """ztunnel's next connection: its hello, then the node's pods as a snapshot."""
        with trio.fail_after(EXCHANGE_TIMEOUT * 3):
            self.conn, _ = await self.listener.accept()
        with trio.fail_after(EXCHANGE_TIMEOUT):
            hello = await zds.receive_hello(self.conn)
            assert hello.version == zds.VERSION_V1, hello
            for node_pod in self.pods:
                with open(node_pod.netns, "rb") as netns:
                    info = zds.WorkloadInfo(node_pod.name, NS, node_pod.service_account)
                    await zds.send_request(self.conn, zds.AddWorkload(node_pod.uid, info), netns.fileno())
                assert await zds.receive_ack(self.conn) == zds.Ack(), node_pod
            await zds.send_request(self.conn, zds.SnapshotSent())
            assert await zds.receive_ack(self.conn) == zds.Ack()

    async def send_bad(self, data: bytes, netns_paths: list[Path]) -> tuple[str, bool]:
        """Send one datagram with these netns fds; ztunnel's NACK text and whether it then closed."""
        assert self.conn is not None
        files = [open(path, "rb") for path in netns_paths]
        try:
            with trio.fail_after(EXCHANGE_TIMEOUT):
                await zds.send_datagram(self.conn, data, [f.fileno() for f in files])
                ack = await zds.receive_ack(self.conn)
                try:
                    await zds.receive_datagram(self.conn)
                    closed = False
                except zds.ZdsClosed:
                    closed = True
        finally:
            for file in files:
                file.close()
        self.conn.close()
        self.conn = None
        return ack.error, closed

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


async def one_set_of_rules(cluster: Cluster, app: str) -> None:
    """The pod is captured once: one jump to ISTIO_PRERT, seed 002's rules, one fwmark rule and
    ztunnel's listeners in it once each."""
    save = await iptables_save(cluster, app)
    assert save.count("-A PREROUTING -j ISTIO_PRERT") == 1, (app, save)
    assert_seed_002_rules(save)
    rules = (await in_pod(cluster, app, "ip", "rule")).stdout
    assert rules.count("fwmark 0x111/0xfff lookup 100") == 1, (app, rules)
    listeners = (await in_pod(cluster, app, "ss", "-ntl")).stdout
    assert listeners.count("*:15008 ") == 1, (app, listeners)


async def served(cluster: Cluster) -> None:
    """httpbin through the mesh from the other node (notsleep) and from its own (sleep)."""
    for client in ("notsleep", "sleep"):
        result = await curl(cluster, client, "httpbin:8000", "--max-time", "3")
        assert result.exit_code == 0 and TITLE in result.stdout, (client, result)


# Each malformed message: the datagram, how many pod netns fds ride with it, and ztunnel's NACK
# (upstream's texts: inpod/protocol.rs, prost's decode errors).
CASES: dict[str, tuple[str, int, str]] = {
    "add-without-fd": ("add", 0, "failure to read message : No control message"),
    "add-with-two-fds": ("add", 2, "failure to read message : Expected 1 FD, got 2"),
    "unknown-type": ("unknown", 0, "failure to read message : no payload"),
    "garbage": ("garbage", 0,
                "failure to read message : failed to decode Protobuf message: invalid wire type value: 7"),
    "del-with-fd": ("del", 1, "failure to read message : Unexpected control message"),
    "oversized": ("oversized", 0, "failure to read message : received truncated message"),
}


def datagram(kind: str, uid: str) -> bytes:
    if kind == "add":
        return zds.encode_request(zds.AddWorkload(uid, zds.WorkloadInfo("httpbin", NS, "httpbin")))
    if kind == "del":
        return zds.encode_request(zds.DelWorkload(uid))
    if kind == "unknown":
        return UNKNOWN_TYPE
    if kind == "garbage":
        return b"GET / HTTP/1.1\r\nHost: ztunnel\r\n\r\n"  # 'G' is field 8 of wire type 7, which does not exist
    return zds.encode_request(zds.DelWorkload("x" * 2000))  # past ztunnel's 1024-byte buffer


async def test_malformed_zds_messages_are_refused_and_ztunnel_keeps_serving(zds_mesh: Cluster) -> None:
    cluster = zds_mesh
    with trio.fail_after(TEST_TIMEOUT):
        httpbin = await pod(cluster, "httpbin")
        node = httpbin.node
        pods = await node_pods(cluster, node)
        assert {p.name.split("-")[0] for p in pods} == {"httpbin", "sleep"}, pods
        await served(cluster)
        ztunnel = await ztunnel_on(cluster, node)
        agent = await node_agent(cluster, node)
        agent_pid = runprocs.container_pid(agent)
        agent_log_start = len(await pod_log(cluster, agent["metadata"]["name"]))
        path = cluster.run.node_root(node) / "var/run/ztunnel/ztunnel.sock"
        aside = path.with_name("ztunnel.sock.istio-cni")
        fake = FakeNodeAgent(path, pods)
        observed: dict[str, str] = {}
        await runprocs.signal(cluster, agent_pid, "STOP")
        try:
            os.rename(path, aside)
            await fake.listen()
            restarts = await ztunnel_restarts(cluster, ztunnel)
            await runprocs.signal(cluster, runprocs.container_pid(
                await cluster.api.get("v1", "Pod", "istio-system", ztunnel)), "KILL")
            await fake.accept()  # the restarted ztunnel, given the node's pods by us
            assert await ztunnel_restarts(cluster, ztunnel) == restarts + 1
            assert await ztunnel_on(cluster, node) == ztunnel
            await eventually(lambda: _serves_quietly(cluster), 15, interval=0.3)
            pid = runprocs.container_pid(await cluster.api.get("v1", "Pod", "istio-system", ztunnel))
            started = metric_sum(await metrics(cluster, ztunnel), "workload_manager_proxies_started_total")
            assert started == len(pods), started
            fds = await settled_fds(cluster, pid)
            httpbin_netns = next(p.netns for p in pods if p.uid == httpbin.uid)

            for case, (kind, fd_count, nack) in CASES.items():
                log_start = len(await pod_log(cluster, ztunnel))
                error, closed = await fake.send_bad(datagram(kind, httpbin.uid), [httpbin_netns] * fd_count)
                observed[case] = f"NACK {error!r}, connection {'closed' if closed else 'kept'}"
                assert (error, closed) == (nack, True), (case, error, closed)
                line = await wait_for_log(cluster, ztunnel, "failed to read message", after=log_start)
                observed[case] += f"; log: {line.strip()}"
                await fake.accept()  # ztunnel reconnects at once and takes the snapshot again
                assert await runprocs.alive(cluster, pid), case
                assert await ztunnel_restarts(cluster, ztunnel) == restarts + 1, case
                await served(cluster)
                samples = await metrics(cluster, ztunnel)
                assert metric_sum(samples, "workload_manager_proxies_started_total") == started, case
                await settled_fds(cluster, pid, at_most=fds)
        finally:
            fake.close()
            if aside.exists():
                os.rename(aside, path)  # istio-cni's socket back, in place of ours
            await runprocs.signal(cluster, agent_pid, "CONT")
            for case, outcome in observed.items():
                print(f"{case}: {outcome}")

        # ztunnel, cut off from us, reconnects to istio-cni, which sends it the node's pods again.
        await wait_for_log(cluster, agent["metadata"]["name"], "received hello from ztunnel", after=agent_log_start)

        async def all_held() -> bool:
            states = (await config_dump(cluster, ztunnel))["workloadState"]
            return {p.uid for p in pods} <= {uid for uid, s in states.items() if s.get("state") != "Pending"}
        await eventually(all_held, 15, interval=0.3)
        await served(cluster)
        for app in ("httpbin", "sleep"):
            await one_set_of_rules(cluster, app)
        assert metric_sum(await metrics(cluster, ztunnel), "workload_manager_proxies_started_total") == started
        assert [(p.uid, p.restarts) for p in await node_pods(cluster, node)] == [(p.uid, p.restarts) for p in pods]
        assert len(await runprocs.pids_of(cluster, "components.cni")) == len(cluster.nodes())
        assert len(await runprocs.pids_of(cluster, "components.ztunnel")) == len(cluster.nodes())
        await newcomer_is_captured_and_released(cluster, node, ztunnel)


async def newcomer_is_captured_and_released(cluster: Cluster, node: str, ztunnel: str) -> None:
    """A pod started on the node now is captured through istio-cni's Add (it reaches httpbin
    through the mesh), and its deletion reaches ztunnel as a Del."""
    await cluster.apply(NEWCOMER % node)
    (await cluster.kubectl("wait", "--for=condition=Ready", "pod/newcomer", "-n", NS, "--timeout=20s")).check()
    uid = (await cluster.api.get("v1", "Pod", NS, "newcomer"))["metadata"]["uid"]

    async def held() -> bool:
        return uid in (await config_dump(cluster, ztunnel))["workloadState"]
    await eventually(held, 10, interval=0.2)
    listeners = (await cluster.exec("newcomer", "ss", "-ntl", namespace=NS)).stdout
    assert "*:15008 " in listeners and "*:15001 " in listeners, listeners
    result = await cluster.exec("newcomer", "curl", "-s", "--max-time", "3", "httpbin:8000", namespace=NS)
    assert result.exit_code == 0 and TITLE in result.stdout, result
    (await cluster.kubectl("delete", "pod", "newcomer", "-n", NS)).check()

    async def released() -> bool:
        return uid not in (await config_dump(cluster, ztunnel))["workloadState"]
    await eventually(released, 10, interval=0.2)


async def _serves_quietly(cluster: Cluster) -> bool:
    try:
        await served(cluster)
    except AssertionError:
        return False
    return True
