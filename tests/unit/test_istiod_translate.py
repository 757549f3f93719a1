"""The whole translation: one snapshot in, ztunnel's config and the policies' status out, sorted
and deterministic so consumers can diff versions."""

from __future__ import annotations

import json
import random

from components.istiod.translate import Snapshot, build_config, build_policy_status, translate
from tests.unit.istiod_objects import authz, namespace, peer_auth, pod, service, waypoint_gateway


def bookinfo() -> list[dict]:
    return [
        namespace("default", **{"istio.io/dataplane-mode": "ambient"}),
        namespace("istio-system"),
        pod("sleep-1", ip="10.244.1.9", labels={"app": "sleep"}, sa="sleep"),
        pod("productpage-1", ip="10.244.2.5", labels={"app": "productpage", "version": "v1"},
            sa="bookinfo-productpage", ports=[{"name": "http", "containerPort": 9080}]),
        pod("reviews-1", ip="10.244.2.6", labels={"app": "reviews", "version": "v1"}, sa="bookinfo-reviews"),
        pod("old", ip="10.244.2.7", phase="Succeeded"),
        service("productpage", cluster_ip="10.96.0.20", selector={"app": "productpage"},
                ports=[{"port": 9080, "targetPort": "http"}]),
        service("reviews", cluster_ip="10.96.0.21", selector={"app": "reviews"}, ports=[{"port": 9080}],
                labels={"istio.io/use-waypoint": "waypoint"}),
        service("waypoint", cluster_ip="10.96.0.30", ports=[{"port": 15008}]),
        waypoint_gateway(),
        authz("productpage-viewer", "default", {"selector": {"matchLabels": {"app": "productpage"}},
                                                "rules": [{"from": [{"source": {"principals": [
                                                    "cluster.local/ns/default/sa/sleep"]}}]}]}),
        authz("get-only", "default", {"selector": {"matchLabels": {"app": "productpage"}},
                                      "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}, generation=2),
        authz("wp", "default", {"targetRefs": [{"kind": "Service", "name": "reviews"}], "rules": [{}]}),
        authz("deny-ext", "default", {"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}),
        peer_auth("default", "istio-system", {"mtls": {"mode": "STRICT"}}),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored", "namespace": "default"}},
    ]


def test_config_lists_are_sorted():
    cfg = build_config(Snapshot.from_objects(bookinfo()))
    assert set(cfg) == {"workloads", "services", "policies", "l7"}
    assert [w["name"] for w in cfg["workloads"]] == ["productpage-1", "reviews-1", "sleep-1"]
    assert [s["name"] for s in cfg["services"]] == ["productpage", "reviews", "waypoint"]
    assert [(p["namespace"], p["name"]) for p in cfg["policies"]] == [
        ("default", "get-only"), ("default", "productpage-viewer"), ("istio-system", "istio_converted_static_strict")]


def test_bookinfo_highlights():
    cfg = build_config(Snapshot.from_objects(bookinfo()))
    workloads = {w["name"]: w for w in cfg["workloads"]}
    assert workloads["productpage-1"]["authorizationPolicies"] == [
        "default/get-only", "default/productpage-viewer", "istio-system/istio_converted_static_strict"]
    assert workloads["sleep-1"]["authorizationPolicies"] == ["istio-system/istio_converted_static_strict"]
    services = {s["name"]: s for s in cfg["services"]}
    assert services["productpage"]["ports"] == {9080: 0}
    assert services["productpage"]["endpoints"]["Kubernetes//Pod/default/productpage-1"]["port"] == {9080: 9080}
    assert services["reviews"]["waypoint"] == {"destination": "/10.96.0.30", "hboneMtlsPort": 15008}
    assert "waypoint" not in services["productpage"]


def test_policy_status():
    status = build_policy_status(Snapshot.from_objects(bookinfo()))
    assert [(s["namespace"], s["name"], s["conditions"][0]["status"], s["conditions"][0]["reason"])
            for s in status] == [
        ("default", "deny-ext", "False", "UnsupportedValue"),
        ("default", "get-only", "True", "UnsupportedValue"),
        ("default", "productpage-viewer", "True", "Accepted"),
    ]
    get_only = status[1]["conditions"][0]
    assert get_only["type"] == "ZtunnelAccepted" and get_only["observedGeneration"] == 2
    assert get_only["message"].startswith("ztunnel does not support HTTP attributes (found: methods).")


def test_deterministic_whatever_the_input_order():
    objects = bookinfo()
    expected = json.dumps(translate(Snapshot.from_objects(objects)).config)
    for seed in range(5):
        shuffled = list(objects)
        random.Random(seed).shuffle(shuffled)
        assert json.dumps(translate(Snapshot.from_objects(shuffled)).config) == expected


def test_translation_does_not_touch_its_input():
    objects = bookinfo()
    before = json.dumps(objects, sort_keys=True)
    translate(Snapshot.from_objects(objects))
    assert json.dumps(objects, sort_keys=True) == before


def test_empty_snapshot():
    assert build_config(Snapshot()) == {"workloads": [], "services": [], "policies": [],
                                        "l7": {"policies": [], "routes": [], "gateways": [], "gatewayRoutes": []}}
    assert build_policy_status(Snapshot()) == []


def test_outputs_share_no_state():
    """A consumer may edit what it got; the next translation must not see it."""
    snapshot = Snapshot.from_objects(bookinfo())
    first = build_config(snapshot)
    expected = json.dumps(build_config(snapshot))
    for policy in first["policies"]:
        for rule in policy["rules"]:
            for clause in rule:
                for match in clause:
                    for values in match.values():
                        for value in values:
                            if isinstance(value, dict):
                                value.clear()
    for svc in first["services"]:
        svc.get("waypoint", {}).clear()
    assert json.dumps(build_config(snapshot)) == expected
