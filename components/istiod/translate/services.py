"""Kubernetes Services as ztunnel Services, and which pods are their endpoints.

As istiod does, endpoints come from the Service's selector matched against pods (plus pods an
Endpoints object names for a Service without a selector), not from the Endpoints controller's
ready lists: a pod that is not ready is still an endpoint, with status Unhealthy.
"""

from __future__ import annotations

from components.istiod.translate.model import (
    Index, Obj, annotations_of, labels_of, name_of, namespace_of, selects, spec_of,
)
from components.istiod.translate.waypoints import Waypoints, service_waypoint

TRAFFIC_DISTRIBUTION = "networking.istio.io/traffic-distribution"
_PREFER_ZONE = ("Network", "Region", "Zone")
_PREFER_NODE = ("Network", "Region", "Zone", "Subzone", "Node")
_FIELD_DISTRIBUTIONS = {"PreferClose": _PREFER_ZONE, "PreferSameZone": _PREFER_ZONE, "PreferSameNode": _PREFER_NODE}
_ANNOTATION_DISTRIBUTIONS = {k.lower(): v for k, v in _FIELD_DISTRIBUTIONS.items()}


def is_mesh_service(service: Obj) -> bool:
    """ExternalName services are left to DNS; every other Service, headless included, is sent."""
    return spec_of(service).get("type") != "ExternalName"


def build_service(service: Obj, index: Index, waypoints: Waypoints) -> Obj | None:
    """The ztunnel Service, with no endpoints yet (see `endpoint`)."""
    if not is_mesh_service(service):
        return None
    spec = spec_of(service)
    ns, name = namespace_of(service), name_of(service)
    result: Obj = {
        "name": name, "namespace": ns, "hostname": index.hostname(name, ns),
        "vips": [index.network_address(ip) for ip in cluster_ips(service)],
        "ports": {port: target for port, target, _ in service_ports(service)},
        "endpoints": {},
        # istiod sets SANs only from a ServiceEntry's subjectAltNames: for a Kubernetes Service
        # ztunnel verifies the chosen endpoint's own identity.
        "subjectAltNames": [],
    }
    waypoint = service_waypoint(service, index, waypoints)
    if waypoint is not None:
        result["waypoint"] = dict(waypoint.address)
    load_balancer = _load_balancer(service, annotations_of(index.namespaces.get(ns) or {}))
    if load_balancer is not None:
        result["loadBalancer"] = load_balancer
    families = spec.get("ipFamilies") or []
    if families:
        result["ipFamilies"] = "Dual" if len(families) == 2 else families[0]
    result["canonical"] = True
    return result


def cluster_ips(service: Obj) -> list[str]:
    spec = spec_of(service)
    ips = spec.get("clusterIPs") or [spec.get("clusterIP", "")]
    return [ip for ip in ips if ip and ip != "None"]


def service_ports(service: Obj) -> list[tuple[int, int, str]]:
    """(port, numeric target port, target port name) per service port. A named target port has
    target 0, ztunnel's "resolve per endpoint"; an unset one defaults to the port, as Kubernetes
    defaults it."""
    result = []
    for p in spec_of(service).get("ports") or []:
        port = int(p["port"])
        target = p.get("targetPort", port)
        if isinstance(target, str):
            result.append((port, 0, target))
        else:
            result.append((port, int(target), ""))
    return result


def endpoint(workload: Obj, pod: Obj, service: Obj) -> Obj:
    """The workload as an endpoint of the Service, its named target ports resolved from the pod's
    container ports (a port the pod does not declare is left out, as istiod leaves it out)."""
    ports: dict[int, int] = {}
    for port, target, target_name in service_ports(service):
        if target_name:
            resolved = container_port(pod, target_name)
            if resolved is None:
                continue
            target = resolved
        ports[port] = target
    return {"workloadUid": workload["uid"], "port": ports, "status": workload["status"]}


def container_port(pod: Obj, name: str) -> int | None:
    """A named TCP container port, also of native sidecars (restartPolicy Always init containers)."""
    spec = spec_of(pod)
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in containers:
        for p in container.get("ports") or []:
            if p.get("name") == name and p.get("protocol", "TCP") == "TCP":
                return int(p["containerPort"])
    return None


def pod_services(pod: Obj, index: Index) -> list[Obj]:
    """The Services this pod is an endpoint of: those of its namespace whose non-empty selector
    matches it, and those whose Endpoints name it (Services without a selector)."""
    ns, labels = namespace_of(pod), labels_of(pod)
    found = [s for s in index.services_by_namespace.get(ns, [])
             if is_mesh_service(s) and spec_of(s).get("selector") and selects(spec_of(s)["selector"], labels)]
    seen = {name_of(s) for s in found}
    for (eps_ns, eps_name), eps in index.endpoints.items():
        service = index.services.get((eps_ns, eps_name))
        if eps_ns != ns or eps_name in seen or service is None or not is_mesh_service(service):
            continue
        if _names_pod(eps, pod):
            found.append(service)
            seen.add(eps_name)
    return found


def _names_pod(endpoints: Obj, pod: Obj) -> bool:
    uid = (pod.get("metadata") or {}).get("uid")
    for subset in endpoints.get("subsets") or []:
        for address in (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or []):
            ref = address.get("targetRef") or {}
            if (ref.get("kind") == "Pod" and ref.get("name") == name_of(pod)
                    and ref.get("namespace", namespace_of(endpoints)) == namespace_of(pod)
                    and (not uid or not ref.get("uid") or ref["uid"] == uid)):
                return True
    return False


def _load_balancer(service: Obj, namespace_annotations: dict[str, str]) -> Obj | None:
    """istiod's LoadBalancing: internalTrafficPolicy Local keeps traffic on the node; otherwise
    trafficDistribution (field, then service, then namespace annotation) prefers close endpoints;
    publishNotReadyAddresses lets unhealthy endpoints take traffic."""
    spec = spec_of(service)
    if spec.get("internalTrafficPolicy") == "Local":
        preferences, mode = ["Node"], "Strict"
    else:
        preferences = _traffic_distribution(spec.get("trafficDistribution"), annotations_of(service),
                                            namespace_annotations)
        mode = "Failover" if preferences else "Standard"
    any_health = bool(spec.get("publishNotReadyAddresses"))
    if not preferences and not any_health:
        return None
    return {"routingPreferences": preferences, "mode": mode,
            "healthPolicy": "AllowAll" if any_health else "OnlyHealthy"}


def _traffic_distribution(field: str | None, service_annotations: dict[str, str],
                          namespace_annotations: dict[str, str]) -> list[str]:
    """The routing preferences of a traffic distribution: an unknown annotation value means Any."""
    if field in _FIELD_DISTRIBUTIONS:
        return list(_FIELD_DISTRIBUTIONS[field])
    for source in (service_annotations, namespace_annotations):
        value = source.get(TRAFFIC_DISTRIBUTION, "").lower()
        if value:
            return list(_ANNOTATION_DISTRIBUTIONS.get(value, ()))
    return []
