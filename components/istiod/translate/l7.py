"""What waypoints need beyond ztunnel's config: their AuthorizationPolicies and HTTP routes.

istiod gives Envoy RBAC filters and route tables; here the same decisions arrive pre-resolved in
one JSON section (`config["l7"]`) that every waypoint reads:

- `policies`: AuthorizationPolicies attached with `targetRef(s)` (Gateway, GatewayClass in the root
  namespace, Service), their rules as written; and, for seed 001's early waypoints, the `selector`
  policies of the workloads they front (early ambient enforced those at the waypoint).
- `routes`: per Service, the rules of the HTTPRoute whose parentRef is that Service, else of the
  VirtualServices bound to the mesh for its hostname, each backend resolved to its Service and,
  for a DestinationRule subset, to the workloads the subset's labels select.
- `gateways` and `gatewayRoutes`: Istio Gateways (networking.istio.io, for ingress gateway pods
  their selector matches, in any namespace as istiod's default) with their HTTP servers, and the
  VirtualServices bound to each by `gateways:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from components.istiod.translate.model import (
    DRY_RUN, Index, Obj, annotations_of, metadata, name_of, namespace_of, selects, spec_of,
)
from components.istiod.translate.waypoints import Waypoints

MESH_GATEWAY = "mesh"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Member:
    """A pod as an endpoint of a Service: what subsets select on, and its workload uid."""

    labels: Mapping[str, str]
    uid: str


def build(index: Index, waypoints: Waypoints, members: Mapping[tuple[str, str], list[Member]],
          legacy_policies: Mapping[tuple[str, str], list[Obj]]) -> Obj:
    """The `l7` section. `members` lists each Service's endpoints; `legacy_policies` the selector
    policies each early-form waypoint (by namespace and name) enforces."""
    policies = [_policy(p, _targets(p, index)) for p in index.snapshot.authorization_policies
                if _targets(p, index)]
    for (ns, name), selected in legacy_policies.items():
        policies += [_policy(p, [{"kind": "Gateway", "namespace": ns, "name": name}]) for p in selected]
    routes = [r for r in (_service_routes(s, index, members) for s in index.snapshot.services) if r is not None]
    return {
        "policies": sorted(policies, key=lambda p: (p["namespace"], p["name"])),
        "routes": sorted(routes, key=lambda r: (r["namespace"], r["hostname"])),
        "gateways": sorted((_istio_gateway(g) for g in index.snapshot.istio_gateways),
                           key=lambda g: (g["namespace"], g["name"])),
        "gatewayRoutes": _gateway_routes(index, members),
    }


# Ingress

def _istio_gateway(gateway: Obj) -> Obj:
    servers = []
    for server in spec_of(gateway).get("servers") or []:
        port = server.get("port") or {}
        servers.append({"port": int(port.get("number", 0)), "name": port.get("name", ""),
                        "protocol": (port.get("protocol") or "HTTP").upper(), "hosts": list(server.get("hosts") or [])})
    return {"namespace": namespace_of(gateway), "name": name_of(gateway),
            "selector": dict(spec_of(gateway).get("selector") or {}), "servers": servers}


def _gateway_routes(index: Index, members: Mapping[tuple[str, str], list[Member]]) -> list[Obj]:
    """VirtualServices bound to Istio Gateways (`ns/name`, or a name in the VirtualService's namespace)."""
    routes = []
    for virtual_service in sorted(index.snapshot.virtual_services, key=_age):
        ns = namespace_of(virtual_service)
        bound = [g if "/" in g else f"{ns}/{g}" for g in spec_of(virtual_service).get("gateways") or []
                 if g != MESH_GATEWAY]
        if not bound:
            continue
        routes.append({"gateways": bound, "hosts": list(spec_of(virtual_service).get("hosts") or []),
                       "namespace": ns, "source": f"VirtualService {ns}/{name_of(virtual_service)}",
                       "rules": [_virtual_service_rule(rule, ns, index, members)
                                 for rule in spec_of(virtual_service).get("http") or []]})
    return routes


# Policies

def _targets(policy: Obj, index: Index) -> list[Obj]:
    spec = spec_of(policy)
    refs = list(spec.get("targetRefs") or []) + ([spec["targetRef"]] if spec.get("targetRef") else [])
    ns = namespace_of(policy)
    targets = []
    for ref in refs:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "Gateway":
            targets.append({"kind": "Gateway", "namespace": ns, "name": name})
        elif kind == "GatewayClass" and ns == index.snapshot.root_namespace:
            targets.append({"kind": "GatewayClass", "name": name})
        elif kind == "Service" and ref.get("group", "") in ("", "core"):
            targets.append({"kind": "Service", "namespace": ns, "name": name,
                            "hostname": index.hostname(name, ns)})
    return targets


def _policy(policy: Obj, targets: list[Obj]) -> Obj:
    spec = spec_of(policy)
    return {
        "namespace": namespace_of(policy), "name": name_of(policy),
        "action": spec.get("action") or "ALLOW",
        "rules": spec.get("rules"),
        "dryRun": annotations_of(policy).get(DRY_RUN, "") in _TRUE,
        "provider": (spec.get("provider") or {}).get("name", ""),
        "targets": targets,
    }


def selector_policies(index: Index, namespace: str, pod_labels: Iterable[Mapping[str, str]]) -> list[Obj]:
    """The `selector` AuthorizationPolicies of `namespace` that select any of these pods."""
    labels = list(pod_labels)
    found = []
    for policy in index.snapshot.authorization_policies:
        selector = spec_of(policy).get("selector") or {}
        match = selector.get("matchLabels")
        if namespace_of(policy) == namespace and match and any(selects(match, lbl) for lbl in labels):
            found.append(policy)
    return found


# Routes

def resolve_host(host: str, namespace: str, suffix: str) -> str:
    """A VirtualService or DestinationRule host as istiod reads it (`ResolveShortnameToFQDN`): a
    name without a dot is in the object's namespace; anything with a dot is taken as written."""
    if "." in host or host.startswith("*"):
        return host
    return f"{host}.{namespace}.svc.{suffix}"


def _service_routes(service: Obj, index: Index, members: Mapping[tuple[str, str], list[Member]]) -> Obj | None:
    ns, name = namespace_of(service), name_of(service)
    hostname = index.hostname(name, ns)
    http_routes = [r for r in index.snapshot.http_routes if _is_parent(r, ns, name)]
    if http_routes:
        route = sorted(http_routes, key=_age)[0]
        source = f"HTTPRoute {namespace_of(route)}/{name_of(route)}"
        rules = [_http_route_rule(rule, namespace_of(route), index, members) for rule in spec_of(route).get("rules") or []]
    else:
        suffix = index.snapshot.domain_suffix
        services = [v for v in index.snapshot.virtual_services
                    if _binds_mesh(v) and any(resolve_host(h, namespace_of(v), suffix) == hostname
                                             for h in spec_of(v).get("hosts") or [])]
        if not services:
            return None
        virtual_service = sorted(services, key=_age)[0]
        source = f"VirtualService {namespace_of(virtual_service)}/{name_of(virtual_service)}"
        rules = [_virtual_service_rule(rule, namespace_of(virtual_service), index, members)
                 for rule in spec_of(virtual_service).get("http") or []]
    return {"namespace": ns, "name": name, "hostname": hostname, "source": source, "rules": rules}


def _age(obj: Obj) -> tuple[str, str, str]:
    """Istio's conflict resolution: the oldest object wins, then by namespace/name."""
    return metadata(obj).get("creationTimestamp", ""), namespace_of(obj), name_of(obj)


def _is_parent(route: Obj, namespace: str, name: str) -> bool:
    for ref in spec_of(route).get("parentRefs") or []:
        if (ref.get("kind") == "Service" and ref.get("group", "") in ("", "core") and ref.get("name") == name
                and ref.get("namespace", namespace_of(route)) == namespace):
            return True
    return False


def _binds_mesh(virtual_service: Obj) -> bool:
    gateways = spec_of(virtual_service).get("gateways") or [MESH_GATEWAY]
    return MESH_GATEWAY in gateways


def _backend(index: Index, members: Mapping[tuple[str, str], list[Member]], hostname: str, port: int | None,
             weight: int, subset: str | None, namespace: str) -> Obj:
    """A route's backend: the Service of `hostname`, and for a subset the workloads it selects."""
    svc_name, _, rest = hostname.partition(".")
    svc_ns = rest.split(".")[0] if rest else namespace
    backend: Obj = {"hostname": hostname, "namespace": svc_ns, "service": svc_name, "port": port,
                    "weight": weight, "workloads": None}
    if (svc_ns, svc_name) not in index.services:
        backend["error"] = f"service {hostname} not found"
        backend["workloads"] = []
    elif subset is not None:
        labels = _subset_labels(index, hostname, subset)
        if labels is None:
            backend["error"] = f"subset {subset} of {hostname} is not defined by any DestinationRule"
            backend["workloads"] = []
        else:
            backend["subset"] = subset
            backend["workloads"] = sorted(m.uid for m in members.get((svc_ns, svc_name), []) if selects(labels, m.labels))
    return backend


def _subset_labels(index: Index, hostname: str, subset: str) -> Mapping[str, str] | None:
    suffix = index.snapshot.domain_suffix
    for rule in sorted(index.snapshot.destination_rules, key=_age):
        spec = spec_of(rule)
        if resolve_host(spec.get("host", ""), namespace_of(rule), suffix) != hostname:
            continue
        for candidate in spec.get("subsets") or []:
            if candidate.get("name") == subset:
                return candidate.get("labels") or {}
    return None


def _string_match(value: Mapping[str, Any] | None) -> Obj | None:
    """A VirtualService StringMatch (`exact`, `prefix`, `regex`) as {type, value}."""
    if not value:
        return None
    for key, kind in (("exact", "Exact"), ("prefix", "Prefix"), ("regex", "RegularExpression")):
        if key in value:
            return {"type": kind, "value": str(value[key])}
    return None


def _virtual_service_rule(rule: Obj, namespace: str, index: Index, members: Mapping[tuple[str, str], list[Member]]) -> Obj:
    suffix = index.snapshot.domain_suffix
    matches = []
    for match in rule.get("match") or []:
        headers = [{"name": name.lower(), **m} for name, value in (match.get("headers") or {}).items()
                   if (m := _string_match(value)) is not None]
        queries = [{"name": name, **m} for name, value in (match.get("queryParams") or {}).items()
                   if (m := _string_match(value)) is not None]
        method = _string_match(match.get("method"))
        matches.append({"path": _string_match(match.get("uri")), "headers": headers, "queryParams": queries,
                        "method": method["value"] if method else None})
    destinations = rule.get("route") or []
    backends = []
    for destination in destinations:
        target = destination.get("destination") or {}
        weight = destination.get("weight", 100 if len(destinations) == 1 else 0)
        port = (target.get("port") or {}).get("number")
        backends.append(_backend(index, members, resolve_host(target.get("host", ""), namespace, suffix),
                                 int(port) if port else None, int(weight), target.get("subset"), namespace))
    result: Obj = {"name": rule.get("name", ""), "matches": matches, "backends": backends,
                   "headers": _vs_headers(rule.get("headers") or {})}
    if rule.get("rewrite", {}).get("uri"):
        result["rewrite"] = {"type": "ReplacePrefixMatch", "value": rule["rewrite"]["uri"]}
    timeout = _seconds(rule.get("timeout"))
    if timeout is not None:
        result["timeout"] = timeout
    fault = _fault(rule.get("fault") or {})
    if fault:
        result["fault"] = fault
    if rule.get("directResponse"):
        direct = rule["directResponse"]
        result["directResponse"] = {"status": int(direct.get("status", 200)),
                                    "body": (direct.get("body") or {}).get("string", "")}
    return result


def _vs_headers(headers: Obj) -> Obj:
    def side(ops: Obj) -> Obj:
        return {"set": dict(ops.get("set") or {}), "add": dict(ops.get("add") or {}),
                "remove": list(ops.get("remove") or [])}
    return {"request": side(headers.get("request") or {}), "response": side(headers.get("response") or {})}


def _fault(fault: Obj) -> Obj:
    result: Obj = {}
    delay, abort = fault.get("delay") or {}, fault.get("abort") or {}
    seconds = _seconds(delay.get("fixedDelay"))
    if seconds is not None:
        result["delay"] = {"seconds": seconds, "percent": _percent(delay)}
    if abort.get("httpStatus"):
        result["abort"] = {"status": int(abort["httpStatus"]), "percent": _percent(abort)}
    return result


def _percent(obj: Obj) -> float:
    if "percentage" in obj:
        return float((obj["percentage"] or {}).get("value", 0))
    return float(obj.get("percent", 100))


def _seconds(text: Any) -> float | None:
    """A protobuf/Go duration such as `0.5s`, `7s`, `100ms` in seconds; None if absent or invalid
    (the apiserver's CRD validation would have refused it)."""
    found = _DURATION.match(str(text).strip()) if text else None
    return float(found.group(1)) * _UNIT[found.group(2)] if found else None


def _http_route_rule(rule: Obj, namespace: str, index: Index, members: Mapping[tuple[str, str], list[Member]]) -> Obj:
    matches = []
    for match in rule.get("matches") or []:
        path = match.get("path")
        matches.append({
            "path": {"type": path.get("type", "PathPrefix"), "value": path.get("value", "/")} if path else None,
            "headers": [{"name": h["name"].lower(), "type": h.get("type", "Exact"), "value": h.get("value", "")}
                        for h in match.get("headers") or []],
            "queryParams": [{"name": q["name"], "type": q.get("type", "Exact"), "value": q.get("value", "")}
                            for q in match.get("queryParams") or []],
            "method": match.get("method"),
        })
    backends = []
    for ref in rule.get("backendRefs") or []:
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
            continue
        ns = ref.get("namespace", namespace)
        backends.append(_backend(index, members, index.hostname(ref["name"], ns),
                                 ref.get("port"), int(ref.get("weight", 1)), None, namespace))
    headers = {"request": {"set": {}, "add": {}, "remove": []}, "response": {"set": {}, "add": {}, "remove": []}}
    result: Obj = {"name": rule.get("name", ""), "matches": matches, "backends": backends, "headers": headers}
    for flt in rule.get("filters") or []:
        kind = flt.get("type")
        for side, key in (("request", "requestHeaderModifier"), ("response", "responseHeaderModifier")):
            modifier = flt.get(key) if kind in ("RequestHeaderModifier", "ResponseHeaderModifier") else None
            if modifier:
                headers[side]["set"].update({h["name"]: h["value"] for h in modifier.get("set") or []})
                headers[side]["add"].update({h["name"]: h["value"] for h in modifier.get("add") or []})
                headers[side]["remove"] += list(modifier.get("remove") or [])
        if kind == "URLRewrite":
            path = (flt.get("urlRewrite") or {}).get("path") or {}
            if path.get("type") == "ReplaceFullPath":
                result["rewrite"] = {"type": "ReplaceFullPath", "value": path.get("replaceFullPath", "/")}
            elif path.get("type") == "ReplacePrefixMatch":
                result["rewrite"] = {"type": "ReplacePrefixMatch", "value": path.get("replacePrefixMatch", "/")}
    timeout = _seconds((rule.get("timeouts") or {}).get("request"))
    if timeout is not None:
        result["timeout"] = timeout
    return result
