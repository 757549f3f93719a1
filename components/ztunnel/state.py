"""The config istiod pushes, as ztunnel holds it: workloads, services and policies with lookups.

Every push is a full snapshot (`{"version", "workloads", "services", "policies"}` in ztunnel's
camelCase shapes, see components/istiod/translate). A `ProxyState` is built from one snapshot and
never changes; the `Store` swaps in a new one per push and wakes whoever waits for a workload.
Lookups follow ztunnel's `src/state.rs`: an address is a workload IP first, then a service VIP;
hostNetwork workloads are not indexed by IP; endpoints that are not healthy are left out unless
the service's health policy allows all; the local workload of a pod proxy is found by
(name, namespace, service account) among the workloads on our node.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import trio

from components.common.tls import Identity

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HBONE = "HBONE"
TCP = "TCP"
HEALTHY = "Healthy"


def _str(obj: Mapping[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else default


def _ports(value: Any) -> dict[int, int]:
    """`{svcPort: targetPort}` with the int keys JSON turned into strings; junk entries dropped."""
    result: dict[int, int] = {}
    if isinstance(value, Mapping):
        for key, target in value.items():
            try:
                result[int(key)] = int(target)
            except (TypeError, ValueError):
                continue
    return result


def split_network_address(text: str) -> tuple[str, str]:
    """ztunnel's NetworkAddress string `network/ip` (`/ip` on the default network)."""
    network, slash, ip = text.rpartition("/")
    return (network, ip) if slash else ("", text)


@dataclass(frozen=True)
class WorkloadInfo:
    """What istio-cni tells ztunnel about a pod (ZDS `WorkloadInfo`)."""

    name: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.service_account})"


@dataclass(frozen=True)
class Workload:
    uid: str
    name: str
    namespace: str
    ips: tuple[str, ...]
    service_account: str = "default"
    trust_domain: str = "cluster.local"
    node: str = ""
    protocol: str = TCP
    network: str = ""
    network_mode: str = "Standard"
    workload_name: str = ""
    workload_type: str = "pod"
    canonical_name: str = ""
    canonical_revision: str = ""
    cluster_id: str = ""
    status: str = HEALTHY
    authorization_policies: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    waypoint: Obj | None = None
    region: str = ""
    zone: str = ""
    subzone: str = ""
    capacity: int = 1
    raw: Obj = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_obj(cls, obj: Obj) -> "Workload":
        ips = obj.get("workloadIps") or []
        locality = obj.get("locality") or {}
        capacity = obj.get("capacity")
        waypoint = obj.get("waypoint")
        return cls(
            uid=_str(obj, "uid"), name=_str(obj, "name"), namespace=_str(obj, "namespace"),
            ips=tuple(ip for ip in ips if isinstance(ip, str)),
            service_account=_str(obj, "serviceAccount") or "default",
            trust_domain=_str(obj, "trustDomain") or "cluster.local",
            node=_str(obj, "node"), protocol=_str(obj, "protocol") or TCP, network=_str(obj, "network"),
            network_mode=_str(obj, "networkMode") or "Standard", workload_name=_str(obj, "workloadName"),
            workload_type=_str(obj, "workloadType") or "pod", canonical_name=_str(obj, "canonicalName"),
            canonical_revision=_str(obj, "canonicalRevision"), cluster_id=_str(obj, "clusterId"),
            status=_str(obj, "status") or HEALTHY,
            authorization_policies=tuple(p for p in obj.get("authorizationPolicies") or [] if isinstance(p, str)),
            services=tuple(s for s in obj.get("services") or [] if isinstance(s, str)),
            waypoint=waypoint if isinstance(waypoint, dict) else None,
            region=_str(locality, "region"), zone=_str(locality, "zone"), subzone=_str(locality, "subzone"),
            capacity=capacity if isinstance(capacity, int) and capacity > 0 else 1,
            raw=obj,
        )

    @property
    def identity(self) -> Identity:
        return Identity(self.trust_domain, self.namespace, self.service_account)

    @property
    def hbone(self) -> bool:
        return self.protocol == HBONE

    def matches(self, info: WorkloadInfo) -> bool:
        return (self.name, self.namespace, self.service_account) == (
            info.name, info.namespace, info.service_account)


