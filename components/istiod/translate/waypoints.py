"""Waypoints (Gateways of class `istio-waypoint`) and which services and pods send through them.

Seed 001's early form (class `istio-mesh`, annotation `istio.io/service-account`) is a waypoint for
the workloads running as that service account: their pods' traffic and the traffic of Services
whose endpoints all run as it go through it, with no `use-waypoint` label, as early ambient did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from components.istiod.translate.model import (
    GATEWAY_MANAGED, GATEWAY_NAME, HBONE_PORT, LEGACY_WAYPOINT_CLASS, MESH_CONTROLLER,
    SERVICE_ACCOUNT_ANNOTATION, USE_WAYPOINT, USE_WAYPOINT_NAMESPACE, WAYPOINT_CLASS, WAYPOINT_FOR,
    Index, Obj, annotations_of, labels_of, matches_label_selector, name_of, namespace_of, spec_of,
)

EAST_WEST_CONTROLLER = "istio.io-eastwest-controller"
SERVICE_TRAFFIC = ("service", "all")
WORKLOAD_TRAFFIC = ("workload", "all")


@dataclass(frozen=True)
class Waypoint:
    namespace: str
    name: str
    traffic_type: str            # `istio.io/waypoint-for`: service (default), workload, all, none
    address: Obj                 # ztunnel's GatewayAddress
    allowed_from: str            # the HBONE listener's allowedRoutes.namespaces.from
    allowed_selector: Obj | None
    service_account: str | None = None   # the early form's: the workloads it is for

    def accepts(self, namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        """Whether objects of `namespace` may use this waypoint (Gateway API allowedRoutes)."""
        if self.allowed_from == "All":
            return True
        if self.allowed_from == "Selector":
            return matches_label_selector(self.allowed_selector or {}, namespace_labels)
        return namespace == self.namespace


@dataclass(frozen=True)
class Waypoints:
    ready: dict[tuple[str, str], Waypoint]     # usable waypoints by (namespace, name)
    gateways: frozenset[tuple[str, str]]       # every waypoint Gateway, ready or not
    own_services: frozenset[tuple[str, str]]   # the Services of those Gateways' proxies
    by_service_account: dict[tuple[str, str], Waypoint] = field(default_factory=dict)  # early form

    def for_service_account(self, namespace: str, service_account: str) -> Waypoint | None:
        return self.by_service_account.get((namespace, service_account))


def collect_waypoints(index: Index) -> Waypoints:
    """The snapshot's waypoints.

    A waypoint is usable once it has an address, as istiod waits for the Gateway's status address
    (set when its deployment is ready). The address is the ClusterIP of the Service the waypoint
    controller creates under the Gateway's name, else a status address (hostname preferred).
    """
    gateways = [g for g in index.snapshot.gateways
                if spec_of(g).get("gatewayClassName") in (WAYPOINT_CLASS, LEGACY_WAYPOINT_CLASS)]
    ready: dict[tuple[str, str], Waypoint] = {}
    by_service_account: dict[tuple[str, str], Waypoint] = {}
    for gateway in gateways:
        address = _address(gateway, index)
        if address is None:
            continue
        allowed = _hbone_allowed_namespaces(gateway)
        ns, name = namespace_of(gateway), name_of(gateway)
        if spec_of(gateway).get("gatewayClassName") == LEGACY_WAYPOINT_CLASS:
            account = annotations_of(gateway).get(SERVICE_ACCOUNT_ANNOTATION) or name
            by_service_account[(ns, account)] = Waypoint(
                namespace=ns, name=name, traffic_type="all", address=address, allowed_from="Same",
                allowed_selector=None, service_account=account)
            continue
        ready[(ns, name)] = Waypoint(
            namespace=ns, name=name, traffic_type=labels_of(gateway).get(WAYPOINT_FOR, "service"),
            address=address, allowed_from=allowed.get("from") or "Same",
            allowed_selector=allowed.get("selector"))
    return Waypoints(ready, frozenset((namespace_of(g), name_of(g)) for g in gateways),
                     frozenset((namespace_of(g), proxy_name(g)) for g in gateways), by_service_account)


def proxy_name(gateway: Obj) -> str:
    """The name of a waypoint's Deployment and Service: the Gateway's, or for the early form
    `<service account>-waypoint-proxy` (seed 001 execs into deploy/bookinfo-productpage-waypoint-proxy)."""
    if spec_of(gateway).get("gatewayClassName") == LEGACY_WAYPOINT_CLASS:
        account = annotations_of(gateway).get(SERVICE_ACCOUNT_ANNOTATION) or name_of(gateway)
        return f"{account}-waypoint-proxy"
    return name_of(gateway)


def _address(gateway: Obj, index: Index) -> Obj | None:
    ns = namespace_of(gateway)
    service = index.services.get((ns, proxy_name(gateway)))
    cluster_ip = spec_of(service).get("clusterIP", "") if service is not None else ""
    if cluster_ip and cluster_ip != "None":
        return gateway_address(index.network_address(cluster_ip))
    addresses = (gateway.get("status") or {}).get("addresses") or []
    for kind, destination in (("Hostname", lambda v: f"{ns}/{v}"), ("IPAddress", index.network_address)):
        for addr in addresses:
            if addr.get("type", "IPAddress") == kind and addr.get("value"):
                return gateway_address(destination(addr["value"]))
    return None


def gateway_address(destination: str) -> Obj:
    """ztunnel's GatewayAddress: `network/ip` or `namespace/hostname`, and the HBONE port."""
    return {"destination": destination, "hboneMtlsPort": HBONE_PORT}


