"""The `proxy` subresource of pods and services: an HTTP request relayed to a pod.

`/api/v1/namespaces/<ns>/pods/<name>[:<port>]/proxy/<path>` goes to the pod's IP (the port
defaults to the pod's first declared container port, as Kubernetes picks it);
`/api/v1/namespaces/<ns>/services/<name>[:<port>]/proxy/<path>` goes to one ready endpoint of
the service port named or numbered. A name may also be `http:<name>:<port>`. The apiserver runs
on the control-plane node, which routes to every pod, so it can connect as a real one does. The
request is relayed over HTTP/1.1 and the whole response is returned; failures are the Status
objects kube-apiserver answers with (`error trying to reach service: dial tcp ...`).
"""

from __future__ import annotations

import ipaddress
import os
import random
import urllib.parse
from dataclasses import dataclass

import trio

from components.apiserver import resources
from components.apiserver.errors import StatusError
from components.apiserver.registry import Registry
from components.common import http
from components.common.http import Request, Response

REQUEST_TIMEOUT = 60.0  # kube-apiserver's --request-timeout
PROXY_RESOURCES = ("pods", "services")
# Headers that describe one connection, not the message: never relayed (RFC 9110 section 7.6.1),
# plus those the relaying client or server sets itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"})


@dataclass(frozen=True)
class ProxyTarget:
    """What a proxy path names: `resource` is "pods" or "services", `ref` the name with an
    optional scheme and port, `path` the raw remainder (with its query) sent to the backend."""

    resource: str
    namespace: str
    ref: str
    path: str


def parse_proxy_path(target: str) -> ProxyTarget | None:
    """The proxy request in a raw request target, or None when it is not one."""
    split = urllib.parse.urlsplit(target)
    parts = split.path.split("/")
    # ["", "api", "v1", "namespaces", ns, resource, ref, "proxy", rest...]
    if len(parts) < 8 or parts[1:4] != ["api", "v1", "namespaces"] or parts[7] != "proxy":
        return None
    if parts[5] not in PROXY_RESOURCES or not parts[4] or not parts[6]:
        return None
    rest = "/" + "/".join(parts[8:])
    if split.query:
        rest += "?" + split.query
    unquote = urllib.parse.unquote
    return ProxyTarget(parts[5], unquote(parts[4]), unquote(parts[6]), rest)


def split_scheme_name_port(ref: str) -> tuple[str, str, str] | None:
    """`name`, `name:port` or `scheme:name:port` (Kubernetes' SplitSchemeNamePort)."""
    parts = ref.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, (name, port) = "", parts
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    if not name or scheme not in ("", "http", "https"):
        return None
    return scheme, name, port


def _bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def _unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def _split(target: ProxyTarget) -> tuple[str, str, str]:
    split = split_scheme_name_port(target.ref)
    if split is None:
        singular = "pod" if target.resource == "pods" else "service"
        raise _bad_request(f'invalid {singular} request "{target.ref}"')
    scheme, name, port = split
    if scheme == "https":
        raise _unavailable("error trying to reach service: this apiserver relays plain HTTP only")
    return scheme, name, port


def pod_location(registry: Registry, target: ProxyTarget) -> tuple[str, str]:
    """(host, port) of a pod: its first IP, and the port named or its first container port."""
    _, name, port = _split(target)
    pod = registry.get(resources.POD, target.namespace, name)
    if not port:
        declared = [p for c in pod.get("spec", {}).get("containers") or [] for p in c.get("ports") or []]
        if declared:
            port = str(declared[0].get("containerPort", ""))
    status = pod.get("status") or {}
    ips = [entry.get("ip", "") for entry in status.get("podIPs") or []] or [status.get("podIP", "")]
    try:
        ip = str(ipaddress.ip_address(ips[0]))
    except ValueError:
        raise _bad_request("address not allowed") from None
    return ip, port or "80"


def service_location(registry: Registry, target: ProxyTarget) -> tuple[str, str]:
    """(host, port) of one ready endpoint serving the service port named or numbered."""
    _, name, port = _split(target)
    if port.isdigit():
        service = registry.get(resources.SERVICE, target.namespace, name)
        named = next((p for p in service.get("spec", {}).get("ports") or [] if str(p.get("port")) == port), None)
        if named is None:
            raise _unavailable(f'no service port {int(port)} found for service "{name}"')
        port = named.get("name", "")
    endpoints = registry.get(resources.ENDPOINTS, target.namespace, name)
    subsets = endpoints.get("subsets") or []
    if not subsets:
        raise _unavailable(f'no endpoints available for service "{name}"')
    for subset in subsets:
        addresses = subset.get("addresses") or []
        for endpoint_port in subset.get("ports") or []:
            if addresses and endpoint_port.get("name", "") == port:
                return random.choice(addresses)["ip"], str(endpoint_port["port"])
    raise _unavailable(f'no endpoints available for service "{target.ref}"')


def _errno(exc: BaseException) -> int | None:
    """The errno behind a failed connect (trio reports one error per address tried in a group)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return seen.errno
        group = getattr(seen, "exceptions", None)
        seen = group[0] if group else seen.__cause__
    return None


def _reach_error(address: str, exc: BaseException) -> str:
    """Go's text for what went wrong: `dial tcp 10.244.1.4:15000: connect: connection refused`
    for a failed connect, `EOF` for a backend that closed without answering."""
    if isinstance(exc, http.HTTPError):
        return "EOF"
    code = _errno(exc)
    return f"dial tcp {address}: connect: {os.strerror(code).lower()}" if code else f"dial tcp {address}: {exc}"


def _relayed(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


async def _send(host: str, port: str, request: Request, path: str) -> Response:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with trio.fail_after(REQUEST_TIMEOUT):
            return await http.request(address, request.method, path, headers=_relayed(request.headers),
                                      body=request.body, host=address)
    except trio.TooSlowError:
        raise StatusError(504, "Timeout", "Timeout: request did not complete within requested timeout - "
                                          "context deadline exceeded", {}) from None
    except (OSError, http.HTTPError) as exc:
        raise _unavailable(f"error trying to reach service: {_reach_error(address, exc)}") from exc


async def relay(registry: Registry, target: ProxyTarget, request: Request) -> Response:
    """Answer a proxy request with the backend's response (status, headers, body)."""
    if target.resource == "pods":
        host, port = pod_location(registry, target)
    else:
        host, port = service_location(registry, target)
    response = await _send(host, port, request, target.path)
    return Response(response.status, _relayed(response.headers), response.body)
