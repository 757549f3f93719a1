"""Outbound (15001, and SOCKS5's connections): what the pod's app sends, proxied to its destination.

The original destination comes from SO_ORIGINAL_DST; the source workload is the pod itself. The
route (routing.py) says HBONE, plain TCP to a workload, or passthrough. HBONE goes through the
pool: an HTTP/2 CONNECT to `podIP:targetPort` over mTLS to `podIP:15008`, and anything but 200
fails the connection (`http status: 401 Unauthorized`). On any failure the client's socket is just
closed, as ztunnel drops it: the kernel resets it when the client's request is still unread there
(curl: exit 56), else the client reads the end of the stream.
"""

from __future__ import annotations

import logging

import h2.exceptions
import trio

from components.common.h2conn import H2Stream
from components.ztunnel import hbone, logs, routing, sockets
from components.ztunnel.config import HANDSHAKE_TIMEOUT
from components.ztunnel.metrics import MUTUAL_TLS, SOURCE, UNKNOWN, labels_for
from components.common.hbonepool import PoolKey
from components.ztunnel.proxy import WorkloadProxy
from components.ztunnel.relay import relay
from components.ztunnel.results import H2_HANDSHAKE_FAILURE, ConnectionResult, ProxyError
from components.common.addresses import Address, format_address
from components.ztunnel.state import Workload

log = logging.getLogger("components.ztunnel.proxy.outbound")


async def handle(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    """A connection accepted on 15001."""
    source_addr = sockets.canonical(stream.socket.getpeername())
    destination = sockets.original_dst_or_local(stream.socket)
    await proxy_to(proxy, stream, source_addr, destination)


async def proxy_to(proxy: WorkloadProxy, stream: trio.SocketStream, source_addr: Address,
                   destination: Address) -> None:
    """Proxy one client connection to its original destination."""
    closed = proxy.count_socket(SOURCE)
    try:
        await _proxy_to(proxy, stream, source_addr, destination)
    finally:
        closed()


def _early_deny(source_addr: Address, destination: Address, error: str) -> None:
    logs.emit(logs.connection_failed(format_address(source_addr), format_address(destination), "outbound", error))


async def _proxy_to(proxy: WorkloadProxy, stream: trio.SocketStream, source_addr: Address,
                    destination: Address) -> None:
    inputs = proxy.inputs
    if routing.is_self_call(destination):
        _early_deny(source_addr, destination, logs.SELF_CALL)
        return
    try:
        source = await proxy.local_workload()
        route = routing.decide(inputs.store.state, source, destination, network=inputs.config.network,
                               rng=inputs.rng)
    except (ProxyError, routing.RouteError) as exc:
        _early_deny(source_addr, destination, str(exc))
        return

    trace = hbone.TraceParent.new()
    result = _result(proxy, source, route, source_addr)
    if logs.enabled(logs.OUTBOUND, logging.DEBUG):
        via = "HBONE" if route.hbone else "TCP"
        target = route.hbone_target or route.actual_destination
        logs.emit(logs.Event(logging.DEBUG, logs.OUTBOUND,
                             f"proxy to {format_address(target)} using {via} via "
                             f"{format_address(route.actual_destination)} type {route.kind}")
                  .within(logs.proxy_span(proxy.info.namespace, proxy.info.name), logs.outbound_span(trace.id)))
    try:
        try:
            if route.hbone:
                upstream: trio.abc.HalfCloseableStream = await _open_hbone(proxy, source, route, source_addr, trace)
            else:
                upstream = await _open_tcp(proxy, route.actual_destination)
        except ProxyError as exc:
            result.record(str(exc), exc.flag)
            return
        try:
            error = await relay(stream, upstream, result.from_client, result.to_client)
        finally:
            await trio.aclose_forcefully(upstream)
        result.record(error)
    finally:
        if not result.recorded:
            result.record(logs.CONNECTION_DRAIN)


def _result(proxy: WorkloadProxy, source: Workload, route: routing.Route, source_addr: Address) -> ConnectionResult:
    destination = route.destination_workload
    service = route.destination_service
    labels = labels_for(SOURCE, source.raw, str(source.identity) if route.hbone else None,
                        destination.raw if destination is not None else None,
                        service.raw if service is not None else None, None,
                        MUTUAL_TLS if route.hbone else UNKNOWN)
    access = logs.AccessLog.from_labels(
        labels, format_address(source_addr), format_address(route.actual_destination),
        format_address(route.hbone_target) if route.hbone_target is not None else None,
        src_pod=source.name, dst_pod=destination.name if destination is not None else None)
    return ConnectionResult(proxy.inputs.metrics, labels, access)


async def _open_tcp(proxy: WorkloadProxy, destination: Address) -> trio.SocketStream:
    """Plain TCP from the pod (no source spoofing) to a TCP workload or a passthrough address."""
    try:
        return await sockets.connect(proxy.netns, destination)
    except OSError as exc:
        raise ProxyError(f"io error: {logs.os_error(exc)}") from exc


async def _open_hbone(proxy: WorkloadProxy, source: Workload, route: routing.Route, source_addr: Address,
                      trace: hbone.TraceParent) -> H2Stream:
    """A CONNECT tunnel to the route's target on a pooled HBONE connection; 200 or ProxyError."""
    assert route.hbone_target is not None
    key = PoolKey(source.identity, route.upstream_sans, route.actual_destination, source_addr[0])
    headers = hbone.connect_headers(source, source_addr, route.destination_service, trace)
    try:
        stream = await proxy.pool.open_connect(key, format_address(route.hbone_target), headers)
    except (trio.BrokenResourceError, h2.exceptions.H2Error) as exc:
        raise ProxyError(f"h2 failed: {exc}", H2_HANDSHAKE_FAILURE) from exc
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            status, _headers = await stream.response()
    except trio.TooSlowError as exc:
        await stream.aclose()
        raise ProxyError("h2 failed: no response to CONNECT in time", H2_HANDSHAKE_FAILURE) from exc
    except trio.BrokenResourceError as exc:
        await stream.aclose()
        raise ProxyError(f"h2 failed: {exc}", H2_HANDSHAKE_FAILURE) from exc
    if status != 200:
        await stream.aclose()
        raise ProxyError(f"http status: {hbone.status_text(status)}")
    return stream
