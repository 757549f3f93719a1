"""Waypoints on seed 002's cluster (topologies/ambient.yaml): `istioctl waypoint apply
--enroll-namespace`, L7 AuthorizationPolicy at the waypoint (403 `RBAC: access denied`), its
request metrics, what bypasses a service waypoint (pod IPs, clients outside the mesh), the L4
policy that must admit the waypoint's identity, an HTTPRoute to one version and a weighted
VirtualService split. One cluster for the module (needs root)."""

from __future__ import annotations

import json
import math
import re
from typing import Iterator

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e.test_ambient_l4 import OUTSIDER, bounded, curl, eventually, in_pod

pytestmark = pytest.mark.e2e
AMBIENT_TOPOLOGY = REPO / "topologies" / "ambient.yaml"
NS = "ambient-demo"
WAYPOINT_ID = "spiffe://cluster.local/ns/ambient-demo/sa/waypoint"

# Seed 000's echo example: one Service over two versions, and a Service per version.
ECHO = """
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ambient-demo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-v1, namespace: ambient-demo}
spec:
  selector: {app: echo, version: v1}
  ports: [{name: http, port: 80, targetPort: 8080}]
""" + "".join(f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo-{version}, namespace: ambient-demo}}
spec:
  selector: {{matchLabels: {{app: echo, version: {version}}}}}
  template:
    metadata: {{labels: {{app: echo, version: {version}}}}}
    spec:
      containers:
      - name: echo
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        ports: [{{containerPort: 8080}}]
""" for version in ("v1", "v2"))

GET_ONLY_FROM_SLEEP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin-viewer, namespace: ambient-demo}
spec:
  targetRefs:
  - {kind: Service, group: "", name: httpbin}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/ambient-demo/sa/sleep"]}
    to:
    - operation: {methods: ["GET"]}
"""

