"""Kubernetes objects for the istiod translation tests, and ztunnel's RBAC evaluation (so tests can
state what a translated policy does to a connection, not only what it looks like)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


def namespace(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(name: str, ns: str = "default", ip: str | None = "10.244.1.5", *, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, node: str = "worker", sa: str | None = "default",
        phase: str = "Running", ready: bool = True, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": labels or {}}
    if annotations:
        metadata["annotations"] = annotations
    body: Obj = {"nodeName": node, "containers": [{"name": "app", "ports": ports or []}], **spec}
    if sa is not None:
        body["serviceAccountName"] = sa
    status: Obj = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body, "status": status}


def service(name: str, ns: str = "default", cluster_ip: str | None = "10.96.0.20", *,
            selector: dict[str, str] | None = None, ports: list[Obj] | None = None,
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {"ports": ports if ports is not None else [{"port": 80, "targetPort": 8080}], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    if selector is not None:
        body["selector"] = selector
    metadata: Obj = {"name": name, "namespace": ns, "labels": labels or {}}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": body}


def waypoint_gateway(name: str = "waypoint", ns: str = "default", *, waypoint_for: str | None = None,
                     allowed: Obj | None = None, addresses: list[Obj] | None = None) -> Obj:
    listener: Obj = {"name": "mesh", "port": 15008, "protocol": "HBONE"}
    if allowed is not None:
        listener["allowedRoutes"] = {"namespaces": allowed}
    gateway: Obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"istio.io/waypoint-for": waypoint_for} if waypoint_for else {}},
                    "spec": {"gatewayClassName": "istio-waypoint", "listeners": [listener]}}
    if addresses is not None:
        gateway["status"] = {"addresses": addresses}
    return gateway


def authz(name: str, ns: str = "default", spec: Obj | None = None, **metadata: Any) -> Obj:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns, **metadata}, "spec": spec if spec is not None else {}}


def peer_auth(name: str, ns: str = "default", spec: Obj | None = None, created: str = "2026-01-01T00:00:00Z") -> Obj:
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec or {}}


PRESENCE = {"Presence": []}


@dataclass(frozen=True)
class Conn:
    """ztunnel's RBAC `Connection`: identity is a SPIFFE id, or None for plaintext (15006)."""

    src: str = "10.244.1.9"
    dst_port: int = 8080
    identity: str | None = "spiffe://cluster.local/ns/default/sa/sleep"
    dst: str = "10.244.1.5"


def _string_match(m: Obj, value: str) -> bool:
    (kind, arg), = m.items()
    return {"Exact": lambda: value == arg, "Prefix": lambda: value.startswith(arg),
            "Suffix": lambda: value.endswith(arg), "Presence": lambda: value != ""}[kind]()


def _field(positive: list[Any], negative: list[Any], pred: Any) -> bool:
    return (not positive or any(pred(v) for v in positive)) and not any(pred(v) for v in negative)


def _rbac_match(m: Obj, conn: Conn) -> bool:
    ident = conn.identity or ""
    principal = ident.removeprefix("spiffe://") if ident.startswith("spiffe://") else None
    parts = principal.split("/") if principal else []
    ns, sa = (parts[2], parts[4]) if len(parts) == 5 else ("", "")
    in_net = lambda ip: lambda net: ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)  # noqa: E731
    return (_field(m.get("destinationIps", []), m.get("notDestinationIps", []), in_net(conn.dst))
            and _field(m.get("sourceIps", []), m.get("notSourceIps", []), in_net(conn.src))
            and _field(m.get("destinationPorts", []), m.get("notDestinationPorts", []), lambda p: p == conn.dst_port)
            and _field(m.get("serviceAccounts", []), m.get("notServiceAccounts", []),
                       lambda s: conn.identity is not None and (s["namespace"], s["serviceAccount"]) == (ns, sa))
            and _field(m.get("principals", []), m.get("notPrincipals", []),
                       lambda s: principal is not None and _string_match(s, principal))
            and _field(m.get("namespaces", []), m.get("notNamespaces", []), lambda s: _string_match(s, ns)))


def policy_matches(policy: Obj, conn: Conn) -> bool:
    """ztunnel's `Authorization::matches`: rules ORed, clauses ANDed, matches ORed; an empty match
    is skipped, an empty clause list matches, no rules never matches."""
    return any(all(any(m and _rbac_match(m, conn) for m in clause) if clause else True for clause in rule)
               for rule in policy["rules"])


def allowed(policies: list[Obj], conn: Conn) -> bool:
    """ztunnel's `assert_rbac` over the policies that apply to the destination (dry-run ones only log)."""
    enforced = [p for p in policies if not p["dryRun"]]
    if any(p["action"] == "Deny" and policy_matches(p, conn) for p in enforced):
        return False
    allows = [p for p in enforced if p["action"] == "Allow"]
    return not allows or any(policy_matches(p, conn) for p in allows)
