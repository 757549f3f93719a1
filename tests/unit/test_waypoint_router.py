"""The waypoint's routing core: default routes, rule matching, weighted backends, subsets,
rewrites and header operations, over a config in istiod's shape."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from components.waypoint import router
from components.waypoint.mesh import Mesh

REVIEWS = "reviews.default.svc.cluster.local"


def workload(name: str, ip: str, healthy: bool = True) -> dict:
    return {"uid": f"Kubernetes//Pod/default/{name}", "name": name, "namespace": "default", "workloadIps": [ip],
            "serviceAccount": "bookinfo-reviews", "protocol": "HBONE", "workloadName": name.rsplit("-", 1)[0],
            "status": "Healthy" if healthy else "Unhealthy"}


def config(rules: list[dict] | None = None) -> dict:
    pods = [workload("reviews-v1-a", "10.244.1.1"), workload("reviews-v2-a", "10.244.1.2"),
            workload("reviews-v3-a", "10.244.1.3", healthy=False)]
    endpoints = {p["uid"]: {"workloadUid": p["uid"], "port": {"9080": 9080}} for p in pods}
    services = [{"name": "reviews", "namespace": "default", "hostname": REVIEWS, "vips": ["/10.96.0.21"],
                 "ports": {"9080": 9080}, "endpoints": endpoints}]
    routes = [] if rules is None else [{"hostname": REVIEWS, "namespace": "default", "name": "reviews",
                                        "source": "VirtualService default/reviews", "rules": rules}]
    return {"version": "3", "workloads": pods, "services": services, "l7": {"routes": routes, "policies": []}}


def backend(weight: int, workloads: list[str] | None = None, **extra: object) -> dict:
    return {"hostname": REVIEWS, "namespace": "default", "service": "reviews", "port": None, "weight": weight,
            "workloads": workloads, **extra}


def request(path: str = "/reviews/0", method: str = "GET", **headers: str) -> router.Request:
    return router.Request(method, path, headers)


def test_without_routes_a_service_routes_to_its_healthy_endpoints():
    mesh = Mesh.from_config(config())
    service = mesh.services_by_vip["10.96.0.21"]
    rule = router.select_rule(mesh, service, 9080, request())
    chosen = {router.pick_endpoint(mesh, router.pick_backend(rule, random.Random(i)), random.Random(i)).name
              for i in range(50)}
    assert chosen == {"reviews-v1-a", "reviews-v2-a"}


def test_weights_split_the_requests():
    v1, v2 = ["Kubernetes//Pod/default/reviews-v1-a"], ["Kubernetes//Pod/default/reviews-v2-a"]
    mesh = Mesh.from_config(config([{"matches": [], "backends": [backend(90, v1), backend(10, v2)]}]))
    rule = router.select_rule(mesh, mesh.services_by_host[REVIEWS], 9080, request())
    rng = random.Random(7)
    counts = Counter(router.pick_endpoint(mesh, router.pick_backend(rule, rng), rng).name for _ in range(2000))
    assert 1700 < counts["reviews-v1-a"] < 1900 and counts["reviews-v1-a"] + counts["reviews-v2-a"] == 2000


@pytest.mark.parametrize(("match", "path", "headers", "expected"), [
    ({"path": {"type": "Prefix", "value": "/rev"}}, "/reviews/1", {}, True),
    ({"path": {"type": "PathPrefix", "value": "/rev"}}, "/reviews/1", {}, False),
    ({"path": {"type": "PathPrefix", "value": "/reviews"}}, "/reviews/1?x=1", {}, True),
    ({"path": {"type": "Exact", "value": "/reviews/1"}}, "/reviews/1?x=1", {}, True),
    ({"path": {"type": "RegularExpression", "value": "/reviews/[0-9]+"}}, "/reviews/12", {}, True),
    ({"headers": [{"name": "end-user", "type": "Exact", "value": "jason"}]}, "/", {"end-user": "jason"}, True),
    ({"headers": [{"name": "end-user", "type": "Exact", "value": "jason"}]}, "/", {}, False),
    ({"queryParams": [{"name": "v", "type": "Exact", "value": "2"}]}, "/?v=2", {}, True),
    ({"method": "POST"}, "/", {}, False),
])
def test_matches(match, path, headers, expected):
    mesh = Mesh.from_config(config([{"matches": [match], "backends": [backend(1)]}]))
    service = mesh.services_by_host[REVIEWS]
    if expected:
        assert router.select_rule(mesh, service, 9080, request(path, **headers)).backends
    else:
        with pytest.raises(router.RouteNotFound):
            router.select_rule(mesh, service, 9080, request(path, **headers))


def test_a_subset_without_healthy_workloads_has_no_endpoint():
    mesh = Mesh.from_config(config([{"matches": [], "backends": [backend(1, ["Kubernetes//Pod/default/reviews-v3-a"])]}]))
    rule = router.select_rule(mesh, mesh.services_by_host[REVIEWS], 9080, request())
    assert router.pick_endpoint(mesh, router.pick_backend(rule, random.Random()), random.Random()) is None


def test_rewrites_and_header_operations():
    rule = router.Rule(rewrite={"type": "ReplacePrefixMatch", "value": "/v2"}, matched_prefix="/api")
    assert router.rewrite_path(rule, "/api/items?x=1") == "/v2/items?x=1"
    assert router.rewrite_path(router.Rule(rewrite={"type": "ReplaceFullPath", "value": "/x"}), "/a/b") == "/x"
    headers = [("host", "reviews"), ("x-drop", "1"), ("x-keep", "old")]
    ops = {"set": {"X-Keep": "new"}, "add": {"x-added": "1"}, "remove": ["X-Drop"]}
    assert router.apply_header_ops(headers, ops) == [("host", "reviews"), ("x-keep", "new"), ("x-added", "1")]