L4_ONLY_SLEEP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin-l4, namespace: ambient-demo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [%s]}
"""


async def _set_up(cluster: Cluster) -> None:
    await cluster.apply(OUTSIDER)
    await cluster.apply(ECHO)
    (await cluster.kubectl("label", "namespace", NS, "istio.io/dataplane-mode=ambient")).check()
    (await cluster.istioctl("waypoint", "apply", "-n", NS, "--enroll-namespace", "--wait")).check()
    for target in ("deploy/echo-v1", "deploy/echo-v2", "deploy/waypoint"):
        (await cluster.kubectl("rollout", "status", target, "-n", NS, "--timeout=60s")).check()
    (await cluster.kubectl("wait", "--for=condition=Ready", "pod/outsider", "-n", "outside", "--timeout=60s")).check()

    async def through_waypoint() -> bool:
        # A Ready waypoint is not yet in every ztunnel's config: istiod pushes its endpoint after.
        return (await status_of(cluster, "sleep", "http://httpbin:8000/status/204")) == "204" and \
            "/status/204" in await waypoint_log(cluster)
    await eventually(through_waypoint, 30, interval=0.2)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Cluster]:
    with cluster_up(AMBIENT_TOPOLOGY, "e2e-waypoint") as cluster:
        trio.run(_set_up, cluster)
        yield cluster


async def status_of(cluster: Cluster, app: str, url: str, *extra: str, namespace: str = NS) -> str:
    return (await curl(cluster, app, url, "-o", "/dev/null", "-w", "%{http_code}", *extra, namespace=namespace)).stdout


async def waypoint_log(cluster: Cluster) -> str:
    return (await cluster.kubectl("logs", "deploy/waypoint", "-n", NS)).stdout


async def requests_total(cluster: Cluster) -> list[dict[str, str]]:
    """istio_requests_total samples, as `kubectl exec deploy/waypoint -- curl localhost:15020` shows them."""
    text = (await in_pod(cluster, "waypoint", "curl", "-s", "localhost:15020/stats/prometheus")).check().stdout
    return [{**s.labels, "value": str(int(s.value))} for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "istio_requests_total"]


async def apply_and_wait(cluster: Cluster, manifest: str, check) -> None:  # type: ignore[no-untyped-def]
    (await cluster.apply(manifest)).check()
    await eventually(check, 15, interval=0.2)


@bounded
async def test_service_traffic_goes_through_the_waypoint(mesh: Cluster) -> None:
    result = (await curl(mesh, "sleep", "http://httpbin:8000/get", "-i")).check()
    assert result.stdout.startswith("HTTP/1.1 200 OK")
    assert "server: istio-envoy" in result.stdout
    log = await waypoint_log(mesh)
    assert '"GET /get HTTP/1.1" 200 - via_upstream' in log
    assert "inbound-vip|8000|http|httpbin.ambient-demo.svc.cluster.local" in log
    gateway = json.loads((await mesh.kubectl("get", "gateway", "waypoint", "-n", NS, "-o", "json")).check().stdout)
    assert {c["type"]: c["status"] for c in gateway["status"]["conditions"]}["Programmed"] == "True"


@bounded
async def test_l7_policy_at_the_waypoint_answers_403_and_is_counted(mesh: Cluster) -> None:
    async def denies_notsleep() -> bool:
        return (await status_of(mesh, "notsleep", "http://httpbin:8000/get")) == "403"
    await apply_and_wait(mesh, GET_ONLY_FROM_SLEEP, denies_notsleep)
    try:
        denied = await curl(mesh, "sleep", "http://httpbin:8000/delete", "-X", "DELETE")
        assert denied.stdout == "RBAC: access denied"
        assert (await curl(mesh, "notsleep", "http://httpbin:8000/get")).stdout == "RBAC: access denied"
        assert await status_of(mesh, "sleep", "http://httpbin:8000/get") == "200"
        samples = await requests_total(mesh)

        def count(source: str, code: str) -> int:
            return sum(int(s["value"]) for s in samples
                       if s["source_workload"] == source and s["response_code"] == code)
        assert count("notsleep", "403") >= 2 and count("sleep", "403") >= 1 and count("sleep", "200") >= 1
        sample = next(s for s in samples if s["source_workload"] == "notsleep" and s["response_code"] == "403")
        assert sample["reporter"] == "waypoint"
        assert sample["source_principal"] == "spiffe://cluster.local/ns/ambient-demo/sa/notsleep"
        assert sample["destination_principal"] == "spiffe://cluster.local/ns/ambient-demo/sa/httpbin"
        assert sample["destination_workload"] == "httpbin"
        assert sample["connection_security_policy"] == "mutual_tls"
        assert "rbac_access_denied_matched_policy[none]" in await waypoint_log(mesh)
    finally:
        (await mesh.kubectl("delete", "authorizationpolicy", "httpbin-viewer", "-n", NS)).check()


@bounded
async def test_pod_ips_and_clients_outside_the_mesh_bypass_a_service_waypoint(mesh: Cluster) -> None:
    pods = json.loads((await mesh.kubectl("get", "pods", "-n", NS, "-l", "app=httpbin", "-o", "json")).stdout)
    pod_ip = pods["items"][0]["status"]["podIP"]
    await apply_and_wait(mesh, GET_ONLY_FROM_SLEEP.replace("methods: [\"GET\"]", "methods: [\"HEAD\"]"),
                         lambda: _is(status_of(mesh, "sleep", "http://httpbin:8000/get"), "403"))
    try:
        before = (await waypoint_log(mesh)).count("\n")
        assert await status_of(mesh, "sleep", f"http://{pod_ip}:8080/get") == "200"
        assert await status_of(mesh, "outsider", "http://httpbin.ambient-demo:8000/get", namespace="outside") == "200"
        assert (await waypoint_log(mesh)).count("\n") == before
    finally:
        (await mesh.kubectl("delete", "authorizationpolicy", "httpbin-viewer", "-n", NS)).check()


async def _is(pending, expected: str) -> bool:  # type: ignore[no-untyped-def]
    return (await pending) == expected


@bounded
async def test_an_l4_policy_must_admit_the_waypoint_identity(mesh: Cluster) -> None:
    only_sleep = L4_ONLY_SLEEP % '"cluster.local/ns/ambient-demo/sa/sleep"'
    await apply_and_wait(mesh, only_sleep, lambda: _is(status_of(mesh, "sleep", "http://httpbin:8000/get"), "503"))
    try:
        log = await waypoint_log(mesh)
        assert "503 UF" in log
        with_waypoint = L4_ONLY_SLEEP % '"cluster.local/ns/ambient-demo/sa/sleep", "cluster.local/ns/ambient-demo/sa/waypoint"'
        await apply_and_wait(mesh, with_waypoint, lambda: _is(status_of(mesh, "sleep", "http://httpbin:8000/get"), "200"))
        ztunnel_logs = "".join([(await mesh.kubectl("logs", "-n", "istio-system", "-l", "app=ztunnel", "--tail=-1")).stdout])
        assert f'src.identity="{WAYPOINT_ID}"' in ztunnel_logs
    finally:
        (await mesh.kubectl("delete", "authorizationpolicy", "httpbin-l4", "-n", NS)).check()


async def _served_by(cluster: Cluster, url: str, requests: int) -> list[str]:
    script = f"for i in $(seq 1 {requests}); do curl -s --max-time 5 {url}; echo; done"
    out = (await in_pod(cluster, "sleep", "sh", "-c", script)).check().stdout
    return [name.rsplit("-", 2)[0] for name in re.findall(r'"hostname": "([^"]+)"', out)]


@bounded
async def test_httproute_sends_every_request_to_echo_v1(mesh: Cluster) -> None:
    route = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: ambient-demo}
spec:
  parentRefs:
  - {group: "", kind: Service, name: echo}
  rules:
  - backendRefs:
    - {name: echo-v1, port: 80}
"""
    assert set(await _served_by(mesh, "http://echo/hostname", 20)) == {"echo-v1", "echo-v2"}
    await apply_and_wait(mesh, route, lambda: _only_v1(mesh))
    try:
        assert set(await _served_by(mesh, "http://echo/hostname", 30)) == {"echo-v1"}
    finally:
        (await mesh.kubectl("delete", "httproute", "echo", "-n", NS)).check()


