"""Services and Endpoints reduced to what kube-proxy programs: one entry per ClusterIP service port,
with the ready endpoints behind it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    protocol: str                       # "TCP" or "UDP"
    endpoints: tuple[Endpoint, ...]

    @property
    def name_string(self) -> str:
        """kube-proxy's ServicePortName: `ns/svc:port`, or `ns/svc` for an unnamed port."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def key(self) -> tuple[str, int, str]:
        return self.cluster_ip, self.port, self.protocol


def _endpoint_key(endpoint: Endpoint) -> tuple[int, int]:
    return int(ipaddress.IPv4Address(endpoint.ip)), endpoint.port


def _ready_endpoints(endpoints: dict[str, Any] | None, port_name: str) -> tuple[Endpoint, ...]:
    """The ready addresses with the port of the same name (port names are unique within a service)."""
    found = set()
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if (p.get("name") or "") == port_name]
        for address in subset.get("addresses") or []:
            for port in ports:
                if address.get("ip"):
                    found.add(Endpoint(address["ip"], int(port["port"])))
    return tuple(sorted(found, key=_endpoint_key))


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def service_ports(services: Iterable[dict[str, Any]], endpoints: Iterable[dict[str, Any]]) -> list[ServicePort]:
    """Every TCP/UDP port of every service with an IPv4 ClusterIP, sorted by `ns/svc:port`.

    Headless and ExternalName services have no ClusterIP and so no rules, as with kube-proxy.
    """
    by_key = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    result = []
    for service in services:
        meta, spec = service["metadata"], service.get("spec") or {}
        cluster_ip = spec.get("clusterIP") or ""
        if spec.get("type") == "ExternalName" or not is_ipv4(cluster_ip):
            continue
        eps = by_key.get((meta["namespace"], meta["name"]))
        for port in spec.get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            if protocol not in PROTOCOLS:
                continue
            port_name = port.get("name") or ""
            result.append(ServicePort(meta["namespace"], meta["name"], port_name, cluster_ip, int(port["port"]),
                                      protocol, _ready_endpoints(eps, port_name)))
    return sorted(result, key=lambda sp: (sp.name_string, sp.protocol))
