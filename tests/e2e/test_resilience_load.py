"""Load through ztunnel across nodes: 1000 connections open at once from notsleep (ambient-worker)
to a TCP echo server on ambient-worker2, each carrying its own payload checked byte for byte, with
no error; afterwards both ztunnels are back to their baseline of open fds and near their baseline
memory, and no pod restarted (needs root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest
import trio

from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e import runprocs
from tests.e2e.test_ambient_l4 import NS, eventually, pod, set_enrolment, ztunnel_on

pytestmark = pytest.mark.e2e
CONNECTIONS = 1000
PAYLOAD = 256
CLIENT = str(Path(__file__).with_name("payload_client.py"))
MEMORY_SLACK_KIB = 16 * 1024  # allocator noise between two measurements of an idle ztunnel

ECHO = """
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: ambient-demo, labels: {app: tcp-echo}}
spec:
  ports: [{name: tcp, port: 9000}]
  selector: {app: tcp-echo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tcp-echo, namespace: ambient-demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: tcp-echo}}
  template:
    metadata: {labels: {app: tcp-echo}}
    spec:
      nodeSelector: {kubernetes.io/hostname: ambient-worker2}
      containers:
      - name: tcp-echo
        image: ambient/tcp-echo
        ports: [{containerPort: 9000}]
"""


async def _prepare(cluster: Cluster) -> None:
    await cluster.apply(ECHO)
    (await cluster.kubectl("rollout", "status", "deploy/tcp-echo", "-n", NS, "--timeout=30s")).check()
    await set_enrolment(cluster, True)


@pytest.fixture(scope="module")
def loaded_mesh() -> Iterator[Cluster]:
    """topologies/ambient.yaml with ambient-demo enrolled and a TCP echo server, as `e2e-res-load`."""
    with cluster_up(REPO / "topologies" / "ambient.yaml", "e2e-res-load") as cluster:
        trio.run(_prepare, cluster)
        yield cluster


async def _ztunnel_usage(cluster: Cluster, nodes: tuple[str, ...]) -> dict[str, runprocs.Usage]:
    found = {}
    for node in nodes:
        obj = await cluster.api.get("v1", "Pod", "istio-system", await ztunnel_on(cluster, node))
        found[node] = await runprocs.usage(cluster, runprocs.container_pid(obj))
    return found


async def _send_all(cluster: Cluster) -> dict[str, object]:
    result = await cluster.exec("deploy/notsleep", sys.executable, CLIENT, "tcp-echo:9000", "--connections",
                                str(CONNECTIONS), "--size", str(PAYLOAD), "--timeout", "90", namespace=NS)
    assert result.exit_code == 0, result
    return json.loads(result.stdout.strip().splitlines()[-1])


async def test_a_thousand_concurrent_connections_cross_nodes_intact_and_leave_nothing_behind(
        loaded_mesh: Cluster) -> None:
    cluster = loaded_mesh
    with trio.fail_after(170):
        apps = {app: await pod(cluster, app) for app in ("notsleep", "tcp-echo")}
        assert (apps["notsleep"].node, apps["tcp-echo"].node) == ("ambient-worker", "ambient-worker2")
        nodes = ("ambient-worker", "ambient-worker2")
        # A first round warms ztunnel up (certificates, pooled HBONE connections, lazy allocations).
        warm_up = await _send_all(cluster)
        assert warm_up["ok"] == CONNECTIONS, warm_up

        async def idle() -> dict[str, runprocs.Usage]:
            """Both ztunnels once the last round's sockets are closed (fds stop changing)."""
            first = await _ztunnel_usage(cluster, nodes)
            await trio.sleep(0.5)
            second = await _ztunnel_usage(cluster, nodes)
            return second if {n: u.fds for n, u in first.items()} == {n: u.fds for n, u in second.items()} else {}

        baseline = await eventually(idle, 20, interval=0.5)
        outcome = await _send_all(cluster)
        assert outcome == {"connections": CONNECTIONS, "ok": CONNECTIONS, "most_open_at_once": CONNECTIONS,
                           "errors": {}, "mismatched": [], "mismatched_count": 0}, outcome

        async def back_to_baseline() -> dict[str, runprocs.Usage] | None:
            now = await _ztunnel_usage(cluster, nodes)
            settled = all(now[n].fds == baseline[n].fds and now[n].rss_kib <= baseline[n].rss_kib + MEMORY_SLACK_KIB
                          for n in nodes)
            return now if settled else None

        try:
            await eventually(back_to_baseline, 20, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"ztunnel not back to its baseline {baseline}: {exc}") from None
        for app, before in apps.items():
            after = await pod(cluster, app)
            assert (after.uid, after.restarts) == (before.uid, 0), app