@dataclass(frozen=True)
class Endpoint:
    workload_uid: str
    ports: dict[int, int]
    status: str = HEALTHY


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    hostname: str
    vips: tuple[tuple[str, str], ...]
    ports: dict[int, int]
    endpoints: dict[str, Endpoint]
    subject_alt_names: tuple[str, ...] = ()
    waypoint: Obj | None = None
    load_balancer: Obj | None = None
    raw: Obj = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_obj(cls, obj: Obj) -> "Service":
        endpoints: dict[str, Endpoint] = {}
        raw_endpoints = obj.get("endpoints") or {}
        items = raw_endpoints.values() if isinstance(raw_endpoints, Mapping) else raw_endpoints
        for ep in items:
            if isinstance(ep, Mapping) and _str(ep, "workloadUid"):
                endpoints[ep["workloadUid"]] = Endpoint(ep["workloadUid"], _ports(ep.get("port")),
                                                        _str(ep, "status") or HEALTHY)
        waypoint = obj.get("waypoint")
        load_balancer = obj.get("loadBalancer")
        return cls(
            name=_str(obj, "name"), namespace=_str(obj, "namespace"), hostname=_str(obj, "hostname"),
            vips=tuple(split_network_address(v) for v in obj.get("vips") or [] if isinstance(v, str)),
            ports=_ports(obj.get("ports")), endpoints=endpoints,
            subject_alt_names=tuple(s for s in obj.get("subjectAltNames") or [] if isinstance(s, str)),
            waypoint=waypoint if isinstance(waypoint, dict) else None,
            load_balancer=load_balancer if isinstance(load_balancer, dict) else None,
            raw=obj,
        )

    @property
    def lb_mode(self) -> str:
        return _str(self.load_balancer or {}, "mode") or "Standard"

    def accepts_endpoint(self, endpoint: Endpoint) -> bool:
        """Healthy endpoints only, unless the health policy is AllowAll (publishNotReadyAddresses)."""
        if endpoint.status == HEALTHY:
            return True
        return _str(self.load_balancer or {}, "healthPolicy") == "AllowAll"


def _address_rank(workload: Workload) -> int:
    """ztunnel's tie-break when several workloads share an address: pods, then HBONE ones."""
    return (2 if "//Pod/" in workload.uid else 0) + (1 if workload.hbone else 0)


