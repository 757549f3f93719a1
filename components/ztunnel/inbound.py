"""Inbound HBONE (15008): mTLS, HTTP/2, and one CONNECT per tunnelled connection to the pod's app.

The server certificate is the pod's own identity (the transparent socket's local address is the
pod IP the client dialled); the client must present a certificate of our trust domain. Each
CONNECT is answered as ztunnel's `serve_connect` does, in this order (reference 1.4):

    method not CONNECT                      400  expected method CONNECT, got X
    authority not ip:port / host:port       400  no valid authority pseudo header: ...
    the pod's workload unknown              503  failed to fetch information about local workload
    authority IP not the dialled IP         400  ip mismatch: <dst> != <authority>
    hostname/port unresolvable, own port    503  no service ... / attempted recursive call to ourselves
    RBAC denies                             401  connection closed due to policy rejection: ...
    connecting to the app fails             503  connection failed: ...
    otherwise                               200  with `baggage` describing the pod

The app is dialled from the client's IP (IP_TRANSPARENT + IP_FREEBIND in the pod's netns), so
it sees the real client; the pod's table 100 routes its answers back to us.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from components.common.h2conn import SERVER_CONFIG, H2Request, H2ServerConnection, H2Stream, Handler, serve_h2
from components.common.tls import Identity, TLSError, tls_accept
from components.ztunnel import hbone, logs, rbac, sockets
from components.ztunnel.certs import CertificateUnavailable
from components.ztunnel.config import HANDSHAKE_TIMEOUT, ILLEGAL_PORTS
from components.ztunnel.metrics import DESTINATION, MUTUAL_TLS, labels_for
from components.ztunnel.proxy import WorkloadProxy
from components.ztunnel.relay import relay
from components.ztunnel.results import CONNECT, DENY, ConnectionResult, ProxyError
from components.common.addresses import Address, format_address
from components.ztunnel.state import ProxyState, Service, Workload, WorkloadInfo

log = logging.getLogger("components.ztunnel.proxy.inbound")


class InboundRejected(Exception):
    """A CONNECT answered with an error status before anything was proxied."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InboundRequest:
    authority: hbone.Authority
    upstream: Address
    services: tuple[Service, ...]


def _is_this_waypoint(state: ProxyState, local: Workload, dst_ip: str, target_ip: str) -> bool:
    """A "waypoint sandwich": the authority names something whose waypoint is this workload."""
    target = state.find_address(target_ip)
    gateway = target.waypoint if target is not None else None
    if gateway is None:
        return False
    waypoint = state.find_destination(gateway.get("destination"))
    if isinstance(waypoint, Service):
        return local.uid in waypoint.endpoints
    if isinstance(waypoint, Workload):
        return dst_ip in waypoint.ips
    return False


def build_inbound_request(state: ProxyState, local: Workload | None, info: WorkloadInfo, dst: Address,
                          method: str, authority_text: str | None) -> InboundRequest:
    """Check a CONNECT and resolve where it goes (`build_inbound_request`); InboundRejected if not."""
    if method != "CONNECT":
        raise InboundRejected(400, f"expected method CONNECT, got {method}")
    try:
        authority = hbone.parse_authority(authority_text)
    except hbone.InvalidAuthority as exc:
        raise InboundRejected(400, str(exc)) from None
    if local is None:
        raise InboundRejected(503, f"failed to fetch information about local workload: {info}")
    dst_ip = dst[0]
    if authority.is_ip and authority.host != dst_ip and not _is_this_waypoint(state, local, dst_ip, authority.host):
        raise InboundRejected(400, logs.ip_mismatch(dst_ip, authority.host))
    if authority.is_ip:
        port = authority.port
        services = tuple(state.services_for_workload(local))
    else:
        service = state.service_by_hostname(authority.host, local.namespace)
        if service is None:
            raise InboundRejected(503, f"no service or workload for hostname: {authority.host}")
        endpoint = service.endpoints.get(local.uid)
        if endpoint is not None and authority.port in endpoint.ports:
            port = endpoint.ports[authority.port]
        elif service.ports.get(authority.port, 0) > 0:
            port = service.ports[authority.port]
        else:
            raise InboundRejected(503, f"requested service {authority.host}:{authority.port} found, "
                                       "but cannot resolve port")
        services = (service,)
    if port in ILLEGAL_PORTS:
        raise InboundRejected(503, logs.SELF_CALL)
    return InboundRequest(authority, (dst_ip, port), services)


