"""`ambient graph`: the cluster as a picture (SVG, written directly; any browser opens it).

One column per node with its pods (name, namespace, IP), each marked `ambient` when istio-cni has
captured it (the `ambient.istio.io/redirection: enabled` annotation), `not in mesh` otherwise, and
`ztunnel`, `waypoint` or `hostNetwork` for what they are; below, the Services with lines to the pods
they select and the waypoint they use; then the waypoints and who uses them. Every pod is a
`<g class="pod">` carrying `data-name`, `data-namespace`, `data-node`, `data-ip` and `data-mesh`, so
tools can read the picture too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from components.common.apiclient import ApiClient

REDIRECTION = "ambient.istio.io/redirection"
DATAPLANE_MODE = "istio.io/dataplane-mode"
USE_WAYPOINT = "istio.io/use-waypoint"
WAYPOINT_FOR = "istio.io/waypoint-for"
WAYPOINT_CLASSES = {"istio-waypoint", "istio-mesh"}
GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name"

COLUMN, GAP, MARGIN, POD_HEIGHT, HEADER, SERVICE_WIDTH, SERVICE_HEIGHT = 330, 24, 20, 46, 52, 330, 74
CHAR_WIDTH = 7.0   # of a 12 px bold sans-serif glyph, roughly: how much text fits in a box
COLORS = {"ambient": "#2e7d32", "not in mesh": "#757575", "ztunnel": "#6a1b9a", "waypoint": "#ef6c00",
          "hostNetwork": "#1565c0"}
FILLS = {"ambient": "#e8f5e9", "not in mesh": "#fafafa", "ztunnel": "#f3e5f5", "waypoint": "#fff3e0",
         "hostNetwork": "#e3f2fd"}


@dataclass(frozen=True)
class Node:
    name: str
    ip: str


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    node: str
    ip: str
    mark: str          # ambient | not in mesh | ztunnel | waypoint | hostNetwork
    in_mesh: bool
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    cluster_ip: str
    ports: str
    selector: dict[str, str] = field(compare=False, hash=False)
    waypoint: str      # the waypoint it uses ("" for none), from its label or its namespace's
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Waypoint:
    name: str
    namespace: str
    traffic: str       # the istio.io/waypoint-for label: service | workload | all | none
    used_by: tuple[str, ...]


@dataclass
class Snapshot:
    cluster: str
    nodes: list[Node]
    pods: list[Pod]
    services: list[Service]
    waypoints: list[Waypoint]
    mesh_namespaces: list[str]


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def pod_mark(pod: dict[str, Any]) -> str:
    meta, spec = pod["metadata"], pod.get("spec", {})
    labels = _labels(pod)
    if GATEWAY_NAME in labels:
        return "waypoint"
    if labels.get("app") == "ztunnel" and meta.get("namespace") == "istio-system":
        return "ztunnel"
    if spec.get("hostNetwork"):
        return "hostNetwork"
    return "ambient" if (meta.get("annotations") or {}).get(REDIRECTION) == "enabled" else "not in mesh"


def build(cluster: str, nodes: list[dict[str, Any]], pods: list[dict[str, Any]], services: list[dict[str, Any]],
          namespaces: list[dict[str, Any]], gateways: list[dict[str, Any]]) -> Snapshot:
    """The picture's content from the API objects (pure, for tests)."""
    ns_waypoint = {ns["metadata"]["name"]: _labels(ns).get(USE_WAYPOINT, "") for ns in namespaces}
    snapshot = Snapshot(cluster, [], [], [], [], sorted(
        ns["metadata"]["name"] for ns in namespaces if _labels(ns).get(DATAPLANE_MODE) == "ambient"))
    for node in nodes:
        addresses = {a.get("type"): a.get("address") for a in node.get("status", {}).get("addresses") or []}
        snapshot.nodes.append(Node(node["metadata"]["name"], addresses.get("InternalIP", "")))
    for pod in pods:
        meta = pod["metadata"]
        mark = pod_mark(pod)
        snapshot.pods.append(Pod(meta["name"], meta["namespace"], pod.get("spec", {}).get("nodeName", ""),
                                 pod.get("status", {}).get("podIP", ""), mark, mark == "ambient", _labels(pod)))
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec", {})
        ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
        # A waypoint's own Service is never sent through a waypoint.
        waypoint = "" if GATEWAY_NAME in _labels(svc) else \
            _labels(svc).get(USE_WAYPOINT) or ns_waypoint.get(meta["namespace"], "")
        snapshot.services.append(Service(meta["name"], meta["namespace"], spec.get("clusterIP", ""), ports,
                                         spec.get("selector") or {}, "" if waypoint == "none" else waypoint,
                                         _labels(svc)))
    for gateway in gateways:
        meta = gateway["metadata"]
        if gateway.get("spec", {}).get("gatewayClassName") not in WAYPOINT_CLASSES:
            continue
        name, namespace = meta["name"], meta["namespace"]
        used_by = [f"namespace {ns}" for ns, wp in sorted(ns_waypoint.items()) if ns == namespace and wp == name]
        used_by += [f"service {s.name}" for s in snapshot.services
                    if s.namespace == namespace and s.labels.get(USE_WAYPOINT) == name]
        snapshot.waypoints.append(Waypoint(name, namespace, _labels(gateway).get(WAYPOINT_FOR, "service"),
                                           tuple(used_by)))
    return snapshot


