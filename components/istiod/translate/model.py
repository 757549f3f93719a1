"""The translation's input: a snapshot of the cluster's objects, and the lookups every rule needs.

Objects are plain dicts in Kubernetes' JSON shape, exactly as the apiserver serves them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

Obj = dict[str, Any]

# Labels and annotations istiod reads.
DATAPLANE_MODE = "istio.io/dataplane-mode"
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_FOR = "istio.io/waypoint-for"
GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name"
GATEWAY_MANAGED = "gateway.istio.io/managed"
SIDECAR_STATUS = "sidecar.istio.io/status"
REDIRECTION = "ambient.istio.io/redirection"
TUNNEL = "networking.istio.io/tunnel"
DRY_RUN = "istio.io/dry-run"
WORKLOAD_NAME = "service.istio.io/workload-name"

WAYPOINT_CLASS = "istio-waypoint"
# Seed 001's early form: class `istio-mesh`, a waypoint for the workloads of one service account.
LEGACY_WAYPOINT_CLASS = "istio-mesh"
SERVICE_ACCOUNT_ANNOTATION = "istio.io/service-account"
MESH_CONTROLLER = "istio.io-mesh-controller"
HBONE_PORT = 15008


@dataclass(frozen=True)
class Snapshot:
    """Everything the translation reads. Lists may come in any order; the output is sorted."""

    namespaces: tuple[Obj, ...] = ()
    pods: tuple[Obj, ...] = ()
    services: tuple[Obj, ...] = ()
    endpoints: tuple[Obj, ...] = ()
    authorization_policies: tuple[Obj, ...] = ()
    peer_authentications: tuple[Obj, ...] = ()
    gateways: tuple[Obj, ...] = ()
    virtual_services: tuple[Obj, ...] = ()
    destination_rules: tuple[Obj, ...] = ()
    http_routes: tuple[Obj, ...] = ()
    istio_gateways: tuple[Obj, ...] = ()      # networking.istio.io Gateways (ingress)
    root_namespace: str = "istio-system"
    cluster_id: str = "Kubernetes"
    trust_domain: str = "cluster.local"
    network: str = ""
    domain_suffix: str = "cluster.local"
    # istiod's AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY (off upstream); our ztunnel only logs
    # dry-run policies, so it is on here.
    dry_run_policies: bool = True

    @classmethod
    def from_objects(cls, objects: Iterable[Obj], **options: Any) -> Snapshot:
        """A snapshot from a mixed list of objects, sorted by their `kind`; other kinds are ignored."""
        fields: dict[str, list[Obj]] = defaultdict(list)
        for obj in objects:
            group = obj.get("apiVersion", "").rpartition("/")[0]
            slot = _FIELD_OF_KIND.get(f"{group}/{obj.get('kind', '')}") or _FIELD_OF_KIND.get(obj.get("kind", ""))
            if slot is not None:
                fields[slot].append(obj)
        return cls(**{k: tuple(v) for k, v in fields.items()}, **options)


_FIELD_OF_KIND = {
    "Namespace": "namespaces", "Pod": "pods", "Service": "services", "Endpoints": "endpoints",
    "AuthorizationPolicy": "authorization_policies", "PeerAuthentication": "peer_authentications",
    "Gateway": "gateways", "VirtualService": "virtual_services", "DestinationRule": "destination_rules",
    "HTTPRoute": "http_routes", "networking.istio.io/Gateway": "istio_gateways",
}


def metadata(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    return metadata(obj).get("name", "")


def namespace_of(obj: Obj) -> str:
    return metadata(obj).get("namespace", "")


def labels_of(obj: Obj) -> dict[str, str]:
    return metadata(obj).get("labels") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return metadata(obj).get("annotations") or {}


def spec_of(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def key_of(obj: Obj) -> str:
    """`namespace/name`, istiod's resource name."""
    return f"{namespace_of(obj)}/{name_of(obj)}"


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A `matchLabels` selector matches when it is a subset of the labels (empty matches all)."""
    return all(labels.get(k) == v for k, v in selector.items())


def matches_label_selector(selector: Obj, labels: Mapping[str, str]) -> bool:
    """A full `metav1.LabelSelector` (matchLabels and matchExpressions)."""
    if not selects(selector.get("matchLabels") or {}, labels):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class Index:
    """The snapshot's objects by namespace and name."""

    snapshot: Snapshot
    namespaces: dict[str, Obj] = field(init=False)
    services: dict[tuple[str, str], Obj] = field(init=False)
    services_by_namespace: dict[str, list[Obj]] = field(init=False)
    endpoints: dict[tuple[str, str], Obj] = field(init=False)
    gateways: dict[tuple[str, str], Obj] = field(init=False)

    def __post_init__(self) -> None:
        s = self.snapshot
        self.namespaces = {name_of(n): n for n in s.namespaces}
        self.services = {(namespace_of(o), name_of(o)): o for o in s.services}
        self.services_by_namespace = defaultdict(list)
        for o in s.services:
            self.services_by_namespace[namespace_of(o)].append(o)
        self.endpoints = {(namespace_of(o), name_of(o)): o for o in s.endpoints}
        self.gateways = {(namespace_of(o), name_of(o)): o for o in s.gateways}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = self.namespaces.get(namespace)
        return labels_of(ns) if ns is not None else {}

    def hostname(self, service_name: str, namespace: str) -> str:
        return f"{service_name}.{namespace}.svc.{self.snapshot.domain_suffix}"

    def network_address(self, ip: str) -> str:
        """ztunnel's NetworkAddress string, `<network>/<ip>` (`/<ip>` on the default network)."""
        return f"{self.snapshot.network}/{ip}"