def guess_inbound_service(services: tuple[Service, ...] | list[Service], for_host: str | None,
                          target_port: int, workload: Workload) -> Service | None:
    """The service to report for an inbound connection: the one the client named (Forwarded
    host=), else one whose target port, or the endpoint's resolved port, is the port dialled."""
    for service in services:
        if for_host is not None and service.hostname == for_host:
            return service
    for service in services:
        endpoint = service.endpoints.get(workload.uid)
        for service_port, target in service.ports.items():
            if target == target_port:
                return service
            if endpoint is not None and endpoint.ports.get(service_port) == target_port:
                return service
    return None


async def handle(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    """A connection accepted on 15008: TLS, then HTTP/2 until the client is done."""
    closed = proxy.count_socket(DESTINATION)
    try:
        await _serve(proxy, stream)
    finally:
        closed()


async def _serve(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    src = sockets.canonical(stream.socket.getpeername())
    dst = sockets.canonical(stream.socket.getsockname())
    try:
        local = await proxy.local_workload()
        cert = await proxy.inputs.certs.fetch(local.identity)
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            tls_stream, peer = await tls_accept(stream, cert.server_context(), local.trust_domain)
    except (ProxyError, CertificateUnavailable, TLSError, trio.TooSlowError) as exc:
        error = str(exc) if not isinstance(exc, trio.TooSlowError) else "tls handshake timed out"
        logs.emit(logs.connection_failed(format_address(src), format_address(dst), "inbound", error))
        return

    async def on_request(request: H2Request, h2_stream: H2Stream) -> None:
        await serve_connect(proxy, src, dst, peer, request, h2_stream)

    try:
        await serve_until_drained(proxy, tls_stream, on_request)
    finally:
        await trio.aclose_forcefully(tls_stream)


async def serve_until_drained(proxy: WorkloadProxy, transport: trio.abc.Stream, handler: Handler) -> None:
    """HTTP/2 on one inbound connection; when the proxy drains, a GOAWAY (ztunnel's
    `graceful_shutdown`): running streams go on, the client opens new ones elsewhere."""
    async with trio.open_nursery() as nursery:
        async def serve(*, task_status: trio.TaskStatus[H2ServerConnection] = trio.TASK_STATUS_IGNORED) -> None:
            await serve_h2(transport, handler, config=SERVER_CONFIG, task_status=task_status)
            nursery.cancel_scope.cancel()

        connection = await nursery.start(serve)
        await proxy.draining.wait()
        await connection.drain()


async def serve_connect(proxy: WorkloadProxy, src: Address, dst: Address, peer: Identity,
                        request: H2Request, stream: H2Stream) -> None:
    """One CONNECT stream: decide, answer, then carry the tunnel to the app."""
    inputs = proxy.inputs
    state = inputs.store.state
    local = state.find_local(proxy.info, inputs.config.node_name)
    try:
        target = build_inbound_request(state, local, proxy.info, dst, request.method, request.authority)
    except InboundRejected as exc:
        logs.emit(logs.connection_failed(format_address(src), format_address(dst), "inbound", str(exc)))
        await stream.respond(exc.status, end_stream=True)
        return
    assert local is not None
    upstream = target.upstream
    conn = rbac.Connection(src[0], src[1], upstream[0], upstream[1], str(peer))
    source = state.workload_by_ip(src[0], inputs.config.network)
    service = guess_inbound_service(target.services, hbone.parse_forwarded_host(request.header(hbone.FORWARDED)),
                                    upstream[1], local)
    labels = labels_for(DESTINATION, source.raw if source is not None else None, str(peer), local.raw,
                        service.raw if service is not None else None, None, MUTUAL_TLS)
    access = logs.AccessLog.from_labels(labels, format_address(src), format_address(dst), str(target.authority),
                                        src_pod=source.name if source is not None else None, dst_pod=local.name)
    result = ConnectionResult(inputs.metrics, labels, access)
    try:
        decision = rbac.evaluate(state.policies, local.raw, conn)
        for entry in decision.log:
            logs.emit(logs.authz_decision(entry, inputs.config.authz_info_logging))
        if not decision.allowed:
            result.record(decision.error, DENY)
            await stream.respond(401, end_stream=True)
            return
        try:
            app = await sockets.connect(proxy.netns, upstream, source_ip=src[0])
        except OSError as exc:
            result.record(logs.connection_failed_error(exc), CONNECT)
            await stream.respond(503, end_stream=True)
            return
        try:
            await stream.respond(200, [(hbone.BAGGAGE, hbone.baggage(local))])
            error: str | None = logs.CONNECTION_DRAIN
            with proxy.connections.track(conn, local) as tracked:
                with tracked.scope:
                    error = await relay(stream, app, result.from_client, result.to_client)
            if tracked.closed_by_policy:
                stream.reset()
                result.record(rbac.POLICY_CHANGE, DENY)
            else:
                result.record(error)
        finally:
            await trio.aclose_forcefully(app)
    finally:
        if not result.recorded:
            result.record(logs.CONNECTION_DRAIN)
