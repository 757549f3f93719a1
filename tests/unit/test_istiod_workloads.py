"""Pods as ztunnel Workloads: which pods, their fields, ambient enrollment, workload and canonical
names, and the selector policies each lists (istio/istio#51556)."""

from __future__ import annotations

from typing import Any

import pytest

from components.istiod.translate import Snapshot, build_config
from components.istiod.translate.workloads import canonical_service, workload_name
from tests.unit.istiod_objects import authz, namespace, peer_auth, pod, service

AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def workloads(*objects: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    return build_config(Snapshot.from_objects(objects, **options))["workloads"]


def only_workload(*objects: dict[str, Any], **options: Any) -> dict[str, Any]:
    (w,) = workloads(*objects, **options)
    return w


def test_deployment_pod_workload():
    p = pod("productpage-v1-7c9b8d6f4-x2x9z", labels={"app": "productpage", "version": "v1",
                                                       "pod-template-hash": "7c9b8d6f4"},
            sa="bookinfo-productpage", node="worker2")
    p["metadata"]["generateName"] = "productpage-v1-7c9b8d6f4-"
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                         "name": "productpage-v1-7c9b8d6f4", "controller": True}]
    svc = service("productpage", selector={"app": "productpage"}, ports=[{"port": 9080}])
    assert only_workload(namespace("default", **AMBIENT), p, svc) == {
        "uid": "Kubernetes//Pod/default/productpage-v1-7c9b8d6f4-x2x9z",
        "name": "productpage-v1-7c9b8d6f4-x2x9z",
        "namespace": "default",
        "workloadIps": ["10.244.1.5"],
        "serviceAccount": "bookinfo-productpage",
        "trustDomain": "cluster.local",
        "node": "worker2",
        "protocol": "HBONE",
        "networkMode": "Standard",
        "workloadName": "productpage-v1",
        "workloadType": "pod",
        "canonicalName": "productpage",
        "canonicalRevision": "v1",
        "clusterId": "Kubernetes",
        "status": "Healthy",
        "authorizationPolicies": [],
        "services": ["default/productpage.default.svc.cluster.local"],
    }


def test_snapshot_options_shape_the_workload():
    w = only_workload(pod("a", sa=None), cluster_id="east", trust_domain="example.org", network="net1")
    assert (w["uid"], w["clusterId"], w["trustDomain"], w["network"], w["serviceAccount"]) == \
        ("east//Pod/default/a", "east", "example.org", "net1", "default")


# (case, namespace labels, pod labels, pod annotations, hostNetwork, expected protocol)
ENROLLMENT = [
    ("namespace ambient", AMBIENT, {}, {}, False, "HBONE"),
    ("namespace not labelled", {}, {}, {}, False, "TCP"),
    ("pod ambient in plain namespace", {}, AMBIENT, {}, False, "HBONE"),
    ("pod opts out with none", AMBIENT, {"istio.io/dataplane-mode": "none"}, {}, False, "TCP"),
    ("other pod value in ambient namespace", AMBIENT, {"istio.io/dataplane-mode": "sidecar"}, {}, False, "HBONE"),
    ("other pod value in plain namespace", {}, {"istio.io/dataplane-mode": "sidecar"}, {}, False, "TCP"),
    ("namespace none, pod ambient", {"istio.io/dataplane-mode": "none"}, AMBIENT, {}, False, "HBONE"),
    ("sidecar wins", AMBIENT, {}, {"sidecar.istio.io/status": "{}"}, False, "TCP"),
    ("hostNetwork is never captured", AMBIENT, {}, {}, True, "TCP"),
    ("CNI annotation", {}, {}, {"ambient.istio.io/redirection": "enabled"}, False, "HBONE"),
]


@pytest.mark.parametrize("case, ns_labels, labels, annotations, host_network, protocol", ENROLLMENT,
                         ids=[e[0] for e in ENROLLMENT])
def test_enrollment(case, ns_labels, labels, annotations, host_network, protocol):
    extra = {"hostNetwork": True} if host_network else {}
    w = only_workload(namespace("default", **ns_labels), pod("a", labels=labels, annotations=annotations, **extra))
    assert w["protocol"] == protocol
    assert w["networkMode"] == ("HostNetwork" if host_network else "Standard")


def test_native_tunnel_label():
    w = only_workload(pod("waypoint-abc", labels={"networking.istio.io/tunnel": "http",
                                                  "istio.io/dataplane-mode": "none"}))
    assert (w["protocol"], w["nativeTunnel"]) == ("HBONE", True)


@pytest.mark.parametrize("phase, ip, is_workload", [
    ("Running", "10.244.1.5", True),
    ("Pending", "10.244.1.5", True),
    ("Pending", None, False),
    ("Succeeded", "10.244.1.5", False),
    ("Failed", "10.244.1.5", False),
])
def test_which_pods_are_workloads(phase, ip, is_workload):
    assert len(workloads(pod("a", ip=ip, phase=phase))) == int(is_workload)


