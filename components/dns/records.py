"""The cluster zone as CoreDNS's kubernetes plugin serves it, built from Services and Endpoints.

`build()` turns the API objects into a table of names; `lookup()` answers one question from it.
Both are pure, so the whole naming scheme is tested without sockets:

- `<svc>.<ns>.svc.<domain>`: A -> the ClusterIP; for a headless service (`clusterIP: None`) the
  ready endpoint IPs, and `<hostname or a-b-c-d>.<svc>.<ns>.svc.<domain>` per endpoint.
- `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV (targets' addresses in the additional section).
- ExternalName services: a CNAME to `spec.externalName`.
- `<a-b-c-d>.<ns>.pod.<domain>`: that IP (`pods insecure`, as kubeadm and kind configure it).
- PTR records for ClusterIPs and headless endpoints under in-addr.arpa.
- `dns-version.<domain>` TXT "1.1.0", the apex's SOA and NS.

A known name without records of the asked type (AAAA on an IPv4 cluster) is NOERROR with no
answers; an unknown name is NXDOMAIN; both carry the zone's SOA in the authority section.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from dnslib import CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A

DNS_SCHEMA_VERSION = "1.1.0"
SOA_TIMES = (7200, 1800, 86400)   # refresh, retry, expire: CoreDNS's values
REVERSE_ZONE = "in-addr.arpa."


def fqdn(name: str) -> str:
    """Lower-cased with exactly one trailing dot."""
    return name.lower().rstrip(".") + "."


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    """`10-244-1-5` -> `10.244.1.5`, or None if the label is not a dashed IPv4 address."""
    try:
        return str(ipaddress.IPv4Address(label.replace("-", ".")))
    except ValueError:
        return None


def reverse_name(ip: str) -> str:
    return ipaddress.IPv4Address(ip).reverse_pointer + "."


def srv_weight(count: int) -> int:
    """CoreDNS splits a weight of 100 evenly over the SRV records of one answer (at least 1)."""
    return max(1, 100 // count)


@dataclass
class Records:
    """A built zone: rdata by name and type, and every existing name (including empty non-terminals)."""

    domain: str                                   # "cluster.local." (fqdn)
    ttl: int
    serial: int
    table: dict[str, dict[int, list[Any]]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)

    def add(self, name: str, qtype: int, rdata: Any) -> None:
        entries = self.table.setdefault(name, {}).setdefault(qtype, [])
        if not any(str(existing) == str(rdata) for existing in entries):
            entries.append(rdata)
        self.mark(name)

    def mark(self, name: str) -> None:
        """Record a name and its ancestors inside the zone (empty non-terminals answer NODATA)."""
        for suffix in (self.domain, REVERSE_ZONE):
            if name == suffix or name.endswith("." + suffix):
                labels = name[: len(name) - len(suffix)].rstrip(".").split(".") if name != suffix else []
                for i in range(len(labels) + 1):
                    self.names.add(".".join(labels[i:] + [suffix.rstrip(".")]) + ".")
                return
        self.names.add(name)

    def in_zone(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def soa(self) -> RR:
        rdata = SOA(f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", (self.serial, *SOA_TIMES, self.ttl))
        return RR(self.domain, QTYPE.SOA, ttl=self.ttl, rdata=rdata)


def _ready_addresses(endpoints: dict[str, Any] | None, publish_not_ready: bool) -> list[tuple[dict, dict]]:
    """(address, subset) pairs of the ready endpoints (and the not-ready ones if the service publishes them)."""
    pairs = []
    for subset in (endpoints or {}).get("subsets") or []:
        addresses = list(subset.get("addresses") or [])
        if publish_not_ready:
            addresses += subset.get("notReadyAddresses") or []
        pairs += [(address, subset) for address in addresses if address.get("ip")]
    return pairs


def _srv_name(port: dict[str, Any], base: str) -> str | None:
    name = port.get("name")
    if not name:
        return None
    return f"_{name.lower()}._{(port.get('protocol') or 'TCP').lower()}.{base}"


def _add_srv(records: Records, name: str, targets: list[tuple[int, str]]) -> None:
    weight = srv_weight(len(targets))
    for port, target in targets:
        records.add(name, QTYPE.SRV, SRV(0, weight, port, target))


def _add_service(records: Records, service: dict[str, Any], endpoints: dict[str, Any] | None) -> None:
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    base = fqdn(f"{meta['name']}.{meta['namespace']}.svc.{records.domain}")
    ports = spec.get("ports") or []
    if spec.get("type") == "ExternalName":
        if spec.get("externalName"):
            records.add(base, QTYPE.CNAME, CNAME(fqdn(spec["externalName"])))
        return
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip and cluster_ip != "None":
        records.add(base, QTYPE.A, A(cluster_ip))
        records.add(reverse_name(cluster_ip), QTYPE.PTR, PTR(base))
        srv_all = []
        for port in ports:
            srv_all.append((int(port["port"]), base))
            name = _srv_name(port, base)
            if name:
                _add_srv(records, name, [(int(port["port"]), base)])
                records.add(name, QTYPE.A, A(cluster_ip))
        if srv_all:
            _add_srv(records, base, srv_all)
        return
    _add_headless(records, base, ports, _ready_addresses(endpoints, bool(spec.get("publishNotReadyAddresses"))))


def _add_headless(records: Records, base: str, ports: list[dict[str, Any]],
                  addresses: list[tuple[dict, dict]]) -> None:
    """A headless service's names exist only while it has endpoints (CoreDNS answers NXDOMAIN otherwise)."""
    by_port: dict[str, list[tuple[int, str]]] = {}
    for address, subset in addresses:
        ip = address["ip"]
        host = fqdn(f"{address.get('hostname') or dashed(ip)}.{base}")
        records.add(base, QTYPE.A, A(ip))
        records.add(host, QTYPE.A, A(ip))
        records.add(reverse_name(ip), QTYPE.PTR, PTR(host))
        for port in subset.get("ports") or []:
            service_port = next((p for p in ports if (p.get("name") or "") == (port.get("name") or "")), port)
            name = _srv_name(service_port, base)
            if name:
                by_port.setdefault(name, []).append((int(port["port"]), host))
            by_port.setdefault(base, []).append((int(port["port"]), host))
    for name, targets in by_port.items():
        _add_srv(records, name, targets)
        if name != base:
            for _port, target in targets:
                for rdata in records.table[target][QTYPE.A]:
                    records.add(name, QTYPE.A, rdata)


