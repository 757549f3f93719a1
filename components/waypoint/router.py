"""Which route rule a request takes and which backend and endpoint serve it. I/O-free.

A Service routes to itself unless istiod sent a route table for it (HTTPRoute, else
VirtualService): then the first rule whose match the request satisfies decides; no matching rule
is Envoy's 404 `route_not_found`. Backends are picked at random by weight, endpoints at random
among the backend's healthy ones (Envoy's default weighted cluster and L7 load balancing).
"""

from __future__ import annotations

import random
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Mapping

from components.waypoint.mesh import Mesh, Service, Workload

Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    method: str
    path: str                        # the request target: path and query
    headers: Mapping[str, str]       # lower-case names


@dataclass(frozen=True)
class Backend:
    service: Service | None
    port: int                        # the service port asked for
    workloads: list[str] | None      # a subset's workloads; None: every endpoint
    error: str = ""
    subset: str = ""


@dataclass
class Rule:
    """The rule a request takes (the default rule: the service itself)."""

    name: str = ""
    source: str = ""
    backends: list[tuple[Backend, int]] = field(default_factory=list)
    headers: Obj = field(default_factory=dict)
    rewrite: Obj | None = None
    timeout: float | None = None
    fault: Obj = field(default_factory=dict)
    direct_response: Obj | None = None
    matched_prefix: str = ""


class RouteNotFound(Exception):
    """A route table exists and no rule matches (Envoy answers 404, flag NR)."""


def _string_matches(match: Obj, value: str | None) -> bool:
    if value is None:
        return False
    kind, expected = match.get("type"), match.get("value", "")
    if kind in ("Exact", None):
        return value == expected
    if kind == "Prefix":
        return value.startswith(expected)
    if kind == "PathPrefix":
        expected = expected.rstrip("/")
        return value == expected or value.startswith(expected + "/") or not expected
    if kind == "RegularExpression":
        return re.fullmatch(expected, value) is not None
    return False


def _matches(match: Obj, request: Request) -> bool:
    split = urllib.parse.urlsplit(request.path)
    if match.get("path") and not _string_matches(match["path"], split.path or "/"):
        return False
    if match.get("method") and match["method"] != request.method:
        return False
    for header in match.get("headers") or []:
        if not _string_matches(header, request.headers.get(header["name"])):
            return False
    query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
    for param in match.get("queryParams") or []:
        values = query.get(param["name"])
        if not _string_matches(param, values[0] if values else None):
            return False
    return True


def select_rule(mesh: Mesh, service: Service, port: int, request: Request) -> Rule:
    """The rule for `request` to `service:port`; RouteNotFound when a table exists and no rule matches."""
    table = mesh.routes.get(service.hostname)
    if table is None:
        return Rule(source="default", backends=[(Backend(service, port, None), 1)])
    return _first_matching_rule(mesh, table, service, port, request)


def _host_matches(pattern: str, host: str) -> bool:
    pattern = pattern.rpartition("/")[2].lower()
    return pattern == "*" or pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:]))


def select_gateway_rule(mesh: Mesh, gateways: list[str], request: Request) -> Rule:
    """An ingress gateway's rule: the first VirtualService bound to one of `gateways` (`ns/name`)
    whose hosts match the Host header and that has a rule for the request; else RouteNotFound."""
    host = request.headers.get("host", "").rpartition(":")[0] or request.headers.get("host", "")
    for table in mesh.gateway_routes:
        if set(table.get("gateways") or []) & set(gateways) and any(
                _host_matches(h, host.lower()) for h in table.get("hosts") or []):
            try:
                return _first_matching_rule(mesh, table, None, 0, request)
            except RouteNotFound:
                continue
    raise RouteNotFound(host)


def _first_matching_rule(mesh: Mesh, table: Obj, service: Service | None, port: int, request: Request) -> Rule:
    for rule in table.get("rules") or []:
        matches = rule.get("matches") or [{}]
        matched = next((m for m in matches if _matches(m, request)), None)
        if matched is None:
            continue
        backends = []
        for backend in rule.get("backends") or []:
            target = mesh.services_by_host.get(backend.get("hostname", ""))
            error = backend.get("error") or ("" if target is not None else f"service {backend.get('hostname')} not found")
            backends.append((Backend(target, backend.get("port") or _default_port(target, service, port),
                                     backend.get("workloads"), error, backend.get("subset", "")),
                             int(backend.get("weight", 1))))
        path = matched.get("path") or {}
        return Rule(name=rule.get("name", ""), source=table.get("source", ""), backends=backends,
                    headers=rule.get("headers") or {}, rewrite=rule.get("rewrite"), timeout=rule.get("timeout"),
                    fault=rule.get("fault") or {}, direct_response=rule.get("directResponse"),
                    matched_prefix=path.get("value", "") if path.get("type") in ("Prefix", "PathPrefix") else "")
    raise RouteNotFound(table.get("source", ""))


def _default_port(target: Service | None, service: Service | None, port: int) -> int:
    """A destination without a port: the port asked for, or another service's only port."""
    if target is not None and target is not service and len(target.ports) == 1:
        return next(iter(target.ports))
    return port


def pick_backend(rule: Rule, rng: random.Random) -> Backend | None:
    """One backend at random by weight; None when the rule has none with weight."""
    weighted = [(b, w) for b, w in rule.backends if w > 0]
    if not weighted:
        return None
    return rng.choices([b for b, _ in weighted], weights=[w for _, w in weighted])[0]


def pick_endpoint(mesh: Mesh, backend: Backend, rng: random.Random) -> Workload | None:
    if backend.service is None:
        return None
    endpoints = mesh.endpoints(backend.service, backend.workloads)
    return rng.choice(endpoints) if endpoints else None


def rewrite_path(rule: Rule, path: str) -> str:
    """The path after the rule's rewrite (a full replacement, or the matched prefix replaced)."""
    if rule.rewrite is None:
        return path
    split = urllib.parse.urlsplit(path)
    value = rule.rewrite.get("value", "/")
    if rule.rewrite.get("type") == "ReplaceFullPath":
        new_path = value
    else:
        rest = split.path[len(rule.matched_prefix):] if rule.matched_prefix else split.path
        new_path = (value.rstrip("/") + "/" + rest.lstrip("/")) if rest else value
    return urllib.parse.urlunsplit(("", "", new_path, split.query, ""))


def apply_header_ops(headers: list[tuple[str, str]], ops: Obj | None) -> list[tuple[str, str]]:
    """Set (replace), add (append) and remove header operations, case-insensitively."""
    if not ops:
        return headers
    remove = {name.lower() for name in ops.get("remove") or []} | {name.lower() for name in ops.get("set") or {}}
    result = [(k, v) for k, v in headers if k.lower() not in remove]
    result += [(k.lower(), str(v)) for k, v in (ops.get("set") or {}).items()]
    result += [(k.lower(), str(v)) for k, v in (ops.get("add") or {}).items()]
    return result