def test_dual_stack_ips():
    p = pod("a")
    p["status"]["podIPs"] = [{"ip": "10.244.1.5"}, {"ip": "fd00:10:244:1::5"}]
    assert only_workload(p)["workloadIps"] == ["10.244.1.5", "fd00:10:244:1::5"]


@pytest.mark.parametrize("ready, terminating, status", [
    (True, False, "Healthy"), (False, False, "Unhealthy"), (True, True, "Unhealthy")])
def test_health(ready, terminating, status):
    p = pod("a", ready=ready)
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert only_workload(p)["status"] == status


def owned(name: str, generate: str | None, kind: str | None, owner: str = "", **labels: str) -> dict[str, Any]:
    p = pod(name, labels=labels)
    if generate:
        p["metadata"]["generateName"] = generate
    if kind:
        p["metadata"]["ownerReferences"] = [{"kind": kind, "name": owner, "controller": True}]
    return p


@pytest.mark.parametrize("p, expected", [
    (owned("web-5d8f7b9c4d-abcde", "web-5d8f7b9c4d-", "ReplicaSet", "web-5d8f7b9c4d",
           **{"pod-template-hash": "5d8f7b9c4d"}), "web"),
    (owned("web-5d8f7b9c4d-abcde", "web-5d8f7b9c4d-", "Deployment", "web", **{"pod-template-hash": "5d8f7b9c4d"}),
     "web"),
    (owned("rs-abcde", "rs-", "ReplicaSet", "rs"), "rs"),
    (owned("ztunnel-x7k2p", "ztunnel-", "DaemonSet", "ztunnel"), "ztunnel"),
    (owned("backup-28734810-q9z8t", "backup-28734810-", "Job", "backup-28734810"), "backup"),
    (owned("once-q9z8t", "once-", "Job", "once"), "once"),
    (owned("roll-6f9d-abcde", "roll-6f9d-", "ReplicaSet", "roll-6f9d", **{"rollouts-pod-template-hash": "6f9d"}),
     "roll"),
    (owned("dc-1-abcde", "dc-1-", "ReplicationController", "dc-1", deploymentconfig="dc"), "dc"),
    (owned("sleep", None, None), "sleep"),
    (owned("named-abcde", None, "ReplicaSet", "named-x"), "named-abcde"),
    (owned("web-abcde", "web-", "ReplicaSet", "web", **{"service.istio.io/workload-name": "override"}), "override"),
])
def test_workload_name(p, expected):
    assert workload_name(p) == expected


@pytest.mark.parametrize("labels, expected", [
    ({"service.istio.io/canonical-name": "cn", "app.kubernetes.io/name": "k8s", "app": "app",
      "service.istio.io/canonical-revision": "cr", "app.kubernetes.io/version": "kv", "version": "v"}, ("cn", "cr")),
    ({"app.kubernetes.io/name": "k8s", "app": "app", "app.kubernetes.io/version": "kv", "version": "v"}, ("k8s", "kv")),
    ({"app": "app", "version": "v"}, ("app", "v")),
    ({}, ("workload", "latest")),
])
def test_canonical_service(labels, expected):
    assert canonical_service(labels, "workload") == expected


def test_selector_policies_only_from_own_or_root_namespace():
    """istio/istio#51556: a selector policy in namespace A must not attach to a pod in B."""
    pods = [pod("a", "ns-a", labels={"app": "x"}), pod("b", "ns-b", "10.244.1.6", labels={"app": "x"})]
    policies = [
        authz("deny-all", "ns-a", {"action": "DENY", "selector": {"matchLabels": {"app": "x"}}, "rules": [{}]}),
        authz("mesh", "istio-system", {"selector": {"matchLabels": {"app": "x"}}, "rules": [{}]}),
        authz("ns-wide", "ns-a", {"rules": [{}]}),
        authz("other-app", "ns-a", {"selector": {"matchLabels": {"app": "y"}}, "rules": [{}]}),
        authz("custom", "ns-a", {"action": "CUSTOM", "selector": {"matchLabels": {"app": "x"}}, "rules": [{}]}),
        authz("waypoint", "ns-a", {"targetRefs": [{"kind": "Gateway", "name": "waypoint"}], "rules": [{}]}),
    ]
    by_name = {w["name"]: w["authorizationPolicies"] for w in workloads(*pods, *policies)}
    assert by_name == {"a": ["istio-system/mesh", "ns-a/deny-all"], "b": ["istio-system/mesh"]}


def test_peer_authentication_keys_follow_selector_policies():
    objs = [pod("a", labels={"app": "x"}), peer_auth("mesh", "istio-system", {"mtls": {"mode": "STRICT"}}),
            authz("z", "default", {"selector": {"matchLabels": {"app": "x"}}, "rules": [{}]})]
    assert only_workload(*objs)["authorizationPolicies"] == ["default/z", "istio-system/istio_converted_static_strict"]
