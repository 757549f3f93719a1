"""The waypoint's data path: HBONE in, HTTP/1.1 requests inside each tunnel, policy, routing, and
HBONE out to the chosen endpoint.

A CONNECT is accepted only for a destination that uses this waypoint: a Service VIP whose
`waypoint` is ours, or a workload IP whose `waypoint` is ours. Each request in the tunnel then:

1. is authorized against the AuthorizationPolicies attached to this Gateway, its class or the
   destination Service (`selector` policies never reach a waypoint); a deny is Envoy's
   403 `RBAC: access denied`;
2. takes a route rule (Service traffic) or goes to the addressed workload (workload traffic);
   faults, header operations and rewrites of the rule apply;
3. goes to an endpoint of the chosen backend over a new CONNECT on a pooled HBONE connection,
   with the waypoint's own identity (waypoints never impersonate the client);
4. is counted in Istio's request metrics and logged in Envoy's access-log format.

In router mode (an ingress gateway, `pilot-agent proxy router`) the same program listens for plain
HTTP on the ports of the Istio Gateways that select its pod, routes by the VirtualServices bound to
them, and reaches mesh endpoints over HBONE with its own identity.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from components.common import http
from components.common.addresses import format_address
from components.common.h2conn import H2Request, H2Stream, serve_h2
from components.common.tls import Identity, TLSError, tls_accept
from components.waypoint import authz, router
from components.waypoint.identity import OwnCertificate
from components.waypoint.mesh import Mesh, Service, Workload
from components.waypoint.settings import Settings
from components.waypoint.telemetry import NO_FLAGS, Exchange, Metrics, access_log_line
from components.waypoint.upstream import UpstreamError, Upstreams

log = logging.getLogger("waypoint.proxy")
access_log = logging.getLogger("waypoint.access")

HANDSHAKE_TIMEOUT = 10.0
DEFAULT_ROUTE_TIMEOUT = 300.0
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                        "upgrade", "content-length"})
RBAC_DENIED = "RBAC: access denied"
NO_HEALTHY_UPSTREAM = "no healthy upstream"
CONNECT_FAILURE = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
CONNECTION_TERMINATION = ("upstream connect error or disconnect/reset before headers. "
                          "reset reason: connection termination")


@dataclass(frozen=True)
class Tunnel:
    """One accepted CONNECT (or, at an ingress gateway, one plain connection): who is calling and
    what they addressed."""

    peer: Identity | None
    source_address: str           # ip:port of the client, from Forwarded (else the TCP peer)
    destination: tuple[str, int]  # the original VIP:port or podIP:port (a gateway: its own)
    service: Service | None
    workload: Workload | None     # the addressed workload (workload traffic)
    local_address: str
    gateways: tuple[str, ...] = ()  # router mode: the Istio Gateways (`ns/name`) of this port


@dataclass(frozen=True)
class Upstream:
    """Where one request goes: the endpoint, its address, Envoy's cluster name, the backend Service."""

    workload: Workload
    ip: str
    port: int
    cluster: str
    service: Service | None


@dataclass
class Outcome:
    """What happened to one request, filled in as it goes."""

    response: http.Response
    flags: str = NO_FLAGS
    details: str = "via_upstream"
    destination: Workload | None = None
    upstream_host: str = ""
    upstream_time_ms: float | None = None
    route_name: str = ""
    cluster: str = ""
    service: Service | None = None     # the backend's (an ingress gateway has no addressed one)


