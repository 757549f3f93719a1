"""Bad input against ztunnel's HBONE port and against the apiserver: each is refused with the
status the reference gives (ztunnel-and-istio-facts.md 1.2, 1.4, 1.5) or a closed connection,
and the component goes on serving everyone else (a good request right after each bad one) with
nothing leaked (its open fds back to where they were). The attacker is a pod outside the mesh on
the other node than httpbin (needs root)."""

from __future__ import annotations

import base64
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

from components.common import http, pki
from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e import runprocs
from tests.e2e.test_ambient_l4 import (NS, OUTSIDE, OUTSIDER, TITLE, Pod, curl, eventually, pod, set_enrolment,
                                       ztunnel_on)
from tests.e2e.test_resilience_load import ECHO

pytestmark = pytest.mark.e2e
PROBE = str(Path(__file__).with_name("hbone_probe.py"))
OUTSIDER_ID = "spiffe://cluster.local/ns/outside/sa/default"
TEST_TIMEOUT = 60.0


async def _prepare(cluster: Cluster) -> None:
    await cluster.apply(OUTSIDER)
    await cluster.apply(ECHO)
    (await cluster.kubectl("wait", "--for=condition=Ready", "pod/outsider", "-n", OUTSIDE, "--timeout=30s")).check()
    (await cluster.kubectl("rollout", "status", "deploy/tcp-echo", "-n", NS, "--timeout=30s")).check()
    await set_enrolment(cluster, True)


@pytest.fixture(scope="module")
def target_mesh() -> Iterator[Cluster]:
    """topologies/ambient.yaml, ambient-demo enrolled, a TCP echo server and an outsider pod,
    as `e2e-res-input`."""
    with cluster_up(REPO / "topologies" / "ambient.yaml", "e2e-res-input") as cluster:
        trio.run(_prepare, cluster)
        yield cluster


async def mesh_root(cluster: Cluster) -> pki.RootCA:
    """The CA's signing root, from the Secret istiod's CA keeps it in."""
    data = (await cluster.api.get("v1", "Secret", "istio-system", "istio-ca-secret"))["data"]
    return pki.RootCA.from_pem(base64.b64decode(data["ca-cert.pem"]), base64.b64decode(data["ca-key.pem"]))


def credentials(issued: pki.IssuedCertificate, root: pki.RootCA) -> dict[str, str]:
    """A client's chain and key, trusting the mesh root for the server."""
    return {"chain": issued.chain_pem.decode(), "key": issued.key_pem.decode(), "root": root.cert_pem.decode()}


async def probe(cluster: Cluster, case: str, spec: dict[str, Any]) -> dict[str, Any]:
    result = await cluster.kubectl("exec", "-i", "-n", OUTSIDE, "outsider", "--", sys.executable, PROBE, case,
                                   input=json.dumps(spec))
    assert result.exit_code == 0, result
    return json.loads(result.stdout.strip().splitlines()[-1])


async def ztunnel_pid(cluster: Cluster, node: str) -> int:
    return runprocs.container_pid(await cluster.api.get("v1", "Pod", "istio-system", await ztunnel_on(cluster, node)))


async def settled_fds(cluster: Cluster, pid: int, at_most: int | None = None, timeout: float = 15) -> int:
    """The process's open fds once stable (or once back to `at_most` or fewer)."""
    previous: list[int] = []

    async def stable() -> int | None:
        fds = (await runprocs.usage(cluster, pid)).fds
        previous.append(fds)
        if at_most is not None:
            return fds if fds <= at_most else None
        return fds if len(previous) >= 3 and len(set(previous[-3:])) == 1 else None
    try:
        return await eventually(stable, timeout, interval=0.3)
    except AssertionError:
        raise AssertionError(f"open fds of pid {pid} did not settle{f' back to {at_most}' if at_most else ''}: "
                             f"{previous}") from None


@pytest.mark.parametrize("case", ["garbage", "plain-http", "other-ca", "other-trust-domain", "expired",
                                  "mismatched-authority", "own-port-15008", "own-port-15001", "own-port-15006",
                                  "own-port-15080", "oversized-headers"])