def _hbone_allowed_namespaces(gateway: Obj) -> Obj:
    for listener in spec_of(gateway).get("listeners") or []:
        if listener.get("protocol") == "HBONE" and listener.get("port") == HBONE_PORT:
            return (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    return {}


def _use_waypoint(labels: Mapping[str, str], default_namespace: str) -> tuple[tuple[str, str] | None, bool]:
    """(waypoint reference, opted out) from `istio.io/use-waypoint[-namespace]` labels."""
    value = labels.get(USE_WAYPOINT)
    if value is None:
        return None, False
    if value == "none":
        return None, True
    return (labels.get(USE_WAYPOINT_NAMESPACE, default_namespace), value), False


def _target_waypoint(obj: Obj, index: Index, waypoints: Waypoints) -> Waypoint | None:
    """The object's own label wins over its namespace's, `none` opts out, and a named waypoint
    that is not ready means no waypoint (no fallback to the namespace's)."""
    ns = namespace_of(obj)
    ns_labels = index.namespace_labels(ns)
    ref, opted_out = _use_waypoint(labels_of(obj), ns)
    if opted_out:
        return None
    if ref is None:
        ref, _ = _use_waypoint(ns_labels, ns)
    waypoint = waypoints.ready.get(ref) if ref is not None else None
    if waypoint is None or not waypoint.accepts(ns, ns_labels):
        return None
    return waypoint


def service_waypoint(service: Obj, index: Index, waypoints: Waypoints) -> Waypoint | None:
    """The waypoint for traffic addressed to this Service, if it takes service traffic.

    A waypoint's (or east-west gateway's) own Service never has one; besides istiod's managed-by
    label, the Service of a waypoint Gateway's proxy counts as that waypoint's own.
    """
    if labels_of(service).get(GATEWAY_MANAGED) in (MESH_CONTROLLER, EAST_WEST_CONTROLLER):
        return None
    if (namespace_of(service), name_of(service)) in waypoints.own_services:
        return None
    waypoint = _target_waypoint(service, index, waypoints)
    return waypoint if waypoint is not None and waypoint.traffic_type in SERVICE_TRAFFIC else None


def workload_waypoint(pod: Obj, index: Index, waypoints: Waypoints) -> Waypoint | None:
    """The waypoint for traffic addressed to this pod's IP, if it takes workload traffic.

    A waypoint's own pods (label `gateway.networking.k8s.io/gateway-name`) never have one.
    """
    instance_of = labels_of(pod).get(GATEWAY_NAME)
    if instance_of is not None and (namespace_of(pod), instance_of) in waypoints.gateways:
        return None
    waypoint = _target_waypoint(pod, index, waypoints)
    if waypoint is not None and waypoint.traffic_type in WORKLOAD_TRAFFIC:
        return waypoint
    return waypoints.for_service_account(namespace_of(pod), spec_of(pod).get("serviceAccountName") or "default")


def legacy_service_waypoint(service: Obj, endpoint_accounts: set[str], waypoints: Waypoints) -> Waypoint | None:
    """The early form's waypoint for a Service whose endpoints all run as its service account."""
    if len(endpoint_accounts) != 1 or (namespace_of(service), name_of(service)) in waypoints.own_services:
        return None
    return waypoints.for_service_account(namespace_of(service), next(iter(endpoint_accounts)))