class ProxyState:
    """One immutable snapshot of istiod's config, indexed."""

    def __init__(self, config: Obj | None = None) -> None:
        config = config or {}
        self.version = str(config.get("version", ""))
        self.raw = config
        self.workloads: dict[str, Workload] = {}
        for obj in config.get("workloads") or []:
            if isinstance(obj, Mapping):
                workload = Workload.from_obj(dict(obj))
                if workload.uid:
                    self.workloads[workload.uid] = workload
        self.services: list[Service] = [Service.from_obj(dict(obj)) for obj in config.get("services") or []
                                        if isinstance(obj, Mapping)]
        self.policies: list[Obj] = [p for p in config.get("policies") or [] if isinstance(p, dict)]
        self._by_address: dict[tuple[str, str], Workload] = {}
        for workload in self.workloads.values():
            if workload.network_mode == "HostNetwork":
                continue
            for ip in workload.ips:
                key = (workload.network, ip)
                current = self._by_address.get(key)
                if current is None or _address_rank(workload) >= _address_rank(current):
                    self._by_address[key] = workload
        self._local: dict[tuple[WorkloadInfo, str], Workload | None] = {}
        self._by_vip: dict[tuple[str, str], list[Service]] = {}
        self._by_host: dict[str, list[Service]] = {}
        for service in self.services:
            for vip in service.vips:
                self._by_vip.setdefault(vip, []).append(service)
            self._by_host.setdefault(service.hostname, []).append(service)

    # Lookups

    def workload_by_uid(self, uid: str) -> Workload | None:
        return self.workloads.get(uid)

    def workload_by_ip(self, ip: str, network: str = "") -> Workload | None:
        return self._by_address.get((network, ip))

    def service_by_vip(self, ip: str, network: str = "", namespace: str | None = None) -> Service | None:
        """The service with this VIP; of several, the one in `namespace` (the client's) first."""
        return _prefer_namespace(self._by_vip.get((network, ip)), namespace)

    def service_by_hostname(self, hostname: str, namespace: str | None = None) -> Service | None:
        return _prefer_namespace(self._by_host.get(hostname), namespace)

    def find_address(self, ip: str, network: str = "",
                     namespace: str | None = None) -> Workload | Service | None:
        """A workload with this IP, else a service with this VIP."""
        return self.workload_by_ip(ip, network) or self.service_by_vip(ip, network, namespace)

    def find_destination(self, destination: Any) -> Workload | Service | None:
        """A GatewayAddress destination: `network/ip`, or `namespace/hostname` of a service."""
        if not isinstance(destination, str):
            return None
        prefix, name = split_network_address(destination)
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return self.service_by_hostname(name, prefix or None) if name else None
        return self.find_address(name, prefix)

    def find_local(self, info: WorkloadInfo, node: str) -> Workload | None:
        """The workload of a pod we proxy: same name, namespace and service account, on our node."""
        key = (info, node)
        if key not in self._local:
            self._local[key] = next((w for w in self.workloads.values() if w.node == node and w.matches(info)), None)
        return self._local[key]

    def services_for_workload(self, workload: Workload) -> list[Service]:
        """Services the workload is an endpoint of."""
        return [s for s in self.services if workload.uid in s.endpoints]

    def endpoints(self, service: Service) -> Iterable[tuple[Endpoint, Workload]]:
        """The service's usable endpoints with their workloads (health policy applied)."""
        for endpoint in service.endpoints.values():
            workload = self.workloads.get(endpoint.workload_uid)
            if workload is not None and service.accepts_endpoint(endpoint):
                yield endpoint, workload

    def node_local_identities(self, node: str) -> set[Identity]:
        """Identities of HBONE workloads on our node: the certificates worth fetching ahead."""
        return {w.identity for w in self.workloads.values() if w.node == node and w.hbone}

    def dump(self) -> Obj:
        """The state part of `/config_dump`: workloads, services and policies as istiod sent them."""
        return {
            "workloads": [w.raw for _, w in sorted(self.workloads.items())],
            "services": [s.raw for s in sorted(self.services, key=lambda s: (s.hostname, s.namespace))],
            "policies": sorted(self.policies, key=lambda p: (p.get("namespace", ""), p.get("name", ""))),
        }


class Store:
    """The current `ProxyState`, replaced as a whole on every push; never dropped while istiod is
    away (a new stream's first message replaces it)."""

    def __init__(self) -> None:
        self.state = ProxyState()
        self.received = 0
        self._changed = trio.Event()

    @property
    def ready(self) -> bool:
        """A first config arrived (readiness waits for it)."""
        return self.received > 0

    def update(self, config: Obj) -> ProxyState:
        previous = self.state
        self.state = ProxyState(config)
        self.received += 1
        self._changed.set()
        self._changed = trio.Event()
        return previous

    async def wait_for_local(self, info: WorkloadInfo, node: str, timeout: float) -> Workload | None:
        """The local workload for `info`, waiting up to `timeout` for istiod to send it."""
        with trio.move_on_after(timeout):
            while True:
                changed = self._changed
                workload = self.state.find_local(info, node)
                if workload is not None:
                    return workload
                await changed.wait()
        log.warning("timed out waiting for workload '%s' from xds", info)
        return None


def _prefer_namespace(services: list[Service] | None, namespace: str | None) -> Service | None:
    """The first of `services` in `namespace` if there is one, else the first."""
    if not services:
        return None
    return next((s for s in services if s.namespace == namespace), services[0])
