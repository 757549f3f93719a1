"""Waypoints: which services and pods send through one (`istio.io/use-waypoint` on namespace,
service or pod; `istio.io/waypoint-for` on the Gateway), cross-namespace use, and addresses."""

from __future__ import annotations

from typing import Any

import pytest

from components.istiod.translate import Snapshot, build_config
from tests.unit.istiod_objects import namespace, pod, service, waypoint_gateway

WAYPOINT = {"destination": "/10.96.0.30", "hboneMtlsPort": 15008}
OTHER = {"destination": "/10.96.0.31", "hboneMtlsPort": 15008}
USE = "istio.io/use-waypoint"


def config(*objects: dict[str, Any]) -> dict[str, Any]:
    return build_config(Snapshot.from_objects(objects))


def waypoints_of(objects: list[dict[str, Any]]) -> tuple[Any, Any]:
    """(the `app` service's waypoint, the `app` pod's waypoint)."""
    cfg = config(*objects)
    svc = next(s for s in cfg["services"] if s["name"] == "app")
    wl = next(w for w in cfg["workloads"] if w["name"] == "app")
    return svc.get("waypoint"), wl.get("waypoint")


def cluster(ns_labels: dict[str, str], svc_labels: dict[str, str], pod_labels: dict[str, str],
            waypoint_for: str | None) -> list[dict[str, Any]]:
    return [namespace("default", **ns_labels),
            waypoint_gateway("waypoint", waypoint_for=waypoint_for), service("waypoint", cluster_ip="10.96.0.30"),
            waypoint_gateway("other", waypoint_for="all"), service("other", cluster_ip="10.96.0.31"),
            pod("app", labels={"app": "app", **pod_labels}),
            service("app", selector={"app": "app"}, labels=svc_labels)]


# (case, namespace labels, service labels, pod labels, waypoint-for of `waypoint`, service's, pod's)
PRECEDENCE = [
    ("namespace, default for service", {USE: "waypoint"}, {}, {}, None, WAYPOINT, None),
    ("namespace, for service", {USE: "waypoint"}, {}, {}, "service", WAYPOINT, None),
    ("namespace, for workload", {USE: "waypoint"}, {}, {}, "workload", None, WAYPOINT),
    ("namespace, for all", {USE: "waypoint"}, {}, {}, "all", WAYPOINT, WAYPOINT),
    ("namespace, for none", {USE: "waypoint"}, {}, {}, "none", None, None),
    ("no enrollment", {}, {}, {}, "all", None, None),
    ("service label", {}, {USE: "waypoint"}, {}, None, WAYPOINT, None),
    ("pod label, for workload", {}, {}, {USE: "waypoint"}, "workload", None, WAYPOINT),
    ("pod label, for service only", {}, {}, {USE: "waypoint"}, "service", None, None),
    ("service opts out", {USE: "waypoint"}, {USE: "none"}, {}, "all", None, WAYPOINT),
    ("pod opts out", {USE: "waypoint"}, {}, {USE: "none"}, "all", WAYPOINT, None),
    ("service label beats namespace", {USE: "waypoint"}, {USE: "other"}, {}, "all", OTHER, WAYPOINT),
    ("pod label beats namespace", {USE: "waypoint"}, {}, {USE: "other"}, "all", WAYPOINT, OTHER),
    ("service's waypoint unknown: no fallback", {USE: "waypoint"}, {USE: "missing"}, {}, "all", None, WAYPOINT),
    ("service's waypoint not for services: no fallback", {USE: "other"}, {USE: "waypoint"}, {}, "workload",
     None, OTHER),
]


@pytest.mark.parametrize("case, ns_labels, svc_labels, pod_labels, waypoint_for, svc_wp, pod_wp", PRECEDENCE,
                         ids=[p[0] for p in PRECEDENCE])
def test_enrollment_precedence(case, ns_labels, svc_labels, pod_labels, waypoint_for, svc_wp, pod_wp):
    assert waypoints_of(cluster(ns_labels, svc_labels, pod_labels, waypoint_for)) == (svc_wp, pod_wp)


