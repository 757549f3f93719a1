"""kube-proxy's desired rules: chain names, comments and lines as iptables-save shows them."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from components.kube_proxy.rules import (FILTER, JUMPS, NAT, Match, Rule, compute, is_owned, probability,
                                         save_string, sep_chain, svc_chain)
from components.kube_proxy.servicemap import Endpoint, ServicePort, service_ports

CIDR = "10.244.0.0/16"


def sp(ns: str, name: str, port_name: str, ip: str, port: int, protocol: str = "TCP",
       endpoints: tuple[tuple[str, int], ...] = ()) -> ServicePort:
    return ServicePort(ns, name, port_name, ip, port, protocol, tuple(Endpoint(i, p) for i, p in endpoints))


KUBERNETES = sp("default", "kubernetes", "https", "10.96.0.1", 443, endpoints=(("172.18.0.2", 6443),))
DNS = sp("kube-system", "kube-dns", "dns", "10.96.0.10", 53, "UDP", (("10.244.0.3", 53), ("10.244.0.4", 53)))
DNS_TCP = sp("kube-system", "kube-dns", "dns-tcp", "10.96.0.10", 53, "TCP", (("10.244.0.3", 53), ("10.244.0.4", 53)))


def test_chain_names_are_kube_proxys():
    # The names every kind cluster shows for these services.
    assert svc_chain(KUBERNETES) == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    assert svc_chain(DNS) == "KUBE-SVC-TCOU7JCQXEZGVUNU"
    assert svc_chain(DNS_TCP) == "KUBE-SVC-ERIFXISQEP7F7OF4"
    assert svc_chain(sp("kube-system", "kube-dns", "metrics", "10.96.0.10", 9153)) == "KUBE-SVC-JD5MR3NA4I4DYORP"
    digest = hashlib.sha256(b"default/kubernetes:httpstcp172.18.0.2:6443").digest()
    assert sep_chain(KUBERNETES, "172.18.0.2:6443") == "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]
    assert len(sep_chain(KUBERNETES, "172.18.0.2:6443")) <= 28


def test_probabilities_print_as_iptables_save_does():
    assert [probability(n) for n in (2, 3, 4)] == ["0.50000000000", "0.33333333349", "0.25000000000"]


def test_comment_quoting_follows_iptables_save():
    assert save_string("kubernetes") == "kubernetes"
    assert save_string("default/kubernetes:https") == '"default/kubernetes:https"'
    assert save_string('say "hi"') == '"say \\"hi\\""'


def lines(ports: list[ServicePort], cidr: str | None = CIDR) -> list[str]:
    return compute(ports, cidr).save().splitlines()


def test_single_endpoint_service_reads_like_a_kind_node():
    out = lines([KUBERNETES])
    sep = sep_chain(KUBERNETES, "172.18.0.2:6443")
    assert ('-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" '
            "-m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y") in out
    svc = [line for line in out if line.startswith("-A KUBE-SVC-NPX46M4PTMTKRN6Y ")]
    assert svc == [
        '-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment '
        '"default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ',
        f'-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 172.18.0.2:6443" -j {sep}',
    ]
    assert [line for line in out if line.startswith(f"-A {sep} ")] == [
        f'-A {sep} -s 172.18.0.2/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ',
        f'-A {sep} -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT '
        "--to-destination 172.18.0.2:6443",
    ]


def test_static_chains():
    out = lines([])
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in out
    postrouting = [line for line in out if line.startswith("-A KUBE-POSTROUTING ")]
    assert postrouting == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    assert out[:4] == ["*filter", ":KUBE-SERVICES - [0:0]", "COMMIT", "*nat"]


def test_endpoints_are_spread_with_decreasing_probabilities():
    three = sp("ambient-demo", "httpbin", "http", "10.96.5.5", 8000,
               endpoints=(("10.244.1.5", 8080), ("10.244.2.6", 8080), ("10.244.2.7", 8080)))
    rules = compute([three], CIDR).tables[NAT][svc_chain(three)]
    spread = [rule.save("X") for rule in rules if rule.target.startswith("KUBE-SEP-")]
    assert [("--probability 0.33333333349" in r, "--probability 0.50000000000" in r, "statistic" in r)
            for r in spread] == [(True, False, True), (False, True, True), (False, False, False)]
    assert '-m comment --comment "ambient-demo/httpbin:http -> 10.244.2.7:8080" -j KUBE-SEP-' in spread[2]
    seps = [r.target for r in rules if r.target.startswith("KUBE-SEP-")]
    assert seps == [sep_chain(three, f"10.244.{x}:8080") for x in ("1.5", "2.6", "2.7")]


def test_udp_dns_is_dnated():
    nat = compute([DNS, DNS_TCP], CIDR).tables[NAT]
    sep = sep_chain(DNS, "10.244.0.3:53")
    assert nat[sep][1].save(sep) == (f'-A {sep} -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp '
                                     "-j DNAT --to-destination 10.244.0.3:53")
    services = [r.save("KUBE-SERVICES") for r in nat["KUBE-SERVICES"]]
    assert ('-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" '
            "-m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU") in services
    assert len(services) == 2


def test_service_without_endpoints_is_rejected_in_filter():
    empty = sp("default", "nothing", "http", "10.96.9.9", 80)
    ruleset = compute([empty], CIDR)
    assert [r.save("KUBE-SERVICES") for r in ruleset.tables[FILTER]["KUBE-SERVICES"]] == [
        '-A KUBE-SERVICES -d 10.96.9.9/32 -p tcp -m comment --comment "default/nothing:http has no endpoints" '
        "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"]
    assert ruleset.tables[NAT]["KUBE-SERVICES"] == []
    assert not any(name.startswith("KUBE-SVC-") for name in ruleset.tables[NAT])


def test_unnamed_port_comments():
    plain = sp("default", "echo", "", "10.96.7.7", 9000, endpoints=(("10.244.1.9", 9000),))
    out = "\n".join(lines([plain]))
    assert '--comment "default/echo cluster IP"' in out
    assert '--comment "default/echo -> 10.244.1.9:9000"' in out


def test_no_cluster_cidr_means_no_off_cluster_masquerade():
    rules = compute([KUBERNETES], None).tables[NAT][svc_chain(KUBERNETES)]
    assert [r.target for r in rules] == [sep_chain(KUBERNETES, "172.18.0.2:6443")]


def test_jumps_from_builtin_chains():
    saved = {(table, rule.save(chain)) for table, chain, rule in JUMPS}
    assert saved == {
        (NAT, '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        (NAT, '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        (NAT, '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
        (FILTER, '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                 "-j KUBE-SERVICES"),
        (FILTER, '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                 "-j KUBE-SERVICES"),
    }


def test_owned_chains():
    assert is_owned(NAT, "KUBE-SVC-NPX46M4PTMTKRN6Y") and is_owned(NAT, "KUBE-POSTROUTING")
    assert is_owned(FILTER, "KUBE-SERVICES") and not is_owned(FILTER, "KUBE-SVC-X")
    assert not is_owned(NAT, "ISTIO_POSTRT") and not is_owned(NAT, "PREROUTING")


def test_rule_rendering_of_negations():
    rule = Rule("RETURN", source="!10.0.0.0/8", matches=(Match("mark", (("mark", "!0x1/0x1"),)),))
    assert rule.save("C") == "-A C ! -s 10.0.0.0/8 -m mark ! --mark 0x1/0x1 -j RETURN"


def obj(kind: str, ns: str, name: str, **body: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": ns, "name": name}, **body}


def test_from_api_objects_to_rules():
    services = [obj("Service", "ambient-demo", "httpbin", spec={
        "clusterIP": "10.96.5.5", "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]})]
    endpoints = [obj("Endpoints", "ambient-demo", "httpbin", subsets=[
        {"addresses": [{"ip": "10.244.2.6", "nodeName": "worker2"}], "ports": [{"name": "http", "port": 8080}]}])]
    out = lines(service_ports(services, endpoints))
    assert any("--to-destination 10.244.2.6:8080" in line for line in out)
    assert any('"ambient-demo/httpbin:http cluster IP" -m tcp --dport 8000' in line for line in out)