async def _only_v1(cluster: Cluster) -> bool:
    return set(await _served_by(cluster, "http://echo/hostname", 5)) == {"echo-v1"}


@bounded
async def test_a_weighted_virtual_service_splits_90_10_within_binomial_tolerance(mesh: Cluster) -> None:
    split = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: ambient-demo}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: ambient-demo}
spec:
  hosts: [echo]
  http:
  - route:
    - {destination: {host: echo, subset: v1}, weight: 90}
    - {destination: {host: echo, subset: v2}, weight: 10}
"""
    (await mesh.apply(split)).check()
    try:
        await eventually(lambda: _routes_configured(mesh), 15, interval=0.2)
        served = await _served_by(mesh, "http://echo/hostname", 200)
        assert len(served) == 200
        v2 = served.count("echo-v2")
        # 200 draws at p=0.1: mean 20, sd 4.24; 4 sd either side.
        assert abs(v2 - 20) <= 4 * math.sqrt(200 * 0.1 * 0.9), served
    finally:
        (await mesh.kubectl("delete", "virtualservice,destinationrule", "echo", "-n", NS)).check()


async def _routes_configured(cluster: Cluster) -> bool:
    dump = json.loads((await in_pod(cluster, "waypoint", "curl", "-s", "localhost:15000/config_dump")).stdout or "{}")
    return any(r.get("hostname", "").startswith("echo.") and "VirtualService" in r.get("source", "")
               for r in dump.get("routes", []))


@bounded
async def test_a_workload_waypoint_takes_traffic_addressed_to_the_pod(mesh: Cluster) -> None:
    """`--for workload` and a pod label: traffic to the pod's IP goes through that waypoint, and
    its L7 policy applies there."""
    (await mesh.istioctl("waypoint", "apply", "-n", NS, "--name", "pods", "--for", "workload", "--wait")).check()
    pods = json.loads((await mesh.kubectl("get", "pods", "-n", NS, "-l", "app=httpbin", "-o", "json")).stdout)
    pod = pods["items"][0]
    name, pod_ip = pod["metadata"]["name"], pod["status"]["podIP"]
    deny_delete = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: ambient-demo}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: pods}
  action: DENY
  rules:
  - to:
    - operation: {methods: ["DELETE"]}
"""
    (await mesh.apply(deny_delete)).check()
    (await mesh.kubectl("label", "pod", name, "-n", NS, "istio.io/use-waypoint=pods")).check()
    try:
        await eventually(lambda: _is(status_of(mesh, "sleep", f"http://{pod_ip}:8080/delete", "-X", "DELETE"), "403"),
                         30, interval=0.2)
        assert await status_of(mesh, "sleep", f"http://{pod_ip}:8080/get") == "200"
        log = (await mesh.kubectl("logs", "deploy/pods", "-n", NS)).stdout
        assert '"GET /get HTTP/1.1" 200' in log and f'"{pod_ip}:8080"' in log
    finally:
        (await mesh.kubectl("label", "pod", name, "-n", NS, "istio.io/use-waypoint-")).check()
        (await mesh.kubectl("delete", "authorizationpolicy", "no-delete", "-n", NS)).check()
        (await mesh.istioctl("waypoint", "delete", "pods", "-n", NS)).check()


@bounded
async def test_the_waypoint_refuses_what_is_not_hbone_and_keeps_serving(mesh: Cluster) -> None:
    """Plain HTTP, and a TLS client without a mesh certificate, straight to the waypoint's 15008
    (from outside the mesh, so ztunnel does not wrap them): closed, and the next request through
    the waypoint is served."""
    pods = json.loads((await mesh.kubectl("get", "pods", "-n", NS, "-l", "gateway.networking.k8s.io/gateway-name=waypoint",
                                          "-o", "json")).stdout)
    waypoint_ip = pods["items"][0]["status"]["podIP"]
    for extra in ((), ("-k",)):
        scheme = "https" if extra else "http"
        refused = await curl(mesh, "outsider", f"{scheme}://{waypoint_ip}:15008/", *extra, namespace="outside")
        # closed in the handshake (35), before any reply (52), while curl sends (55) or receives (56)
        assert refused.exit_code in (35, 52, 55, 56), refused
        assert await status_of(mesh, "sleep", "http://httpbin:8000/get") == "200"
    ready = await in_pod(mesh, "waypoint", "curl", "-s", "localhost:15021/healthz/ready")
    assert ready.stdout.strip() == "LIVE"
