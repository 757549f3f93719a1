"""Istio's control plane in a running cluster: istioctl install, istiod's pushed config, policy
translation and status, ztunnel-config tables (needs root)."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import pytest
import trio

from harness.cluster import Cluster
from harness.demo import SEED_002_POLICY
from harness.pytest_plugin import DEFAULT_TOPOLOGY

pytestmark = pytest.mark.e2e
NS = "ambient-demo"



@pytest.fixture
async def istio_cluster(cluster_factory) -> AsyncIterator[Cluster]:
    """The default topology with Istio's control plane installed by `istioctl install`."""
    cluster = await cluster_factory(DEFAULT_TOPOLOGY, name="e2e-istio")
    result = await cluster.istioctl("install", "--set", "profile=ambient", "--set", "components.cni.enabled=false",
                                    "--set", "components.ztunnel.enabled=false", "-y")
    assert result.exit_code == 0, result.stderr
    assert "✔ Istiod installed" in result.stderr and "✔ Installation complete" in result.stderr
    yield cluster


async def config_dump(cluster: Cluster) -> dict[str, Any]:
    pods = (await cluster.api.list("v1", "Pod", "istio-system", label_selector="app=istiod"))["items"]
    name = pods[0]["metadata"]["name"]
    return await cluster.api.call("GET", f"/api/v1/namespaces/istio-system/pods/{name}:8080/proxy/debug/config_dump")


async def wait_config(cluster: Cluster, predicate, timeout: float) -> dict[str, Any]:
    with trio.move_on_after(timeout):
        while True:
            dump = await config_dump(cluster)
            if predicate(dump["config"]):
                return dump
            await trio.sleep(0.02)
    raise AssertionError(f"istiod's config did not change as expected within {timeout}s: {json.dumps(dump)[:2000]}")


def workloads(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"].rsplit("-", 2)[0]: w for w in config["workloads"] if w["namespace"] == NS}


async def test_install_runs_istiod_and_publishes_the_root(istio_cluster: Cluster) -> None:
    pods = (await istio_cluster.kubectl("get", "pods", "-n", "istio-system")).stdout
    assert "istiod-" in pods and "1/1" in pods and "Running" in pods
    with trio.fail_after(10):
        while not istio_cluster.run.root_cert.exists():
            await trio.sleep(0.05)
    root = istio_cluster.run.root_cert.read_text()
    assert root.startswith("-----BEGIN CERTIFICATE-----")
    published = await istio_cluster.api.get("v1", "ConfigMap", NS, "istio-ca-root-cert")
    assert published["data"]["root-cert.pem"].strip() == root.strip()


async def test_labelling_a_namespace_flips_its_workloads_to_hbone_within_a_second(istio_cluster: Cluster) -> None:
    before = await wait_config(istio_cluster, lambda c: len(workloads(c)) == 3, 10)
    assert {w["protocol"] for w in workloads(before["config"]).values()} == {"TCP"}
    started = trio.current_time()
    (await istio_cluster.kubectl("label", "namespace", NS, "istio.io/dataplane-mode=ambient")).check()
    after = await wait_config(istio_cluster, lambda c: {w["protocol"] for w in workloads(c).values()} == {"HBONE"}, 1.0)
    assert trio.current_time() - started < 1.0
    assert int(after["version"]) > int(before["version"])
    httpbin = workloads(after["config"])["httpbin"]
    assert httpbin["serviceAccount"] == "httpbin" and httpbin["node"] == "ambient-worker2"
    table = (await istio_cluster.istioctl("ztunnel-config", "workloads", "--workload-namespace", NS)).stdout
    assert "NAMESPACE    POD NAME" in table
    assert any(line.startswith("ambient-demo httpbin-") and line.rstrip().endswith("HBONE") and "ambient-worker2" in line
               for line in table.splitlines()), table


async def test_authorization_policy_is_translated_and_removed(istio_cluster: Cluster) -> None:
    (await istio_cluster.kubectl("apply", "-n", NS, "-f", "-", input=SEED_002_POLICY)).check()
    dump = await wait_config(istio_cluster, lambda c: any(p["name"] == "allow-sleep-to-httpbin" for p in c["policies"]), 5)
    policy = next(p for p in dump["config"]["policies"] if p["name"] == "allow-sleep-to-httpbin")
    assert policy["action"] == "Allow" and policy["scope"] == "WorkloadSelector"
    assert policy["rules"] == [[[{"principals": [{"Exact": "cluster.local/ns/ambient-demo/sa/sleep"}]}]]]
    assert f"{NS}/allow-sleep-to-httpbin" in workloads(dump["config"])["httpbin"]["authorizationPolicies"]
    with trio.fail_after(5):
        while True:
            obj = await istio_cluster.api.get("security.istio.io/v1", "AuthorizationPolicy", NS, "allow-sleep-to-httpbin")
            conditions = obj.get("status", {}).get("conditions", [])
            if conditions:
                break
            await trio.sleep(0.05)
    assert conditions[0]["type"] == "ZtunnelAccepted" and conditions[0]["status"] == "True"
    table = (await istio_cluster.istioctl("ztunnel-config", "policies")).stdout
    assert "ambient-demo allow-sleep-to-httpbin Allow  WorkloadSelector" in table
    (await istio_cluster.kubectl("delete", "authorizationpolicy", "allow-sleep-to-httpbin", "-n", NS)).check()
    await wait_config(istio_cluster, lambda c: not any(p["name"] == "allow-sleep-to-httpbin" for p in c["policies"]), 5)


async def test_istioctl_without_istio_says_so(default_cluster: Cluster) -> None:
    result = await default_cluster.istioctl("ztunnel-config", "workloads")
    assert result.exit_code == 1
    assert 'Error: no running Istio pods in "istio-system"' in result.stderr
