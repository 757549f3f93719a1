"""Inbound plaintext (15006): TCP to the pod from outside the mesh, captured by the pod's rules.

The original destination is the transparent socket's local address (TPROXY; SO_ORIGINAL_DST when
the rules REDIRECT). Authorization runs with no identity, so only IP and port rules can allow it
(istio/ztunnel#1901); a denied client's socket is closed with no HTTP answer (reset by the kernel,
as its request is unread). An allowed one is connected to the app from its own address, like
HBONE traffic.
"""

from __future__ import annotations

import trio

from components.ztunnel import logs, rbac, sockets
from components.ztunnel.config import ILLEGAL_PORTS
from components.ztunnel.inbound import guess_inbound_service
from components.ztunnel.metrics import DESTINATION, UNKNOWN, labels_for
from components.ztunnel.proxy import WorkloadProxy
from components.ztunnel.relay import relay
from components.ztunnel.results import CONNECT, DENY, ConnectionResult, ProxyError
from components.common.addresses import format_address


async def handle(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    closed = proxy.count_socket(DESTINATION)
    try:
        await _serve(proxy, stream)
    finally:
        closed()


async def _serve(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    inputs = proxy.inputs
    src = sockets.canonical(stream.socket.getpeername())
    dst = sockets.original_dst_or_local(stream.socket)
    if dst[1] in ILLEGAL_PORTS:
        logs.emit(logs.connection_failed(format_address(src), format_address(dst), "inbound", logs.SELF_CALL))
        return
    try:
        local = await proxy.local_workload()
    except ProxyError as exc:
        logs.emit(logs.connection_failed(format_address(src), format_address(dst), "inbound", str(exc)))
        return
    state = inputs.store.state
    conn = rbac.Connection(src[0], src[1], dst[0], dst[1], None)
    source = state.workload_by_ip(src[0], inputs.config.network)
    service = guess_inbound_service(state.services_for_workload(local), None, dst[1], local)
    labels = labels_for(DESTINATION, source.raw if source is not None else None, None, local.raw,
                        service.raw if service is not None else None, None, UNKNOWN)
    access = logs.AccessLog.from_labels(labels, format_address(src), format_address(dst),
                                        src_pod=source.name if source is not None else None, dst_pod=local.name)
    result = ConnectionResult(inputs.metrics, labels, access)
    try:
        decision = rbac.evaluate(state.policies, local.raw, conn)
        for entry in decision.log:
            logs.emit(logs.authz_decision(entry, inputs.config.authz_info_logging))
        if not decision.allowed:
            result.record(decision.error, DENY)
            return
        try:
            app = await sockets.connect(proxy.netns, dst, source_ip=src[0])
        except OSError as exc:
            result.record(logs.connection_failed_error(exc), CONNECT)
            return
        try:
            error: str | None = logs.CONNECTION_DRAIN
            with proxy.connections.track(conn, local) as tracked:
                with tracked.scope:
                    error = await relay(stream, app, result.from_client, result.to_client)
            if tracked.closed_by_policy:
                result.record(rbac.POLICY_CHANGE, DENY)
            else:
                result.record(error)
        finally:
            await trio.aclose_forcefully(app)
    finally:
        if not result.recorded:
            result.record(logs.CONNECTION_DRAIN)
