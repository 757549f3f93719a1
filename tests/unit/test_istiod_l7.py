"""The waypoints' `l7` section: targetRef policies, HTTPRoute and VirtualService routes with
DestinationRule subsets resolved to workloads, and seed 001's early `istio-mesh` waypoints."""

from __future__ import annotations

from components.istiod.translate import Snapshot, build_config
from components.istiod.translate.l7 import resolve_host
from tests.unit.istiod_objects import authz, namespace, pod, service, waypoint_gateway

REVIEWS = "reviews.default.svc.cluster.local"


def reviews_cluster(*extra: dict) -> list[dict]:
    return [
        namespace("default", **{"istio.io/dataplane-mode": "ambient"}),
        pod("sleep-1", ip="10.244.1.9", labels={"app": "sleep"}, sa="sleep"),
        *(pod(f"reviews-{v}", ip=f"10.244.2.{i}", labels={"app": "reviews", "version": v}, sa="bookinfo-reviews")
          for i, v in enumerate(("v1", "v2", "v3"), start=1)),
        pod("productpage-1", ip="10.244.2.9", labels={"app": "productpage"}, sa="bookinfo-productpage"),
        service("reviews", cluster_ip="10.96.0.21", selector={"app": "reviews"}, ports=[{"port": 9080}]),
        service("productpage", cluster_ip="10.96.0.20", selector={"app": "productpage"}, ports=[{"port": 9080}]),
        service("waypoint", cluster_ip="10.96.0.30", ports=[{"port": 15008}]),
        waypoint_gateway(),
        *extra,
    ]


def l7(*objects: dict) -> dict:
    return build_config(Snapshot.from_objects(reviews_cluster(*objects)))["l7"]


def obj(api_version: str, kind: str, name: str, spec: dict, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}


VS_90_10 = obj("networking.istio.io/v1", "VirtualService", "reviews", {"hosts": ["reviews"], "http": [{"route": [
    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}]}]})
DR = obj("networking.istio.io/v1", "DestinationRule", "reviews", {"host": "reviews", "subsets": [
    {"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]})


def test_targetref_policies_are_for_waypoints_and_selector_ones_are_not():
    section = l7(authz("gw", "default", {"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io",
                                                         "name": "waypoint"}], "rules": [{}]}),
                 authz("svc", "default", {"targetRefs": [{"kind": "Service", "group": "", "name": "reviews"}],
                                          "action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}),
                 authz("sel", "default", {"selector": {"matchLabels": {"app": "reviews"}}, "rules": [{}]}))
    by_name = {p["name"]: p for p in section["policies"]}
    assert set(by_name) == {"gw", "svc"}
    assert by_name["gw"]["targets"] == [{"kind": "Gateway", "namespace": "default", "name": "waypoint"}]
    assert by_name["svc"]["targets"][0]["hostname"] == REVIEWS
    assert by_name["svc"]["action"] == "DENY" and by_name["svc"]["rules"][0]["to"][0]["operation"]["methods"] == ["DELETE"]


def test_a_policy_without_rules_keeps_none_so_the_waypoint_denies_everything():
    (policy,) = l7(authz("nothing", "default", {"targetRefs": [{"kind": "Gateway", "name": "waypoint"}]}))["policies"]
    assert policy["rules"] is None and policy["action"] == "ALLOW"


def test_virtual_service_subsets_resolve_to_the_workloads_their_labels_select():
    (route,) = l7(VS_90_10, DR)["routes"]
    assert route["hostname"] == REVIEWS and route["source"] == "VirtualService default/reviews"
    (rule,) = route["rules"]
    assert [(b["weight"], b["subset"], b["workloads"]) for b in rule["backends"]] == [
        (90, "v1", ["Kubernetes//Pod/default/reviews-v1"]), (10, "v2", ["Kubernetes//Pod/default/reviews-v2"])]


def test_a_subset_no_destination_rule_defines_is_an_error_with_no_workloads():
    (route,) = l7(VS_90_10)["routes"]
    backend = route["rules"][0]["backends"][0]
    assert backend["workloads"] == [] and "subset v1" in backend["error"]


def test_an_httproute_on_the_service_wins_over_a_virtual_service():
    route = obj("gateway.networking.k8s.io/v1", "HTTPRoute", "reviews", {
        "parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/reviews"},
                                "headers": [{"name": "End-User", "value": "jason"}]}],
                   "backendRefs": [{"name": "productpage", "port": 9080}]}]})
    (table,) = l7(VS_90_10, DR, route)["routes"]
    assert table["source"] == "HTTPRoute default/reviews"
    (rule,) = table["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/reviews"},
                                "headers": [{"name": "end-user", "type": "Exact", "value": "jason"}],
                                "queryParams": [], "method": None}]
    assert rule["backends"][0]["hostname"] == "productpage.default.svc.cluster.local"
    assert rule["backends"][0]["workloads"] is None and rule["backends"][0]["weight"] == 1


