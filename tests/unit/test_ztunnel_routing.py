"""The outbound routing decision (reference 1.7, `build_request`)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from components.common.tls import Identity
from components.ztunnel import routing
from components.ztunnel.state import ProxyState, Workload
from tests.unit.ztunnel_fixtures import config, service, workload

SLEEP = workload("sleep-1", "10.244.1.4", sa="sleep")
HTTPBIN = workload("httpbin-1", "10.244.2.6", sa="httpbin")
HTTPBIN_SVC = service("httpbin", "10.96.0.5", {8000: 8080}, [(HTTPBIN, {8000: 8080})])


def decide(state: ProxyState, destination, source=SLEEP, seed=1):
    return routing.decide(state, Workload.from_obj(source), destination, rng=random.Random(seed))


@pytest.mark.parametrize("port", [15001, 15006, 15008, 15080])
def test_loopback_on_our_ports_is_a_self_call(port):
    with pytest.raises(routing.SelfCall, match="attempted recursive call to ourselves"):
        decide(ProxyState(config([SLEEP])), ("127.0.0.1", port))


def test_loopback_elsewhere_and_our_ports_elsewhere_are_fine():
    assert decide(ProxyState(config([SLEEP])), ("127.0.0.1", 8080)).kind == routing.PASSTHROUGH
    assert decide(ProxyState(config([SLEEP])), ("10.9.9.9", 15008)).kind == routing.PASSTHROUGH


def test_service_vip_to_hbone_endpoint_translates_the_port():
    route = decide(ProxyState(config([SLEEP, HTTPBIN], [HTTPBIN_SVC])), ("10.96.0.5", 8000))
    assert route.hbone and route.kind == routing.DIRECT
    assert route.actual_destination == ("10.244.2.6", 15008)
    assert route.hbone_target == ("10.244.2.6", 8080)
    assert route.destination_service.name == "httpbin"
    assert route.destination_workload.name == "httpbin-1"
    assert route.upstream_sans == (Identity("cluster.local", "default", "httpbin"),)


def test_service_sans_come_first():
    svc = dict(HTTPBIN_SVC, subjectAltNames=["spiffe://cluster.local/ns/default/sa/alias", "not-spiffe"])
    route = decide(ProxyState(config([SLEEP, HTTPBIN], [svc])), ("10.96.0.5", 8000))
    assert [str(i) for i in route.upstream_sans] == ["spiffe://cluster.local/ns/default/sa/alias",
                                                      "spiffe://cluster.local/ns/default/sa/httpbin"]


def test_workload_ip_keeps_the_port_and_reports_no_service():
    route = decide(ProxyState(config([SLEEP, HTTPBIN], [HTTPBIN_SVC])), ("10.244.2.6", 8080))
    assert (route.actual_destination, route.hbone_target) == (("10.244.2.6", 15008), ("10.244.2.6", 8080))
    assert route.destination_service is None


def test_tcp_workload_is_plain_tcp_to_the_target_port():
    legacy = workload("legacy-1", "10.244.2.9", protocol="TCP")
    svc = service("legacy", "10.96.0.9", {80: 8080}, [(legacy, {80: 8080})])
    route = decide(ProxyState(config([SLEEP, legacy], [svc])), ("10.96.0.9", 80))
    assert not route.hbone and route.kind == routing.DIRECT
    assert route.actual_destination == ("10.244.2.9", 8080) and route.hbone_target is None


def test_unknown_destination_is_passthrough():
    route = decide(ProxyState(config([SLEEP])), ("93.184.216.34", 443))
    assert (route.protocol, route.kind, route.actual_destination) == ("TCP", routing.PASSTHROUGH, ("93.184.216.34", 443))
    assert route.destination_workload is None and route.destination_service is None


def test_service_without_healthy_endpoints_is_no_healthy_upstream():
    sick = workload("httpbin-1", "10.244.2.6", status="Unhealthy")
    svc = service("httpbin", "10.96.0.5", {8000: 8080}, [(sick, {8000: 8080})])
    with pytest.raises(routing.NoHealthyUpstream, match=r"no healthy upstream: 10\.96\.0\.5:8000"):
        decide(ProxyState(config([SLEEP, sick], [svc])), ("10.96.0.5", 8000))
    with pytest.raises(routing.NoHealthyUpstream):
        decide(ProxyState(config([SLEEP], [service("empty", "10.96.0.6", {80: 80})])), ("10.96.0.6", 80))


def test_unknown_service_port_is_no_healthy_upstream():
    with pytest.raises(routing.NoHealthyUpstream):
        decide(ProxyState(config([SLEEP, HTTPBIN], [HTTPBIN_SVC])), ("10.96.0.5", 9999))


def test_passthrough_service_goes_to_the_original_destination():
    svc = dict(HTTPBIN_SVC, loadBalancer={"mode": "Passthrough", "routingPreferences": []})
    route = decide(ProxyState(config([SLEEP, HTTPBIN], [svc])), ("10.96.0.5", 8000))
    assert route.kind == routing.PASSTHROUGH and route.actual_destination == ("10.96.0.5", 8000)


def test_named_target_port_resolves_per_endpoint():
    a, b = workload("web-a", "10.0.0.1"), workload("web-b", "10.0.0.2")
    svc = service("web", "10.96.0.8", {80: 0}, [(a, {80: 8080}), (b, {})])
    state = ProxyState(config([SLEEP, a, b], [svc]))
    for seed in range(20):
        assert decide(state, ("10.96.0.8", 80), seed=seed).hbone_target == ("10.0.0.1", 8080)


def test_endpoints_weighted_by_capacity():
    a, b = workload("web-a", "10.0.0.1", capacity=3), workload("web-b", "10.0.0.2", capacity=1)
    svc = service("web", "10.96.0.8", {80: 80}, [(a, {80: 80}), (b, {80: 80})])
    state = ProxyState(config([SLEEP, a, b], [svc]))
    rng = random.Random(7)
    picks = Counter(routing.decide(state, Workload.from_obj(SLEEP), ("10.96.0.8", 80), rng=rng)
                    .destination_workload.name for _ in range(2000))
    assert 0.7 < picks["web-a"] / 2000 < 0.8


def test_strict_node_preference_keeps_traffic_on_the_node():
    here, there = workload("web-a", "10.0.0.1", node="node1"), workload("web-b", "10.0.0.2", node="node2")
    svc = service("web", "10.96.0.8", {80: 80}, [(here, {80: 80}), (there, {80: 80})],
                  loadBalancer={"mode": "Strict", "routingPreferences": ["Node"], "healthPolicy": "OnlyHealthy"})
    state = ProxyState(config([SLEEP, here, there], [svc]))
    assert {decide(state, ("10.96.0.8", 80), seed=s).destination_workload.name for s in range(30)} == {"web-a"}
    state = ProxyState(config([SLEEP, there], [dict(svc, endpoints={k: v for k, v in svc["endpoints"].items()
                                                                   if "web-b" in k})]))
    with pytest.raises(routing.NoHealthyUpstream):
        decide(state, ("10.96.0.8", 80))


def test_failover_prefers_the_best_rank_but_falls_back():
    here, there = workload("web-a", "10.0.0.1", node="node1"), workload("web-b", "10.0.0.2", node="node2")
    lb = {"mode": "Failover", "routingPreferences": ["Node"], "healthPolicy": "OnlyHealthy"}
    svc = service("web", "10.96.0.8", {80: 80}, [(here, {80: 80}), (there, {80: 80})], loadBalancer=lb)
    state = ProxyState(config([SLEEP, here, there], [svc]))
    assert {decide(state, ("10.96.0.8", 80), seed=s).destination_workload.name for s in range(30)} == {"web-a"}
    svc = service("web", "10.96.0.8", {80: 80}, [(there, {80: 80})], loadBalancer=lb)
    assert decide(ProxyState(config([SLEEP, there], [svc])), ("10.96.0.8", 80)).destination_workload.name == "web-b"


def _waypoint_state(**service_extra):
    wp = workload("waypoint-1", "10.244.3.3", sa="waypoint")
    wp_svc = service("waypoint", "10.96.0.99", {15008: 15008}, [(wp, {15008: 15008})])
    svc = dict(HTTPBIN_SVC, **service_extra)
    return ProxyState(config([SLEEP, HTTPBIN, wp], [svc, wp_svc]))


def test_service_waypoint_gets_the_untranslated_vip_as_authority():
    route = decide(_waypoint_state(waypoint={"destination": "/10.96.0.99", "hboneMtlsPort": 15008}),
                   ("10.96.0.5", 8000))
    assert route.kind == routing.TO_SERVER_WAYPOINT and route.hbone
    assert route.actual_destination == ("10.244.3.3", 15008)
    assert route.hbone_target == ("10.96.0.5", 8000)
    assert route.upstream_sans == (Identity("cluster.local", "default", "waypoint"),)
    assert route.destination_service.name == "httpbin"


def test_unresolvable_waypoint_is_an_error():
    with pytest.raises(routing.RouteError, match="waypoint"):
        decide(_waypoint_state(waypoint={"destination": "/10.96.9.9", "hboneMtlsPort": 15008}), ("10.96.0.5", 8000))


def test_workload_waypoint_for_pod_addressed_traffic_but_not_from_the_waypoint():
    wp = workload("waypoint-1", "10.244.3.3", sa="waypoint")
    server = dict(HTTPBIN, waypoint={"destination": "/10.244.3.3", "hboneMtlsPort": 15008})
    state = ProxyState(config([SLEEP, server, wp]))
    route = decide(state, ("10.244.2.6", 8080))
    assert route.kind == routing.TO_WORKLOAD_WAYPOINT and route.actual_destination == ("10.244.3.3", 15008)
    assert route.hbone_target == ("10.244.2.6", 8080)
    direct = decide(state, ("10.244.2.6", 8080), source=wp)
    assert direct.kind == routing.DIRECT and direct.actual_destination == ("10.244.2.6", 15008)