def build(services: Iterable[dict[str, Any]], endpoints: Iterable[dict[str, Any]], domain: str = "cluster.local",
          ttl: int = 5, serial: int = 0) -> Records:
    """The zone for these Services and Endpoints."""
    records = Records(fqdn(domain), ttl, serial)
    apex = records.domain
    by_key = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    for service in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        key = (service["metadata"]["namespace"], service["metadata"]["name"])
        _add_service(records, service, by_key.get(key))
        if key == ("kube-system", "kube-dns"):
            for rdata in records.table.get(fqdn(f"kube-dns.kube-system.svc.{apex}"), {}).get(QTYPE.A, []):
                records.add(f"ns.dns.{apex}", QTYPE.A, rdata)
    records.add(apex, QTYPE.NS, NS(f"ns.dns.{apex}"))
    records.add(f"dns-version.{apex}", QTYPE.TXT, TXT(DNS_SCHEMA_VERSION))
    records.mark(f"svc.{apex}")
    records.mark(f"pod.{apex}")
    return records


@dataclass
class Answer:
    rcode: int
    answers: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    authoritative: bool = False


def _pod_address(records: Records, name: str) -> str | None:
    """The IP of `<a-b-c-d>.<ns>.pod.<domain>`, or None."""
    suffix = f".pod.{records.domain}"
    if not name.endswith(suffix):
        return None
    labels = name[: -len(suffix)].split(".")
    if len(labels) != 2:
        return None
    return undashed(labels[0])


def _chase(records: Records, table: dict[int, list[Any]], qtype: int) -> list[tuple[str | None, int, Any]]:
    """(owner, type, rdata) answering `qtype`: an alias's CNAME comes first, then the target's records
    when the target is in the zone (owner None stands for the name asked)."""
    if QTYPE.CNAME in table and qtype != QTYPE.CNAME:
        alias = table[QTYPE.CNAME][0]
        target = fqdn(str(alias.label))
        chased = [(target, qtype, rdata) for rdata in records.table.get(target, {}).get(qtype, [])]
        return [(None, QTYPE.CNAME, alias)] + chased
    if qtype == QTYPE.ANY:
        return [(None, rtype, rdata) for rtype in sorted(table) for rdata in table[rtype]]
    return [(None, qtype, rdata) for rdata in table.get(qtype, [])]


def lookup(records: Records, qname: str, qtype: int) -> Answer:
    """The answer to one question. `qname` keeps the asker's case in the answer section."""
    name = fqdn(qname)
    owner = qname if qname.endswith(".") else qname + "."
    authoritative = records.in_zone(name) or name.endswith("." + REVERSE_ZONE)
    negative = [records.soa()] if records.in_zone(name) else []
    table = dict(records.table.get(name, {}))
    pod_ip = _pod_address(records, name)
    if pod_ip is not None:
        table[QTYPE.A] = [A(pod_ip)]
    if not table and name not in records.names:
        # Names outside the cluster zone would go to CoreDNS's `forward` plugin; this cluster has no
        # upstream resolver, so they do not exist either.
        return Answer(RCODE.NXDOMAIN, authority=negative, authoritative=authoritative)
    if name == records.domain and qtype == QTYPE.SOA:
        return Answer(RCODE.NOERROR, answers=[records.soa()], authoritative=True)
    found = _chase(records, table, qtype)
    if not found:
        return Answer(RCODE.NOERROR, authority=negative, authoritative=authoritative)
    answer = Answer(RCODE.NOERROR, authoritative=authoritative)
    for rr_owner, rtype, rdata in found:
        answer.answers.append(RR(rr_owner or owner, rtype, ttl=records.ttl, rdata=rdata))
        if rtype in (QTYPE.SRV, QTYPE.NS):
            target = fqdn(str(rdata.target if rtype == QTYPE.SRV else rdata.label))
            for extra in records.table.get(target, {}).get(QTYPE.A, []):
                answer.additional.append(RR(target, QTYPE.A, ttl=records.ttl, rdata=extra))
    return answer
