"""Kubernetes Services as ztunnel Services: VIPs, ports (named target ports resolved per endpoint),
endpoints from selectors, load balancing."""

from __future__ import annotations

from typing import Any

import pytest

from components.istiod.translate import Snapshot, build_config
from tests.unit.istiod_objects import namespace, pod, service

UID = "Kubernetes//Pod/default/"


def services(*objects: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    return build_config(Snapshot.from_objects(objects, **options))["services"]


def only_service(*objects: dict[str, Any], **options: Any) -> dict[str, Any]:
    (s,) = services(*objects, **options)
    return s


def test_service_with_endpoints():
    objs = [pod("web-1", labels={"app": "web"}), pod("web-2", ip="10.244.2.7", labels={"app": "web"}, ready=False),
            pod("other", ip="10.244.1.8", labels={"app": "other"}),
            service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": 8080}])]
    assert only_service(*objs) == {
        "name": "web",
        "namespace": "default",
        "hostname": "web.default.svc.cluster.local",
        "vips": ["/10.96.0.20"],
        "ports": {80: 8080},
        "endpoints": {
            UID + "web-1": {"workloadUid": UID + "web-1", "port": {80: 8080}, "status": "Healthy"},
            UID + "web-2": {"workloadUid": UID + "web-2", "port": {80: 8080}, "status": "Unhealthy"},
        },
        "subjectAltNames": [],
        "canonical": True,
    }


def test_named_target_port_resolves_per_endpoint():
    http = [{"name": "http", "containerPort": 9080}]
    objs = [pod("v1", labels={"app": "r"}, ports=http),
            pod("v2", ip="10.244.1.6", labels={"app": "r"}, ports=[{"name": "http", "containerPort": 9081}]),
            pod("none", ip="10.244.1.7", labels={"app": "r"}),
            pod("udp", ip="10.244.1.8", labels={"app": "r"}, ports=[{"name": "http", "containerPort": 53,
                                                                      "protocol": "UDP"}]),
            service("r", selector={"app": "r"}, ports=[{"port": 9080, "targetPort": "http"}, {"port": 15000}])]
    s = only_service(*objs)
    assert s["ports"] == {9080: 0, 15000: 15000}
    assert {uid.removeprefix(UID): e["port"] for uid, e in s["endpoints"].items()} == {
        "none": {15000: 15000}, "udp": {15000: 15000}, "v1": {9080: 9080, 15000: 15000},
        "v2": {9080: 9081, 15000: 15000}}


def test_native_sidecar_ports_resolve():
    p = pod("a", labels={"app": "a"})
    p["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always",
                                    "ports": [{"name": "admin", "containerPort": 15000}]},
                                   {"name": "init", "ports": [{"name": "setup", "containerPort": 1}]}]
    s = only_service(p, service("a", selector={"app": "a"}, ports=[{"port": 1, "targetPort": "admin"},
                                                                   {"port": 2, "targetPort": "setup"}]))
    assert s["endpoints"][UID + "a"]["port"] == {1: 15000}


@pytest.mark.parametrize("case, spec, vips, included", [
    ("cluster IP", {"clusterIP": "10.96.5.5"}, ["/10.96.5.5"], True),
    ("dual stack", {"clusterIP": "10.96.5.5", "clusterIPs": ["10.96.5.5", "fd00:10:96::5"]},
     ["/10.96.5.5", "/fd00:10:96::5"], True),
    ("headless", {"clusterIP": "None"}, [], True),
    ("ExternalName", {"type": "ExternalName", "externalName": "example.com"}, None, False),
])
def test_which_services(case, spec, vips, included):
    s = service("s", cluster_ip=None, **spec)
    found = services(s)
    assert bool(found) is included, case
    if included:
        assert found[0]["vips"] == vips


def test_network_prefixes_vips():
    assert only_service(service("s"), network="net1")["vips"] == ["net1/10.96.0.20"]


def test_selector_matches_only_own_namespace_and_non_empty():
    objs = [pod("a", "ns1", labels={"app": "x"}), pod("b", "ns2", "10.244.1.6", labels={"app": "x"}),
            service("x", "ns1", selector={"app": "x"}), service("none", "ns1", "10.96.0.21", selector={}),
            service("nosel", "ns1", "10.96.0.22")]
    by_name = {s["name"]: sorted(s["endpoints"]) for s in services(*objs)}
    assert by_name == {"x": ["Kubernetes//Pod/ns1/a"], "none": [], "nosel": []}


def test_selectorless_service_takes_pods_its_endpoints_name():
    ep = {"kind": "Endpoints", "metadata": {"name": "manual", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": "10.244.1.5", "targetRef": {"kind": "Pod", "name": "a",
                                                                        "namespace": "default"}}],
                       "notReadyAddresses": [{"ip": "10.244.1.6", "targetRef": {"kind": "Pod", "name": "b"}}],
                       "ports": [{"port": 8080}]}]}
    objs = [pod("a"), pod("b", ip="10.244.1.6"), pod("c", ip="10.244.1.7"), service("manual"), ep]
    s = only_service(*objs)
    assert sorted(s["endpoints"]) == [UID + "a", UID + "b"]
    ws = build_config(Snapshot.from_objects(objs))["workloads"]
    assert {w["name"]: w["services"] for w in ws} == {
        "a": ["default/manual.default.svc.cluster.local"], "b": ["default/manual.default.svc.cluster.local"], "c": []}


@pytest.mark.parametrize("spec, annotations, ns_annotations, expected", [
    ({}, {}, {}, None),
    ({"internalTrafficPolicy": "Local"}, {}, {},
     {"routingPreferences": ["Node"], "mode": "Strict", "healthPolicy": "OnlyHealthy"}),
    ({"trafficDistribution": "PreferClose"}, {}, {},
     {"routingPreferences": ["Network", "Region", "Zone"], "mode": "Failover", "healthPolicy": "OnlyHealthy"}),
    ({}, {"networking.istio.io/traffic-distribution": "PreferSameNode"}, {},
     {"routingPreferences": ["Network", "Region", "Zone", "Subzone", "Node"], "mode": "Failover",
      "healthPolicy": "OnlyHealthy"}),
    ({}, {}, {"networking.istio.io/traffic-distribution": "preferclose"},
     {"routingPreferences": ["Network", "Region", "Zone"], "mode": "Failover", "healthPolicy": "OnlyHealthy"}),
    ({}, {"networking.istio.io/traffic-distribution": "Any"},
     {"networking.istio.io/traffic-distribution": "PreferClose"}, None),
    ({"publishNotReadyAddresses": True}, {}, {}, {"routingPreferences": [], "mode": "Standard",
                                                  "healthPolicy": "AllowAll"}),
])
def test_load_balancing(spec, annotations, ns_annotations, expected):
    ns = namespace("default")
    ns["metadata"]["annotations"] = ns_annotations
    s = only_service(ns, service("s", annotations=annotations, **spec))
    assert s.get("loadBalancer") == expected


@pytest.mark.parametrize("families, expected", [([], None), (["IPv4"], "IPv4"), (["IPv6"], "IPv6"),
                                                 (["IPv4", "IPv6"], "Dual")])
def test_ip_families(families, expected):
    assert only_service(service("s", ipFamilies=families)).get("ipFamilies") == expected