SHARED = {"destination": "/10.96.9.9", "hboneMtlsPort": 15008}


@pytest.mark.parametrize("allowed, ns_labels, expected", [
    (None, {}, None),
    ({"from": "Same"}, {}, None),
    ({"from": "All"}, {}, SHARED),
    ({"from": "Selector", "selector": {"matchLabels": {"mesh": "yes"}}}, {"mesh": "yes"}, SHARED),
    ({"from": "Selector", "selector": {"matchLabels": {"mesh": "yes"}}}, {}, None),
    ({"from": "Selector", "selector": {"matchExpressions": [{"key": "mesh", "operator": "Exists"}]}},
     {"mesh": "no"}, SHARED),
])
def test_cross_namespace_waypoint(allowed, ns_labels, expected):
    objs = [namespace("default", **{USE: "shared", "istio.io/use-waypoint-namespace": "infra"}, **ns_labels),
            waypoint_gateway("shared", "infra", allowed=allowed), service("shared", "infra", "10.96.9.9"),
            pod("app", labels={"app": "app"}), service("app", selector={"app": "app"})]
    assert waypoints_of(objs)[0] == expected


@pytest.mark.parametrize("addresses, expected", [
    ([{"type": "IPAddress", "value": "10.96.7.7"},
      {"type": "Hostname", "value": "waypoint.default.svc.cluster.local"}],
     {"destination": "default/waypoint.default.svc.cluster.local", "hboneMtlsPort": 15008}),
    ([{"type": "IPAddress", "value": "10.96.7.7"}], {"destination": "/10.96.7.7", "hboneMtlsPort": 15008}),
    ([], None),
    (None, None),
])
def test_address_without_a_service(addresses, expected):
    objs = [namespace("default", **{USE: "waypoint"}), waypoint_gateway(addresses=addresses),
            pod("app", labels={"app": "app"}), service("app", selector={"app": "app"})]
    assert waypoints_of(objs)[0] == expected


def test_service_address_wins_over_status():
    objs = [namespace("default", **{USE: "waypoint"}),
            waypoint_gateway(addresses=[{"type": "Hostname", "value": "waypoint.default.svc.cluster.local"}]),
            service("waypoint", cluster_ip="10.96.0.30"),
            pod("app", labels={"app": "app"}), service("app", selector={"app": "app"})]
    assert waypoints_of(objs)[0] == WAYPOINT


def test_waypoint_never_uses_itself():
    objs = [namespace("default", **{USE: "waypoint"}), waypoint_gateway(waypoint_for="all"),
            service("waypoint", cluster_ip="10.96.0.30",
                    selector={"gateway.networking.k8s.io/gateway-name": "waypoint"}),
            service("managed", cluster_ip="10.96.0.32",
                    labels={"gateway.istio.io/managed": "istio.io-mesh-controller"}),
            pod("waypoint-5f6d-abcde", labels={"gateway.networking.k8s.io/gateway-name": "waypoint",
                                               "networking.istio.io/tunnel": "http"})]
    cfg = config(*objs)
    assert [("waypoint" in s) for s in cfg["services"]] == [False, False]
    (wl,) = cfg["workloads"]
    assert "waypoint" not in wl and wl["protocol"] == "HBONE"
    assert cfg["services"][1]["endpoints"] == {"Kubernetes//Pod/default/waypoint-5f6d-abcde": {
        "workloadUid": "Kubernetes//Pod/default/waypoint-5f6d-abcde", "port": {80: 8080}, "status": "Healthy"}}


def test_only_the_waypoint_class_makes_waypoints():
    gw = waypoint_gateway()
    gw["spec"]["gatewayClassName"] = "istio"
    objs = [namespace("default", **{USE: "waypoint"}), gw, service("waypoint", cluster_ip="10.96.0.30"),
            pod("app", labels={"app": "app"}), service("app", selector={"app": "app"})]
    assert waypoints_of(objs) == (None, None)