async def collect(api: ApiClient, cluster: str) -> Snapshot:
    """Read the cluster's objects through its apiserver."""
    async def items(api_version: str, kind: str) -> list[dict[str, Any]]:
        return (await api.list(api_version, kind))["items"]

    return build(cluster, await items("v1", "Node"), await items("v1", "Pod"), await items("v1", "Service"),
                 await items("v1", "Namespace"), await items("gateway.networking.k8s.io/v1", "Gateway"))


def _text(x: float, y: float, text: str, *, size: int = 12, weight: str = "normal", color: str = "#212121",
          anchor: str = "start") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" fill="{color}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _fit(text: str, width: float) -> str:
    chars = int(width / CHAR_WIDTH)
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _selects(service: Service, pod: Pod) -> bool:
    return bool(service.selector) and service.namespace == pod.namespace and \
        all(pod.labels.get(k) == v for k, v in service.selector.items())


def render_svg(snapshot: Snapshot) -> str:
    """The snapshot as a standalone SVG document."""
    node_names = [n.name for n in snapshot.nodes]
    by_node: dict[str, list[Pod]] = {name: [] for name in node_names}
    for pod in sorted(snapshot.pods, key=lambda p: (p.namespace, p.name)):
        by_node.setdefault(pod.node or "(unscheduled)", []).append(pod)
    columns = list(by_node)
    tallest = max((len(pods) for pods in by_node.values()), default=0)
    nodes_bottom = MARGIN + 40 + HEADER + tallest * POD_HEIGHT + 10
    per_row = max(1, len(columns) * (COLUMN + GAP) // (SERVICE_WIDTH + GAP))
    service_rows = (len(snapshot.services) + per_row - 1) // per_row
    services_top = nodes_bottom + 70
    waypoints_top = services_top + service_rows * (SERVICE_HEIGHT + GAP) + 20
    width = MARGIN * 2 + max(len(columns) * (COLUMN + GAP) - GAP, per_row * (SERVICE_WIDTH + GAP) - GAP, 700)
    height = waypoints_top + 40 + 18 * (len(snapshot.waypoints) + 1) + 70
    body: list[str] = []
    mesh = ", ".join(snapshot.mesh_namespaces) or "none"
    body.append(_text(MARGIN, MARGIN + 16, f"cluster {snapshot.cluster}", size=18, weight="bold"))
    body.append(_text(MARGIN, MARGIN + 34, f"namespaces in the ambient mesh: {mesh}", size=12, color="#424242"))
    for i, column in enumerate(columns):
        x = MARGIN + i * (COLUMN + GAP)
        top = MARGIN + 40
        node = next((n for n in snapshot.nodes if n.name == column), Node(column, ""))
        body.append(f'<g class="node" data-name={quoteattr(node.name)} data-ip={quoteattr(node.ip)}>')
        body.append(f'<rect x="{x}" y="{top}" width="{COLUMN}" height="{nodes_bottom - top}" rx="8" '
                    f'fill="#eceff1" stroke="#455a64" stroke-width="1.5"/>')
        body.append(_text(x + 10, top + 22, node.name, size=15, weight="bold"))
        body.append(_text(x + 10, top + 40, f"node {node.ip}", size=11, color="#546e7a"))
        body.append("</g>")
        for j, pod in enumerate(by_node[column]):
            y = top + HEADER + j * POD_HEIGHT
            body.append(f'<g class="pod" data-name={quoteattr(pod.name)} data-namespace={quoteattr(pod.namespace)} '
                        f'data-node={quoteattr(pod.node)} data-ip={quoteattr(pod.ip)} '
                        f'data-mesh={quoteattr("ambient" if pod.in_mesh else "none")} data-mark={quoteattr(pod.mark)}>')
            body.append(f'<rect x="{x + 8}" y="{y}" width="{COLUMN - 16}" height="{POD_HEIGHT - 6}" rx="5" '
                        f'fill="{FILLS[pod.mark]}" stroke="{COLORS[pod.mark]}" '
                        f'stroke-width="{2 if pod.in_mesh else 1}"/>')
            body.append(f"<title>{escape(f'{pod.namespace}/{pod.name} {pod.ip} ({pod.mark})')}</title>")
            body.append(_text(x + 16, y + 16, _fit(pod.name, COLUMN - 130), size=12, weight="bold"))
            body.append(_text(x + 16, y + 32, f"{pod.namespace} · {pod.ip or 'no IP yet'}", size=11, color="#424242"))
            body.append(f'<rect x="{x + COLUMN - 102}" y="{y + 9}" width="86" height="20" rx="10" '
                        f'fill="{COLORS[pod.mark]}"/>')
            body.append(_text(x + COLUMN - 59, y + 23, pod.mark, size=10, weight="bold", color="#ffffff",
                              anchor="middle"))
            body.append("</g>")
    body.append(_text(MARGIN, services_top - 14, "Services", size=15, weight="bold"))
    for k, service in enumerate(sorted(snapshot.services, key=lambda s: (s.namespace, s.name))):
        x = MARGIN + (k % per_row) * (SERVICE_WIDTH + GAP)
        y = services_top + (k // per_row) * (SERVICE_HEIGHT + GAP)
        body.append(f'<g class="service" data-name={quoteattr(service.name)} '
                    f'data-namespace={quoteattr(service.namespace)} data-waypoint={quoteattr(service.waypoint)}>')
        stroke = COLORS["waypoint"] if service.waypoint else "#0277bd"
        body.append(f'<rect x="{x}" y="{y}" width="{SERVICE_WIDTH}" height="{SERVICE_HEIGHT}" rx="6" '
                    f'fill="#e1f5fe" stroke="{stroke}" stroke-width="1.5"/>')
        body.append(_text(x + 8, y + 16, f"{service.name}.{service.namespace}", size=12, weight="bold"))
        body.append(_text(x + 8, y + 32, _fit(f"{service.cluster_ip or 'None'}  {service.ports}", SERVICE_WIDTH),
                          size=11, color="#424242"))
        backends = [p.name for p in snapshot.pods if _selects(service, p)]
        body.append(_text(x + 8, y + 48, _fit("→ " + (", ".join(backends) or "no pods"), SERVICE_WIDTH), size=11,
                          color="#0277bd"))
        if service.waypoint:
            body.append(_text(x + 8, y + 64, f"via waypoint {service.waypoint}", size=11, weight="bold",
                              color=COLORS["waypoint"]))
        body.append("</g>")
    body.append(_text(MARGIN, waypoints_top + 16, "Waypoints", size=15, weight="bold"))
    if not snapshot.waypoints:
        body.append(_text(MARGIN, waypoints_top + 36, "none", size=12, color="#757575"))
    for k, waypoint in enumerate(snapshot.waypoints):
        used = ", ".join(waypoint.used_by) or "nothing uses it yet"
        body.append(f'<g class="waypoint" data-name={quoteattr(waypoint.name)} '
                    f'data-namespace={quoteattr(waypoint.namespace)}>')
        body.append(_text(MARGIN, waypoints_top + 36 + 18 * k,
                          f"{waypoint.namespace}/{waypoint.name} (for {waypoint.traffic} traffic): used by {used}",
                          size=12, color=COLORS["waypoint"]))
        body.append("</g>")
    legend_y = height - 30
    for k, mark in enumerate(COLORS):
        x = MARGIN + k * 130
        body.append(f'<rect x="{x}" y="{legend_y - 12}" width="16" height="16" rx="3" fill="{COLORS[mark]}"/>')
        body.append(_text(x + 22, legend_y + 1, mark, size=11))
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f"<title>{escape(f'cluster {snapshot.cluster}')}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        *body, "</svg>", ""])