async def test_bad_hbone_client_is_refused_and_ztunnel_serves_the_next(target_mesh: Cluster, case: str) -> None:
    cluster = target_mesh
    with trio.fail_after(TEST_TIMEOUT):
        httpbin, sleep = await pod(cluster, "httpbin"), await pod(cluster, "sleep")
        pid = await ztunnel_pid(cluster, httpbin.node)
        root = await mesh_root(cluster)
        good = credentials(root.issue(OUTSIDER_ID), root)
        target = {"target": f"{httpbin.ip}:15008", "good_authority": f"{httpbin.ip}:8080"}
        tls = {**target, **good, "authority": f"{httpbin.ip}:8080"}

        async def served() -> None:
            """A good HBONE client, and sleep through the mesh (its pooled HBONE connection stays)."""
            after = await probe(cluster, "tls", tls)
            assert after.get("status") == 200 and after.get("answer", "").startswith("HTTP/1.1 200"), after
            meshed = await curl(cluster, "sleep", "httpbin:8000")
            assert meshed.exit_code == 0 and TITLE in meshed.stdout, meshed

        await served()
        baseline = await settled_fds(cluster, pid)
        now = datetime.datetime.now(datetime.timezone.utc)
        expectations: dict[str, tuple[str, dict[str, Any]]] = {
            "garbage": ("garbage", target),
            "plain-http": ("plain-http", target),
            "other-ca": ("tls", {**tls, **credentials(pki.RootCA.generate().issue(OUTSIDER_ID), root)}),
            "other-trust-domain": ("tls", {**tls, **credentials(
                root.issue("spiffe://clusterset.local/ns/outside/sa/default"), root)}),
            "expired": ("tls", {**tls, **credentials(root.issue(OUTSIDER_ID, datetime.timedelta(hours=1),
                                                                now=now - datetime.timedelta(days=1)), root)}),
            "mismatched-authority": ("tls", {**tls, "authority": f"{sleep.ip}:8080"}),
            "oversized-headers": ("oversized", tls),
        }
        for port in (15008, 15001, 15006, 15080):
            expectations[f"own-port-{port}"] = ("tls", {**tls, "authority": f"{httpbin.ip}:{port}"})
        kind, spec = expectations[case]
        outcome = await probe(cluster, kind, spec)
        if case == "mismatched-authority":
            assert outcome == {"status": 400}, outcome  # ip mismatch
        elif case.startswith("own-port"):
            assert outcome == {"status": 503}, outcome  # attempted recursive call to ourselves
        elif case == "oversized-headers":
            # h2's server answers 431 on the stream (then REFUSED_STREAM); the connection goes on.
            assert outcome == {"status": 431, "then": {"status": 200}}, outcome
        else:
            assert "closed" in outcome, outcome

        await served()
        await settled_fds(cluster, pid, at_most=baseline)


async def test_a_client_that_never_reads_holds_no_more_than_its_windows(target_mesh: Cluster) -> None:
    cluster = target_mesh
    with trio.fail_after(TEST_TIMEOUT):
        echo: Pod = await pod(cluster, "tcp-echo")
        pid = await ztunnel_pid(cluster, echo.node)

        async def served() -> None:
            result = await curl(cluster, "sleep", "httpbin:8000")
            assert result.exit_code == 0 and TITLE in result.stdout, result

        await served()  # sleep's pooled HBONE connection is part of the baseline
        baseline_fds = await settled_fds(cluster, pid)
        baseline_rss = (await runprocs.usage(cluster, pid)).rss_kib
        root = await mesh_root(cluster)
        spec = {"target": f"{echo.ip}:15008", "authority": f"{echo.ip}:9000", "streams": 20,
                "bytes": 1 << 20, "hold": 6, **credentials(root.issue(OUTSIDER_ID), root)}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(probe, cluster, "never-reads", spec)

            async def holding() -> bool:
                return (await runprocs.usage(cluster, pid)).fds >= baseline_fds + 20  # one app socket per stream
            await eventually(holding, 15, interval=0.2)
            for _ in range(3):
                await served()
            held = await runprocs.usage(cluster, pid)
            # At most the windows ztunnel granted (4 MiB a stream, 16 MiB the connection) wait in it.
            assert held.rss_kib < baseline_rss + 64 * 1024, (baseline_rss, held)
        await settled_fds(cluster, pid, at_most=baseline_fds)


async def test_malformed_json_and_watch_abuse_leave_the_apiserver_serving(target_mesh: Cluster) -> None:
    cluster = target_mesh
    address = cluster.run.apiserver_address
    with trio.fail_after(TEST_TIMEOUT):
        pid = await runprocs.pid_of(cluster, "components.apiserver")
        baseline = await settled_fds(cluster, pid)
        for body in (b"{not json", b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": 7}', b"\xff\xfe",
                     b"[]", b'"just a string"'):
            response = await http.request(address, "POST", "/api/v1/namespaces/default/configmaps", body=body,
                                          headers=[("content-type", "application/json")])
            status = json.loads(response.body)
            assert (response.status, status["kind"], status["reason"]) == (400, "Status", "BadRequest"), \
                (body, response.status, response.body)
            assert (await cluster.api.get("v1", "Namespace", None, "default"))["metadata"]["name"] == "default"

        # Watches that are never read while the store changes under them, and a watch from a
        # resourceVersion that does not parse.
        bad = await http.request(address, "GET", "/api/v1/configmaps?watch=true&resourceVersion=abc")
        assert bad.status in (400, 410) and json.loads(bad.body)["kind"] == "Status", (bad.status, bad.body)
        watchers = []
        try:
            for _ in range(50):
                stream = await http.connect(address)
                watchers.append(stream)
                await stream.send_all(b"GET /api/v1/configmaps?watch=true HTTP/1.1\r\nHost: apiserver\r\n\r\n")
            for index in range(30):
                await cluster.api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": f"churn-{index}", "namespace": "default"},
                                          "data": {"filler": "x" * 20000}})
            assert (await cluster.kubectl("get", "configmap", "churn-29", "-n", "default")).ok
        finally:
            for stream in watchers:
                await stream.aclose()
        (await cluster.kubectl("delete", "configmap", "-n", "default", *[f"churn-{i}" for i in range(30)])).check()
        assert (await cluster.kubectl("get", "pods", "-A")).ok
        await settled_fds(cluster, pid, at_most=baseline)
