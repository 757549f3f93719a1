"""ztunnel's view of istiod's config: parsing and lookups (reference 3, 6)."""

from __future__ import annotations

import trio

from components.common.tls import Identity
from components.ztunnel.state import ProxyState, Service, Store, Workload, WorkloadInfo
from tests.unit.ztunnel_fixtures import config, service, workload


def test_workload_fields_and_identity():
    w = Workload.from_obj(workload("sleep-1", "10.244.1.4", sa="sleep", locality={"region": "r", "zone": "z"}))
    assert w.identity == Identity("cluster.local", "default", "sleep")
    assert (w.ips, w.node, w.hbone, w.region, w.zone, w.capacity) == (("10.244.1.4",), "node1", True, "r", "z", 1)


def test_defaults_for_missing_fields():
    w = Workload.from_obj({"uid": "u", "name": "n", "namespace": "ns", "workloadIps": ["1.2.3.4"]})
    assert (w.service_account, w.trust_domain, w.protocol, w.status) == ("default", "cluster.local", "TCP", "Healthy")


def test_service_ports_from_json_strings():
    s = Service.from_obj(service("httpbin", "10.96.0.5", {8000: 8080}))
    assert s.ports == {8000: 8080}
    assert s.vips == (("", "10.96.0.5"),)
    assert s.hostname == "httpbin.default.svc.cluster.local"


def test_lookup_by_ip_vip_uid_and_hostname():
    server = workload("httpbin-1", "10.244.2.6")
    state = ProxyState(config([server], [service("httpbin", "10.96.0.5", {8000: 8080}, [(server, {8000: 8080})])]))
    assert state.workload_by_ip("10.244.2.6").name == "httpbin-1"
    assert state.workload_by_uid(server["uid"]).name == "httpbin-1"
    assert state.service_by_vip("10.96.0.5").name == "httpbin"
    assert state.find_address("10.244.2.6").name == "httpbin-1"
    assert isinstance(state.find_address("10.96.0.5"), Service)
    assert state.find_address("10.9.9.9") is None
    assert state.service_by_hostname("httpbin.default.svc.cluster.local").name == "httpbin"
    assert [s.name for s in state.services_for_workload(state.workload_by_uid(server["uid"]))] == ["httpbin"]


def test_host_network_workloads_are_not_indexed_by_ip():
    state = ProxyState(config([workload("cni-1", "172.18.0.3", networkMode="HostNetwork")]))
    assert state.workload_by_ip("172.18.0.3") is None


def test_pod_and_hbone_win_a_shared_address():
    pod = workload("a-1", "10.0.0.9", protocol="TCP")
    other = dict(workload("b-1", "10.0.0.9"), uid="Kubernetes/networking.istio.io/WorkloadEntry/default/b")
    state = ProxyState(config([other, pod]))
    assert state.workload_by_ip("10.0.0.9").name == "a-1"


def test_vip_prefers_the_clients_namespace():
    a = service("web", "10.96.0.9", {80: 80}, namespace="a")
    b = service("web", "10.96.0.9", {80: 80}, namespace="b")
    state = ProxyState(config([], [a, b]))
    assert state.service_by_vip("10.96.0.9", namespace="b").namespace == "b"
    assert state.service_by_vip("10.96.0.9").namespace == "a"


def test_find_local_is_restricted_to_our_node():
    here = workload("sleep-1", "10.244.1.4", sa="sleep", node="worker")
    there = workload("sleep-1", "10.244.2.4", sa="sleep", node="worker2", namespace="default")
    state = ProxyState(config([there]))
    info = WorkloadInfo("sleep-1", "default", "sleep")
    assert state.find_local(info, "worker") is None
    state = ProxyState(config([there, dict(here, uid="other-uid")]))
    assert state.find_local(info, "worker").ips == ("10.244.1.4",)
    assert state.find_local(WorkloadInfo("sleep-1", "default", "other"), "worker") is None


def test_unhealthy_endpoints_left_out_unless_allow_all():
    ok, sick = workload("a-1", "10.0.0.1"), workload("b-1", "10.0.0.2", status="Unhealthy")
    svc = service("web", "10.96.0.9", {80: 8080}, [(ok, {80: 8080}), (sick, {80: 8080})])
    state = ProxyState(config([ok, sick], [svc]))
    assert [w.name for _, w in state.endpoints(state.services[0])] == ["a-1"]
    svc["loadBalancer"] = {"mode": "Standard", "routingPreferences": [], "healthPolicy": "AllowAll"}
    state = ProxyState(config([ok, sick], [svc]))
    assert sorted(w.name for _, w in state.endpoints(state.services[0])) == ["a-1", "b-1"]


def test_gateway_destinations():
    wp = workload("waypoint-1", "10.0.0.7")
    svc = service("waypoint", "10.96.0.7", {15008: 15008}, [(wp, {15008: 15008})])
    state = ProxyState(config([wp], [svc]))
    assert state.find_destination("/10.96.0.7").name == "waypoint"
    assert state.find_destination("default/waypoint.default.svc.cluster.local").name == "waypoint"
    assert state.find_destination("/10.0.0.7").name == "waypoint-1"
    assert state.find_destination("nonsense") is None


def test_node_local_identities_are_hbone_workloads_on_our_node():
    state = ProxyState(config([workload("a-1", "10.0.0.1", sa="a"), workload("b-1", "10.0.0.2", sa="b", node="x"),
                               workload("c-1", "10.0.0.3", sa="c", protocol="TCP")]))
    assert state.node_local_identities("node1") == {Identity("cluster.local", "default", "a")}


def test_malformed_entries_are_skipped():
    state = ProxyState({"workloads": ["junk", {"name": "no-uid"}], "services": [42],
                        "policies": ["x", {"name": "p"}]})
    assert state.workloads == {} and state.services == [] and len(state.policies) == 1


async def test_store_waits_for_the_local_workload():
    store = Store()
    info = WorkloadInfo("sleep-1", "default", "sleep")
    found = []

    async def wait():
        found.append(await store.wait_for_local(info, "node1", 5))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(0.01)
        store.update(config([workload("other-1", "10.0.0.1")]))
        await trio.sleep(0.01)
        assert found == []
        store.update(config([workload("sleep-1", "10.0.0.2", sa="sleep")]))
    assert found[0].name == "sleep-1"
    assert store.ready and store.received == 2


async def test_store_wait_times_out(autojump_clock):
    store = Store()
    assert await store.wait_for_local(WorkloadInfo("x", "y", "z"), "node1", 5) is None
