"""The cluster zone: which names exist and what they answer (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from dnslib import QTYPE, RCODE

from components.dns.records import build, lookup, srv_weight, undashed


def service(name: str, ns: str, cluster_ip: str | None, ports: list[dict[str, Any]] | None = None,
            **spec: Any) -> dict[str, Any]:
    body = {"ports": ports if ports is not None else [{"name": "http", "port": 8000, "targetPort": 80,
                                                       "protocol": "TCP"}], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": body}


def endpoints(name: str, ns: str, ips: list[str], ports: list[dict[str, Any]] | None = None,
              not_ready: list[str] | None = None, hostnames: dict[str, str] | None = None) -> dict[str, Any]:
    addresses = [{"ip": ip, **({"hostname": hostnames[ip]} if hostnames and ip in hostnames else {})}
                 for ip in ips]
    subset: dict[str, Any] = {"addresses": addresses,
                              "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
            "subsets": [subset]}


@pytest.fixture
def zone():
    services = [
        service("httpbin", "ambient-demo", "10.96.12.34"),
        service("kube-dns", "kube-system", "10.96.0.10",
                [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
        service("db", "ambient-demo", "None", [{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        service("empty-headless", "ambient-demo", "None"),
        service("outside", "ambient-demo", None, [], type="ExternalName", externalName="example.com"),
        service("alias", "ambient-demo", None, [], type="ExternalName",
                externalName="httpbin.ambient-demo.svc.cluster.local"),
    ]
    eps = [
        endpoints("httpbin", "ambient-demo", ["10.244.2.6"]),
        endpoints("db", "ambient-demo", ["10.244.1.7", "10.244.2.9"], [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                  not_ready=["10.244.1.99"], hostnames={"10.244.1.7": "db-0"}),
    ]
    return build(services, eps, "cluster.local", ttl=5, serial=1710677228)


def values(answer) -> list[str]:
    return [str(rr.rdata) for rr in answer.answers]


def test_cluster_ip_service(zone):
    answer = lookup(zone, "httpbin.ambient-demo.svc.cluster.local.", QTYPE.A)
    assert answer.rcode == RCODE.NOERROR and answer.authoritative
    assert values(answer) == ["10.96.12.34"]
    assert answer.answers[0].ttl == 5
    assert answer.authority == []


def test_names_are_case_insensitive_and_keep_the_askers_case(zone):
    answer = lookup(zone, "HttpBin.Ambient-Demo.svc.cluster.local", QTYPE.A)
    assert values(answer) == ["10.96.12.34"]
    assert str(answer.answers[0].rname) == "HttpBin.Ambient-Demo.svc.cluster.local."


def test_aaaa_for_a_known_name_is_nodata_with_soa(zone):
    answer = lookup(zone, "httpbin.ambient-demo.svc.cluster.local.", QTYPE.AAAA)
    assert answer.rcode == RCODE.NOERROR
    assert answer.answers == []
    assert [QTYPE[rr.rtype] for rr in answer.authority] == ["SOA"]


def test_unknown_name_in_zone_is_nxdomain_with_soa(zone):
    answer = lookup(zone, "nothere.ambient-demo.svc.cluster.local.", QTYPE.A)
    assert answer.rcode == RCODE.NXDOMAIN and answer.authoritative
    soa = answer.authority[0]
    assert str(soa.rname) == "cluster.local."
    assert str(soa.rdata) == "ns.dns.cluster.local. hostmaster.cluster.local. 1710677228 7200 1800 86400 5"


def test_search_path_candidates_are_nxdomain(zone):
    # What a resolver tries for `httpbin` from namespace ambient-demo before and after the hit.
    for name in ("httpbin.svc.cluster.local.", "httpbin.cluster.local.",
                 "httpbin.ambient-demo.svc.cluster.local.ambient-demo.svc.cluster.local."):
        assert lookup(zone, name, QTYPE.A).rcode == RCODE.NXDOMAIN


def test_names_outside_the_cluster_are_nxdomain_without_authority(zone):
    answer = lookup(zone, "example.com.", QTYPE.A)
    assert answer.rcode == RCODE.NXDOMAIN
    assert answer.authority == [] and not answer.authoritative


def test_empty_non_terminals_are_nodata(zone):
    for name in ("ambient-demo.svc.cluster.local.", "svc.cluster.local.", "cluster.local."):
        answer = lookup(zone, name, QTYPE.A)
        assert (answer.rcode, answer.answers) == (RCODE.NOERROR, []), name


def test_headless_service_answers_ready_endpoints(zone):
    answer = lookup(zone, "db.ambient-demo.svc.cluster.local.", QTYPE.A)
    assert sorted(values(answer)) == ["10.244.1.7", "10.244.2.9"]
    assert values(lookup(zone, "db-0.db.ambient-demo.svc.cluster.local.", QTYPE.A)) == ["10.244.1.7"]
    assert values(lookup(zone, "10-244-2-9.db.ambient-demo.svc.cluster.local.", QTYPE.A)) == ["10.244.2.9"]


def test_headless_without_endpoints_is_nxdomain(zone):
    assert lookup(zone, "empty-headless.ambient-demo.svc.cluster.local.", QTYPE.A).rcode == RCODE.NXDOMAIN


def test_publish_not_ready_addresses():
    zone = build([service("db", "ns", "None", publishNotReadyAddresses=True)],
                 [endpoints("db", "ns", ["10.244.1.2"], not_ready=["10.244.1.3"])])
    assert sorted(values(lookup(zone, "db.ns.svc.cluster.local.", QTYPE.A))) == ["10.244.1.2", "10.244.1.3"]


def test_srv_for_a_cluster_ip_service(zone):
    answer = lookup(zone, "_http._tcp.httpbin.ambient-demo.svc.cluster.local.", QTYPE.SRV)
    assert values(answer) == ["0 100 8000 httpbin.ambient-demo.svc.cluster.local."]
    assert [(str(rr.rname), str(rr.rdata)) for rr in answer.additional] == [
        ("httpbin.ambient-demo.svc.cluster.local.", "10.96.12.34")]


def test_srv_protocol_must_match(zone):
    assert values(lookup(zone, "_dns._udp.kube-dns.kube-system.svc.cluster.local.", QTYPE.SRV)) == [
        "0 100 53 kube-dns.kube-system.svc.cluster.local."]
    assert lookup(zone, "_dns._tcp.kube-dns.kube-system.svc.cluster.local.", QTYPE.SRV).rcode == RCODE.NXDOMAIN


def test_srv_on_the_service_name_lists_every_port(zone):
    # dns/UDP and dns-tcp/TCP give the same record twice: CoreDNS weighs before dropping duplicates.
    answer = lookup(zone, "kube-dns.kube-system.svc.cluster.local.", QTYPE.SRV)
    assert values(answer) == ["0 50 53 kube-dns.kube-system.svc.cluster.local."]
    two = build([service("web", "ns", "10.96.1.1", [{"name": "http", "port": 80}, {"name": "https", "port": 443}])],
                [])
    assert values(lookup(two, "web.ns.svc.cluster.local.", QTYPE.SRV)) == [
        "0 50 80 web.ns.svc.cluster.local.", "0 50 443 web.ns.svc.cluster.local."]


def test_srv_for_a_headless_service_targets_each_endpoint(zone):
    answer = lookup(zone, "_pg._tcp.db.ambient-demo.svc.cluster.local.", QTYPE.SRV)
    assert sorted(values(answer)) == ["0 50 5432 10-244-2-9.db.ambient-demo.svc.cluster.local.",
                                      "0 50 5432 db-0.db.ambient-demo.svc.cluster.local."]
    assert sorted(str(rr.rdata) for rr in answer.additional) == ["10.244.1.7", "10.244.2.9"]


def test_srv_weights_split_like_coredns():
    assert [srv_weight(n) for n in (1, 2, 3, 200)] == [100, 50, 33, 1]


def test_pod_names(zone):
    assert values(lookup(zone, "10-244-2-6.ambient-demo.pod.cluster.local.", QTYPE.A)) == ["10.244.2.6"]
    nodata = lookup(zone, "10-244-2-6.ambient-demo.pod.cluster.local.", QTYPE.AAAA)
    assert (nodata.rcode, nodata.answers) == (RCODE.NOERROR, [])
    assert lookup(zone, "10-244-2.ambient-demo.pod.cluster.local.", QTYPE.A).rcode == RCODE.NXDOMAIN
    assert lookup(zone, "999-1-1-1.ambient-demo.pod.cluster.local.", QTYPE.A).rcode == RCODE.NXDOMAIN
    assert undashed("10-244-0-1") == "10.244.0.1"


def test_external_name_is_a_cname(zone):
    answer = lookup(zone, "outside.ambient-demo.svc.cluster.local.", QTYPE.A)
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in answer.answers] == [("CNAME", "example.com.")]


def test_external_name_to_a_cluster_name_is_followed(zone):
    answer = lookup(zone, "alias.ambient-demo.svc.cluster.local.", QTYPE.A)
    assert [(QTYPE[rr.rtype], str(rr.rname), str(rr.rdata)) for rr in answer.answers] == [
        ("CNAME", "alias.ambient-demo.svc.cluster.local.", "httpbin.ambient-demo.svc.cluster.local."),
        ("A", "httpbin.ambient-demo.svc.cluster.local.", "10.96.12.34")]


def test_reverse_lookups(zone):
    assert values(lookup(zone, "34.12.96.10.in-addr.arpa.", QTYPE.PTR)) == ["httpbin.ambient-demo.svc.cluster.local."]
    assert values(lookup(zone, "7.1.244.10.in-addr.arpa.", QTYPE.PTR)) == ["db-0.db.ambient-demo.svc.cluster.local."]
    assert lookup(zone, "1.1.1.1.in-addr.arpa.", QTYPE.PTR).rcode == RCODE.NXDOMAIN


def test_apex_soa_ns_and_version(zone):
    soa = lookup(zone, "cluster.local.", QTYPE.SOA)
    assert [QTYPE[rr.rtype] for rr in soa.answers] == ["SOA"]
    ns = lookup(zone, "cluster.local.", QTYPE.NS)
    assert values(ns) == ["ns.dns.cluster.local."]
    assert [str(rr.rdata) for rr in ns.additional] == ["10.96.0.10"]
    assert values(lookup(zone, "dns-version.cluster.local.", QTYPE.TXT)) == ['"1.1.0"']


def test_other_cluster_domain():
    zone = build([service("a", "b", "10.96.0.5")], [], "corp.internal")
    assert values(lookup(zone, "a.b.svc.corp.internal.", QTYPE.A)) == ["10.96.0.5"]
    assert lookup(zone, "a.b.svc.cluster.local.", QTYPE.A).rcode == RCODE.NXDOMAIN
