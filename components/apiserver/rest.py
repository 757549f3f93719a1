"""The HTTP face of the apiserver: Kubernetes' REST paths and verbs mapped onto the registry,
plus watches, discovery, health, token endpoints, the service-account issuer's public keys and
the pods' and services' proxy subresource."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from components.apiserver import discovery, errors, patch, proxy, resources, watch
from components.apiserver.errors import StatusError
from components.apiserver.registry import Registry
from components.apiserver.selectors import SelectorError, object_filter
from components.apiserver.tokens import TokenIssuer
from components.common import kinds
from components.common.http import Request, Response

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    kind: kinds.Kind
    namespace: str | None
    name: str | None
    subresource: str = ""


def parse_path(path: str) -> Target | None:
    """`/api/v1/namespaces/ns/pods/x/status` and friends; None if no served kind is there."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and (api_version != "v1" or kinds.by_path("v1", rest[2])):
        namespace, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 3:
        return None
    kind = kinds.by_path(api_version, rest[0])
    if kind is None or (namespace is not None and not kind.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if kind.namespaced and name is not None and namespace is None:
        return None
    group_kind = resources.key(kind)
    if subresource and not (subresource == "status" and resources.has_status(group_kind)
                            or subresource == "token" and group_kind == resources.key(resources.SERVICE_ACCOUNT)):
        return None
    return Target(kind, namespace, name, subresource)


def _json(obj: Any, status: int = 200, pretty: bool = False) -> Response:
    return Response.json(obj, status, indent=2 if pretty else None)


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "").lower() in ("true", "1")


def _int_arg(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"{name}: Invalid value: \"{value}\": must be an integer") from None


def _body(request: Request, kind: kinds.Kind) -> Any:
    content_type = (request.header("content-type") or "application/json").split(";")[0].strip().lower()
    if not request.body.strip():
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): "
                                 f"couldn't get version/kind; json parse error: unexpected end of JSON input")
    try:
        if "yaml" in content_type:
            return yaml.safe_load(request.body)
        return json.loads(request.body)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): "
                                 f"couldn't get version/kind; json parse error: {exc}") from exc


def _selectors(request: Request) -> Callable[[Obj], bool]:
    try:
        return object_filter(request.arg("labelSelector"), request.arg("fieldSelector"))
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc


def _dry_run(request: Request) -> bool:
    values = request.query.get("dryRun") or []
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