def test_virtual_service_matches_faults_and_timeouts():
    vs = obj("networking.istio.io/v1", "VirtualService", "ratings", {"hosts": ["reviews.default.svc.cluster.local"], "http": [
        {"match": [{"uri": {"prefix": "/api"}, "headers": {"end-user": {"exact": "jason"}}, "method": {"exact": "GET"}}],
         "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}, "abort": {"httpStatus": 500, "percentage": {"value": 50}}},
         "timeout": "0.5s", "route": [{"destination": {"host": "reviews"}}]}]})
    (rule,) = l7(vs)["routes"][0]["rules"]
    assert rule["matches"][0]["path"] == {"type": "Prefix", "value": "/api"}
    assert rule["matches"][0]["method"] == "GET"
    assert rule["fault"] == {"delay": {"seconds": 7.0, "percent": 100.0}, "abort": {"status": 500, "percent": 50.0}}
    assert rule["timeout"] == 0.5 and rule["backends"][0]["weight"] == 100


def test_a_virtual_service_bound_only_to_an_ingress_gateway_is_not_a_mesh_route():
    vs = obj("networking.istio.io/v1", "VirtualService", "bookinfo", {
        "hosts": ["reviews"], "gateways": ["bookinfo-gateway"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]})
    assert l7(vs)["routes"] == []


def test_short_hosts_resolve_in_the_objects_namespace():
    assert resolve_host("reviews", "default", "cluster.local") == REVIEWS
    assert resolve_host("reviews.other", "default", "cluster.local") == "reviews.other"
    assert resolve_host("example.com", "default", "cluster.local") == "example.com"


def test_an_istio_mesh_waypoint_fronts_its_service_accounts_workloads_and_takes_their_selector_policies():
    legacy = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "Gateway",
              "metadata": {"name": "productpage", "namespace": "default",
                           "annotations": {"istio.io/service-account": "bookinfo-productpage"}},
              "spec": {"gatewayClassName": "istio-mesh"}}
    viewer = authz("productpage-viewer", "default", {"selector": {"matchLabels": {"app": "productpage"}},
                                                     "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
    proxy = service("bookinfo-productpage-waypoint-proxy", cluster_ip="10.96.0.40", ports=[{"port": 15008}])
    objects = reviews_cluster(legacy, viewer, proxy)
    config = build_config(Snapshot.from_objects(objects))
    workload = next(w for w in config["workloads"] if w["name"] == "productpage-1")
    assert workload["waypoint"]["destination"] == "/10.96.0.40"
    assert "default/productpage-viewer" not in workload["authorizationPolicies"]
    app = next(s for s in config["services"] if s["name"] == "productpage")
    assert app["waypoint"]["destination"] == "/10.96.0.40"
    own = next(s for s in config["services"] if s["name"] == "bookinfo-productpage-waypoint-proxy")
    reviews = next(s for s in config["services"] if s["name"] == "reviews")
    assert "waypoint" not in reviews and "waypoint" not in own
    (policy,) = config["l7"]["policies"]
    assert policy["name"] == "productpage-viewer"
    assert policy["targets"] == [{"kind": "Gateway", "namespace": "default", "name": "productpage"}]