def _parse_authority(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def _forwarded_for(value: str | None) -> str | None:
    for part in (value or "").split(";"):
        part = part.strip()
        if part.startswith("for="):
            return part[4:].strip('"') or None
    return None


def _envoy_response(status: int, body: str) -> http.Response:
    return http.Response(status, [("content-type", "text/plain"), ("server", "istio-envoy")], body.encode())


def _addresses(stream: trio.SocketStream) -> tuple[str, str] | None:
    """(peer, local) `ip:port` of an accepted connection; None if the client is already gone."""
    try:
        return format_address(stream.socket.getpeername()[:2]), format_address(stream.socket.getsockname()[:2])
    except OSError:
        return None


def _route_not_found() -> Outcome:
    return Outcome(http.Response(404, [("server", "istio-envoy")]), flags="NR", details="route_not_found")


def _joined_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


class WaypointProxy:
    def __init__(self, settings: Settings, certificate: OwnCertificate, upstreams: Upstreams, metrics: Metrics,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.certificate = certificate
        self.upstreams = upstreams
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.mesh = Mesh()
        self._policies: dict[tuple[str, str], authz.Policy] = {}
        self._config_changed = trio.Event()

    # Config

    def update(self, mesh: Mesh) -> None:
        """A new snapshot: compile the attached policies once (a bad one is logged and skipped,
        as istiod would reject it)."""
        compiled: dict[tuple[str, str], authz.Policy] = {}
        for policy in mesh.policies:
            rules = policy.get("rules")
            try:
                compiled[(policy["namespace"], policy["name"])] = authz.Policy(
                    policy["namespace"], policy["name"], policy.get("action") or "ALLOW",
                    None if rules is None else tuple(rules), dry_run=bool(policy.get("dryRun")),
                    provider=policy.get("provider", ""))
            except authz.PolicyError as exc:
                log.warning("ignoring AuthorizationPolicy %s/%s: %s", policy["namespace"], policy["name"], exc)
        self.mesh = mesh
        self._policies = compiled
        self._config_changed.set()
        self._config_changed = trio.Event()

    def _policies_for(self, service: Service | None) -> list[authz.Policy]:
        attached = self.mesh.attached_policies(self.settings.namespace, self.settings.gateway_name, service)
        return [self._policies[key] for p in attached if (key := (p["namespace"], p["name"])) in self._policies]

    def _uses_us(self, gateway: dict | None) -> bool:
        if gateway is None:
            return False
        return gateway.get("destination") in self.mesh.addresses_of(self.settings.namespace, self.settings.service_name)

    # HBONE in

    async def serve(self, port: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
        task_status.started()
        await trio.serve_listeners(self._on_connection, listeners)

    async def _on_connection(self, transport: trio.SocketStream) -> None:
        context = self.certificate.server
        addresses = _addresses(transport)
        if addresses is None or context is None:
            await trio.aclose_forcefully(transport)
            return
        peer_address, local_address = addresses
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                tls_stream, peer = await tls_accept(transport, context, self.settings.trust_domain)
        except (TLSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            log.info("HBONE handshake from %s failed: %s", peer_address, exc)
            await trio.aclose_forcefully(transport)
            return
        await serve_h2(tls_stream, partial(self._on_stream, peer, peer_address, local_address))

    async def _on_stream(self, peer: Identity, peer_address: str, local_address: str,
                         request: H2Request, stream: H2Stream) -> None:
        if request.method != "CONNECT":
            await stream.respond(400, end_stream=True)
            return
        destination = _parse_authority(request.authority)
        if destination is None:
            await stream.respond(400, end_stream=True)
            return
        service = self.mesh.services_by_vip.get(destination[0])
        workload = None if service is not None else self.mesh.workloads_by_ip.get(destination[0])
        target = service if service is not None else workload
        if target is None or not self._uses_us(target.waypoint):
            log.warning("refusing CONNECT from %s (%s) to %s: it does not use waypoint %s/%s", peer_address, peer,
                        request.authority, self.settings.namespace, self.settings.gateway_name)
            await stream.respond(400, end_stream=True)
            return
        await stream.respond(200)
        tunnel = Tunnel(peer, _forwarded_for(request.header("forwarded")) or peer_address, destination,
                        service, workload, local_address)
        await http.serve_connection(stream, partial(self.handle, tunnel))

    # Plain HTTP in (router mode)

    def _gateways_on(self, port: int, labels: dict[str, str]) -> tuple[str, ...]:
        return tuple(f"{g['namespace']}/{g['name']}" for g in self.mesh.gateways_selecting(labels)
                     if any(s["port"] == port and s["protocol"] in ("HTTP", "HTTP2") for s in g["servers"]))

    async def serve_gateway(self, labels: dict[str, str]) -> None:
        """Listen on the HTTP ports of the Gateways selecting this pod, as they appear."""
        listening: set[int] = set()
        async with trio.open_nursery() as nursery:
            while True:
                for gateway in self.mesh.gateways_selecting(labels):
                    for server in gateway["servers"]:
                        port = server["port"]
                        if port not in listening and server["protocol"] in ("HTTP", "HTTP2"):
                            await nursery.start(self._serve_plain, port, labels)
                            listening.add(port)
                            log.info("listening on %d for Gateway %s/%s", port, gateway["namespace"], gateway["name"])
                await self._config_changed.wait()

    async def _serve_plain(self, port: int, labels: dict[str, str],
                           *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")

        async def on_connection(stream: trio.SocketStream) -> None:
            addresses = _addresses(stream)
            if addresses is None:
                await trio.aclose_forcefully(stream)
                return
            peer, local = addresses
            tunnel = Tunnel(None, peer, (local.rpartition(":")[0], port), None, None, local,
                            self._gateways_on(port, labels))
            await http.serve_connection(stream, partial(self.handle, tunnel))

        task_status.started()
        await trio.serve_listeners(on_connection, listeners)

    # One request

    async def handle(self, tunnel: Tunnel, request: http.Request) -> http.Response:
        started, wall = time.monotonic(), datetime.datetime.now(datetime.timezone.utc)
        headers = _joined_headers(request.headers)
        request_id = headers.get("x-request-id") or str(uuid.uuid4())
        outcome = await self._process(tunnel, request, headers, request_id)
        exchange = Exchange(
            method=request.method, path=request.target, protocol="HTTP/1.1",
            authority=headers.get("host", ""), status=outcome.response.status, flags=outcome.flags,
            details=outcome.details, bytes_received=len(request.body), bytes_sent=len(outcome.response.body),
            duration_ms=(time.monotonic() - started) * 1000, upstream_time_ms=outcome.upstream_time_ms,
            source=self.mesh.workloads_by_ip.get(tunnel.source_address.rpartition(":")[0].strip("[]")),
            source_principal=str(tunnel.peer) if tunnel.peer else None, source_address=tunnel.source_address,
            destination=outcome.destination, service=tunnel.service or outcome.service,
            cluster=outcome.cluster,
            upstream_host=outcome.upstream_host, local_address=tunnel.local_address,
            user_agent=headers.get("user-agent", ""), request_id=request_id,
            forwarded_for=headers.get("x-forwarded-for", ""), route_name=outcome.route_name)
        self.metrics.record(exchange)
        access_log.info(access_log_line(exchange, wall))
        return outcome.response

    def _expected_destination(self, tunnel: Tunnel) -> Workload | None:
        """The workload a request that never reached one was for: the addressed workload, or the
        one workload behind the Service if there is exactly one (an early per-workload waypoint)."""
        if tunnel.workload is not None:
            return tunnel.workload
        if tunnel.service is None:
            return None
        endpoints = self.mesh.endpoints(tunnel.service)
        names = {(w.namespace, w.workload_name) for w in endpoints}
        return endpoints[0] if len(names) == 1 else None

    async def _process(self, tunnel: Tunnel, request: http.Request, headers: dict[str, str],
                       request_id: str) -> Outcome:
        if tunnel.peer is None:
            try:
                rule = router.select_gateway_rule(self.mesh, list(tunnel.gateways),
                                                  router.Request(request.method, request.target, headers))
            except router.RouteNotFound:
                return _route_not_found()
            return await self._route(rule, request, headers, request_id)
        attributes = authz.RequestAttributes(
            source_principal=str(tunnel.peer).removeprefix("spiffe://"),
            source_ip=tunnel.source_address.rpartition(":")[0].strip("[]"),
            destination_ip=tunnel.destination[0], destination_port=tunnel.destination[1],
            method=request.method, path=request.target, host=headers.get("host", ""), headers=headers)
        decision = authz.evaluate(self._policies_for(tunnel.service), attributes)
        if not decision.allowed:
            return Outcome(_envoy_response(403, RBAC_DENIED), details=decision.details,
                           destination=self._expected_destination(tunnel))
        if tunnel.service is None:
            assert tunnel.workload is not None
            ip, port = tunnel.destination
            target = Upstream(tunnel.workload, ip, port, f"inbound-pod|{port}||{ip}", None)
            return await self._forward(router.Rule(source="workload"), target, request, request_id)
        try:
            rule = router.select_rule(self.mesh, tunnel.service, tunnel.destination[1],
                                      router.Request(request.method, request.target, headers))
        except router.RouteNotFound:
            return _route_not_found()
        return await self._route(rule, request, headers, request_id)

    async def _route(self, rule: router.Rule, request: http.Request, headers: dict[str, str],
                     request_id: str) -> Outcome:
        fault = await self._inject_fault(rule)
        if fault is not None:
            return fault
        if rule.direct_response is not None:
            return Outcome(_envoy_response(rule.direct_response["status"], rule.direct_response["body"]),
                           details="direct_response", route_name=rule.name)
        backend = router.pick_backend(rule, self.rng)
        if backend is None or backend.error or backend.service is None:
            return Outcome(_envoy_response(503, NO_HEALTHY_UPSTREAM), flags="NC", details="cluster_not_found")
        endpoint = router.pick_endpoint(self.mesh, backend, self.rng)
        if endpoint is None:
            return Outcome(_envoy_response(503, NO_HEALTHY_UPSTREAM), flags="UH", details="no_healthy_upstream")
        port = backend.service.target_port(endpoint.uid, backend.port)
        subset = backend.subset or ""
        cluster = (f"outbound|{backend.port}|{subset}|{backend.service.hostname}" if self.settings.mode == "router"
                   else f"inbound-vip|{backend.port}|http{'/' + subset if subset else ''}|{backend.service.hostname}")
        target = Upstream(endpoint, endpoint.ips[0], port, cluster, backend.service)
        return await self._forward(rule, target, request, request_id)

    async def _inject_fault(self, rule: router.Rule) -> Outcome | None:
        delay, abort = rule.fault.get("delay"), rule.fault.get("abort")
        if delay and self.rng.uniform(0, 100) < delay["percent"]:
            await trio.sleep(delay["seconds"])
        if abort and self.rng.uniform(0, 100) < abort["percent"]:
            return Outcome(_envoy_response(abort["status"], "fault filter abort"), flags="FI",
                           details="fault_filter_abort", route_name=rule.name)
        return None

    async def _forward(self, rule: router.Rule, target: "Upstream", request: http.Request, request_id: str) -> Outcome:
        def outcome(response: http.Response, **fields: Any) -> Outcome:
            return Outcome(response, destination=target.workload, upstream_host=format_address((target.ip, target.port)),
                           route_name=rule.name, cluster=target.cluster, service=target.service, **fields)

        sent = [(k, v) for k, v in request.headers if k not in HOP_BY_HOP and k != "x-request-id"]
        sent += [("x-request-id", request_id), ("x-forwarded-proto", "http")]
        sent = router.apply_header_ops(sent, rule.headers.get("request"))
        path = router.rewrite_path(rule, request.target)
        started = time.monotonic()
        try:
            stream = await self.upstreams.open(target.workload, target.ip, target.port)
        except UpstreamError as exc:
            log.info("upstream %s:%d for %s: %s", target.ip, target.port, request.target, exc)
            return outcome(_envoy_response(503, CONNECT_FAILURE), flags="UF",
                           details="upstream_reset_before_response_started{connection_failure}")
        try:
            with trio.move_on_after(rule.timeout or DEFAULT_ROUTE_TIMEOUT) as scope:
                response = await http.exchange(stream, request.method, path, sent, request.body)
        except (http.HTTPError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.info("upstream %s:%d reset: %s", target.ip, target.port, exc)
            return outcome(_envoy_response(503, CONNECTION_TERMINATION), flags="UC",
                           details="upstream_reset_before_response_started{connection_termination}")
        finally:
            await trio.aclose_forcefully(stream)
        if scope.cancelled_caught:
            return outcome(_envoy_response(504, "upstream request timeout"), flags="UT",
                           details="upstream_response_timeout")
        upstream_ms = (time.monotonic() - started) * 1000
        returned = [(k, v) for k, v in response.headers if k not in HOP_BY_HOP and k != "server"]
        returned = router.apply_header_ops(returned, rule.headers.get("response"))
        returned += [("x-envoy-upstream-service-time", f"{upstream_ms:.0f}"), ("server", "istio-envoy")]
        return outcome(http.Response(response.status, returned, response.body), upstream_time_ms=upstream_ms)
