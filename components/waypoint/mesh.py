"""The waypoint's view of istiod's config: the services and workloads it routes to, its routes and
the AuthorizationPolicies attached to it. I/O-free; rebuilt from each full snapshot.

Only what an Envoy waypoint gets from istiod is read: endpoints with their identity and whether
they speak HBONE, service ports, the `l7` section (see istiod's translate/l7.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

Obj = dict[str, Any]

HBONE = "HBONE"


def _ports(raw: Any) -> dict[int, int]:
    """A JSON object of port -> port (keys are strings in JSON)."""
    result: dict[int, int] = {}
    for key, value in (raw or {}).items():
        try:
            result[int(key)] = int(value)
        except (TypeError, ValueError):
            continue
    return result


def _ip(network_address: str) -> str:
    """`network/ip` -> ip."""
    return network_address.rpartition("/")[2]


@dataclass(frozen=True)
class Workload:
    uid: str
    name: str
    namespace: str
    ips: tuple[str, ...]
    service_account: str
    trust_domain: str
    protocol: str
    workload_name: str
    canonical_name: str
    canonical_revision: str
    cluster_id: str
    healthy: bool
    waypoint: Obj | None

    @classmethod
    def from_obj(cls, obj: Obj) -> "Workload":
        return cls(
            uid=obj.get("uid", ""), name=obj.get("name", ""), namespace=obj.get("namespace", ""),
            ips=tuple(obj.get("workloadIps") or ()), service_account=obj.get("serviceAccount") or "default",
            trust_domain=obj.get("trustDomain") or "cluster.local", protocol=obj.get("protocol") or "TCP",
            workload_name=obj.get("workloadName") or obj.get("name", ""),
            canonical_name=obj.get("canonicalName") or "", canonical_revision=obj.get("canonicalRevision") or "",
            cluster_id=obj.get("clusterId") or "", healthy=(obj.get("status") or "Healthy") == "Healthy",
            waypoint=obj.get("waypoint") if isinstance(obj.get("waypoint"), dict) else None)

    @property
    def principal(self) -> str:
        """The SPIFFE identity without its scheme, as AuthorizationPolicies name it."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{self.principal}"


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    hostname: str
    vips: tuple[str, ...]
    ports: dict[int, int]
    endpoints: dict[str, dict[int, int]]   # workload uid -> service port -> target port
    waypoint: Obj | None

    @classmethod
    def from_obj(cls, obj: Obj) -> "Service":
        endpoints = {uid: _ports(ep.get("port")) for uid, ep in (obj.get("endpoints") or {}).items()}
        return cls(name=obj.get("name", ""), namespace=obj.get("namespace", ""), hostname=obj.get("hostname", ""),
                   vips=tuple(_ip(v) for v in obj.get("vips") or ()), ports=_ports(obj.get("ports")),
                   endpoints=endpoints,
                   waypoint=obj.get("waypoint") if isinstance(obj.get("waypoint"), dict) else None)

    def target_port(self, uid: str, port: int) -> int:
        """The port an endpoint listens on for service port `port` (the port itself if unknown)."""
        return self.endpoints.get(uid, {}).get(port) or self.ports.get(port) or port


@dataclass
class Mesh:
    """One snapshot of istiod's config, indexed for the waypoint's lookups."""

    version: str = ""
    workloads: dict[str, Workload] = field(default_factory=dict)
    workloads_by_ip: dict[str, Workload] = field(default_factory=dict)
    services_by_vip: dict[str, Service] = field(default_factory=dict)
    services_by_host: dict[str, Service] = field(default_factory=dict)
    routes: dict[str, Obj] = field(default_factory=dict)     # hostname -> route table
    policies: list[Obj] = field(default_factory=list)
    gateways: list[Obj] = field(default_factory=list)        # Istio (ingress) Gateways
    gateway_routes: list[Obj] = field(default_factory=list)  # VirtualServices bound to them

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Mesh":
        mesh = cls(version=str(config.get("version", "")))
        for obj in config.get("workloads") or []:
            workload = Workload.from_obj(obj)
            mesh.workloads[workload.uid] = workload
            for ip in workload.ips:
                mesh.workloads_by_ip[ip] = workload
        for obj in config.get("services") or []:
            service = Service.from_obj(obj)
            mesh.services_by_host[service.hostname] = service
            for vip in service.vips:
                mesh.services_by_vip[vip] = service
        l7 = config.get("l7") or {}
        mesh.routes = {r["hostname"]: r for r in l7.get("routes") or []}
        mesh.policies = list(l7.get("policies") or [])
        mesh.gateways = list(l7.get("gateways") or [])
        mesh.gateway_routes = list(l7.get("gatewayRoutes") or [])
        return mesh

    def gateways_selecting(self, pod_labels: Mapping[str, str]) -> list[Obj]:
        """The Istio Gateways whose selector matches an ingress gateway pod's labels."""
        return [g for g in self.gateways
                if g.get("selector") and all(pod_labels.get(k) == v for k, v in g["selector"].items())]

    def addresses_of(self, namespace: str, name: str) -> set[str]:
        """The GatewayAddress destinations (`network/ip` or `ns/hostname`) that mean this waypoint."""
        service = self.services_by_host.get(f"{name}.{namespace}.svc.cluster.local")
        found = {f"{namespace}/{name}.{namespace}.svc.cluster.local"}
        if service is not None:
            found |= {f"/{vip}" for vip in service.vips}
        return found

    def endpoints(self, service: Service, only: list[str] | None = None) -> list[Workload]:
        """The service's healthy endpoints with an IP, optionally only those workloads (a subset)."""
        uids = service.endpoints if only is None else [uid for uid in only if uid in service.endpoints]
        found = [self.workloads[uid] for uid in uids if uid in self.workloads]
        return [w for w in found if w.healthy and w.ips]

    def attached_policies(self, gateway_namespace: str, gateway_name: str, service: Service | None) -> list[Obj]:
        """Policies whose targetRefs name this waypoint's Gateway, its class, or the destination Service."""
        found = []
        for policy in self.policies:
            for target in policy.get("targets") or []:
                kind = target.get("kind")
                if ((kind == "Gateway" and (target.get("namespace"), target.get("name")) == (gateway_namespace, gateway_name))
                        or (kind == "GatewayClass" and target.get("name") == "istio-waypoint")
                        or (kind == "Service" and service is not None and target.get("hostname") == service.hostname)):
                    found.append(policy)
                    break
        return found