class Api:
    def __init__(self, registry: Registry, tokens: TokenIssuer, server_address: str):
        self.registry = registry
        self.store = registry.store
        self.tokens = tokens
        self.server_address = server_address

    async def handle(self, request: Request) -> Response:
        """Answer one request; every failure becomes a Status object."""
        try:
            response = await self._route(request)
        except StatusError as exc:
            response = _json(exc.status(), exc.code)
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.target)
            error = errors.internal(str(exc))
            response = _json(error.status(), error.code)
        log.debug("%s %s: %d", request.method, request.target, response.status)
        return response

    async def _route(self, request: Request) -> Response:
        proxied = proxy.parse_proxy_path(request.target)
        if proxied is not None:
            return await proxy.relay(self.registry, proxied, request)
        path = request.path.rstrip("/") or "/"
        method = request.method
        if method == "GET":
            fixed = self._fixed(path)
            if fixed is not None:
                return fixed
        target = parse_path(path)
        if target is None:
            raise errors.path_not_found()
        pretty = _flag(request, "pretty")
        if target.name is None:
            return await self._collection(request, target, pretty)
        return await self._object(request, target, pretty)

    def _fixed(self, path: str) -> Response | None:
        """Everything at a fixed path: health, version, discovery, issuer keys."""
        if path in HEALTH_PATHS:
            return Response.text("ok")
        documents: dict[str, Any] = {
            "/version": lambda: discovery.VERSION,
            "/api": lambda: discovery.api_versions(self.server_address),
            "/apis": discovery.api_group_list,
            "/api/v1": lambda: discovery.api_resource_list("v1"),
            "/openid/v1/jwks": self.tokens.jwks,
            "/.well-known/openid-configuration": self.tokens.openid_configuration,
        }
        if path in documents:
            return _json(documents[path]())
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            group = discovery.api_group(parts[1])
            return _json(group) if group else None
        if parts[0] == "apis" and len(parts) == 3:
            listing = discovery.api_resource_list(f"{parts[1]}/{parts[2]}")
            return _json(listing) if listing else None
        return None

    def _present(self, kind: kinds.Kind, obj: Obj) -> Obj:
        """An object as served at the request's version."""
        return {**obj, "apiVersion": kind.api_version}

    # -- collections ---------------------------------------------------------------------------

    async def _collection(self, request: Request, target: Target, pretty: bool) -> Response:
        kind, namespace = target.kind, target.namespace
        virtual = resources.key(kind) in resources.VIRTUAL
        if virtual:
            if request.method != "POST":
                raise errors.method_not_allowed()
            return _json(self.tokens.token_review(_body(request, kind)), 201, pretty)
        if request.method == "GET":
            accept = _selectors(request)
            if _flag(request, "watch"):
                return self._watch(request, target, accept)
            items = [self._present(kind, o) for o in self.registry.list(kind, namespace) if accept(o)]
            return _json({"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                          "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items},
                         pretty=pretty)
        if kind.namespaced and namespace is None:
            raise errors.method_not_allowed()
        if request.method == "POST":
            body = _body(request, kind)
            if resources.key(kind) == resources.key(resources.POD):
                await self.registry.wait_for_service_account(namespace or "", body)
            created = self.registry.create(kind, namespace or "", body, dry_run=_dry_run(request))
            return _json(self._present(kind, created), 201, pretty)
        if request.method == "DELETE":
            return self._delete_collection(request, target, pretty)
        raise errors.method_not_allowed()

    def _delete_collection(self, request: Request, target: Target, pretty: bool) -> Response:
        kind = target.kind
        accept = _selectors(request)
        grace, dry_run = self._delete_options(request)
        deleted = []
        for obj in self.registry.list(kind, target.namespace):
            if accept(obj):
                deleted.append(self._present(kind, self.registry.delete(
                    kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], grace=grace,
                    dry_run=dry_run)))
        return _json({"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                      "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted},
                     pretty=pretty)

    def _watch(self, request: Request, target: Target, accept: Callable[[Obj], bool]) -> Response:
        raw = request.arg("resourceVersion")
        since: int | None = None
        if raw not in (None, "", "0"):
            try:
                since = int(raw or "")
            except ValueError:
                raise errors.bad_request(f'resourceVersion: Invalid value: "{raw}": must be an integer') from None
            if since > self.store.resource_version:
                raise errors.too_large_resource_version(since, self.store.resource_version)
        timeout = _int_arg(request, "timeoutSeconds")
        kind = target.kind
        body = watch.stream(self.store, resources.key(kind), target.namespace, accept,
                            lambda obj: self._present(kind, obj), since, timeout)
        return Response(200, [("content-type", "application/json")], stream=body)

    # -- single objects ------------------------------------------------------------------------

    def _delete_options(self, request: Request) -> tuple[int | None, bool]:
        """gracePeriodSeconds and dryRun, from the query or a DeleteOptions body."""
        options: Any = {}
        if request.body.strip():
            try:
                options = json.loads(request.body)
            except ValueError as exc:
                raise errors.bad_request(f"the body of a DELETE must be DeleteOptions: {exc}") from exc
        if not isinstance(options, dict):
            options = {}
        grace = _int_arg(request, "gracePeriodSeconds")
        if grace is None and isinstance(options.get("gracePeriodSeconds"), int):
            grace = options["gracePeriodSeconds"]
        return grace, _dry_run(request) or options.get("dryRun") == ["All"]

    async def _object(self, request: Request, target: Target, pretty: bool) -> Response:
        kind, namespace, name = target.kind, target.namespace or "", target.name or ""
        method = request.method
        if resources.key(kind) in resources.VIRTUAL:
            raise errors.method_not_allowed()
        if target.subresource == "token":
            if method != "POST":
                raise errors.method_not_allowed()
            return _json(self.tokens.token_request(namespace, name, _body(request, kind)), 201, pretty)
        if method == "GET":
            return _json(self._present(kind, self.registry.get(kind, namespace, name)), pretty=pretty)
        if method == "PUT":
            updated = self.registry.update(kind, namespace, name, _body(request, kind),
                                           subresource=target.subresource, dry_run=_dry_run(request))
            return _json(self._present(kind, updated), pretty=pretty)
        if method == "PATCH":
            content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
            if content_type not in (*patch.MERGE_TYPES, patch.JSON_PATCH_TYPE):
                raise errors.unsupported_media_type(content_type)
            patched = self.registry.patch(kind, namespace, name, _body(request, kind), content_type,
                                          subresource=target.subresource, dry_run=_dry_run(request))
            return _json(self._present(kind, patched), pretty=pretty)
        if method == "DELETE" and not target.subresource:
            grace, dry_run = self._delete_options(request)
            deleted = self.registry.delete(kind, namespace, name, grace=grace, dry_run=dry_run)
            return _json(self._present(kind, deleted), pretty=pretty)
        raise errors.method_not_allowed()
