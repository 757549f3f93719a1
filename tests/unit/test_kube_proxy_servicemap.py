"""From Services and Endpoints to the service ports kube-proxy programs, and stale UDP conntrack."""

from __future__ import annotations

from typing import Any

from components.kube_proxy.conntrack import Stale, stale_udp
from components.kube_proxy.servicemap import Endpoint, ServicePort, service_ports


def svc(ns: str, name: str, cluster_ip: str | None, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": ports, **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return {"metadata": {"namespace": ns, "name": name}, "spec": body}


def eps(ns: str, name: str, subsets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "subsets": subsets}


def test_ready_endpoints_per_named_port():
    services = [svc("kube-system", "kube-dns", "10.96.0.10", [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])]
    endpoints = [eps("kube-system", "kube-dns", [{
        "addresses": [{"ip": "10.244.0.4"}, {"ip": "10.244.0.3"}],
        "notReadyAddresses": [{"ip": "10.244.0.9"}],
        "ports": [{"name": "dns-tcp", "port": 5353, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}],
    }])]
    ports = service_ports(services, endpoints)
    assert [(p.name_string, p.protocol, p.port) for p in ports] == [
        ("kube-system/kube-dns:dns", "UDP", 53), ("kube-system/kube-dns:dns-tcp", "TCP", 53)]
    assert ports[0].endpoints == (Endpoint("10.244.0.3", 53), Endpoint("10.244.0.4", 53))
    assert [str(e) for e in ports[1].endpoints] == ["10.244.0.3:5353", "10.244.0.4:5353"]


def test_endpoints_sort_numerically_across_subsets():
    services = [svc("d", "web", "10.96.1.1", [{"port": 80}])]
    endpoints = [eps("d", "web", [{"addresses": [{"ip": "10.244.10.2"}], "ports": [{"port": 8080}]},
                                  {"addresses": [{"ip": "10.244.9.2"}], "ports": [{"port": 8080}]}])]
    (port,) = service_ports(services, endpoints)
    assert port.name_string == "d/web" and port.protocol == "TCP"
    assert [e.ip for e in port.endpoints] == ["10.244.9.2", "10.244.10.2"]


def test_services_without_a_cluster_ip_get_nothing():
    services = [svc("d", "headless", "None", [{"port": 80}]),
                svc("d", "ext", None, [], type="ExternalName", externalName="example.com"),
                svc("d", "pending", "", [{"port": 80}]),
                svc("d", "sctp", "10.96.3.3", [{"port": 80, "protocol": "SCTP"}])]
    assert service_ports(services, []) == []


def test_no_endpoints_object_means_no_endpoints():
    (port,) = service_ports([svc("d", "web", "10.96.1.1", [{"name": "http", "port": 80}])], [])
    assert port.endpoints == ()


def udp(ip: str, port: int, *endpoint_ips: str) -> ServicePort:
    return ServicePort("kube-system", "kube-dns", "dns", ip, port, "UDP",
                       tuple(Endpoint(e, port) for e in endpoint_ips))


def test_udp_service_gaining_endpoints_clears_its_entries():
    assert stale_udp([udp("10.96.0.10", 53)], [udp("10.96.0.10", 53, "10.244.0.3")]) == [Stale("10.96.0.10", 53)]
    assert stale_udp([], [udp("10.96.0.10", 53, "10.244.0.3")]) == [Stale("10.96.0.10", 53)]


def test_removed_udp_endpoints_are_cleared():
    before = [udp("10.96.0.10", 53, "10.244.0.3", "10.244.0.4")]
    assert stale_udp(before, [udp("10.96.0.10", 53, "10.244.0.4")]) == [Stale("10.96.0.10", 53, "10.244.0.3")]
    assert stale_udp(before, []) == [Stale("10.96.0.10", 53, "10.244.0.3"), Stale("10.96.0.10", 53, "10.244.0.4")]


def test_nothing_to_clear_for_steady_state_or_tcp():
    steady = [udp("10.96.0.10", 53, "10.244.0.3")]
    assert stale_udp(steady, steady) == []
    tcp = ServicePort("d", "web", "", "10.96.1.1", 80, "TCP", (Endpoint("10.244.1.2", 80),))
    assert stale_udp([tcp], []) == [] and stale_udp([], [tcp]) == []
