"""Connections from the waypoint to the endpoint it chose: HBONE with the waypoint's own identity
(a CONNECT to `podIP:port` on a pooled mTLS HTTP/2 connection to `podIP:15008`, which the
destination node's ztunnel terminates), or plain TCP to an endpoint outside the mesh."""

from __future__ import annotations

import trio

from components.common.addresses import format_address
from components.common.h2conn import CLIENT_CONFIG, H2ClientConnection
from components.common.hbonepool import HbonePool, PoolKey
from components.common.tls import Identity, TLSError, tls_connect
from components.waypoint.identity import OwnCertificate
from components.waypoint.mesh import HBONE, Workload
from components.waypoint.settings import HBONE_PORT

CONNECT_TIMEOUT = 10.0


class UpstreamError(Exception):
    """No stream to the endpoint; the text goes into Envoy's 503 body and access log."""


class Upstreams:
    """Run `await nursery.start(upstreams.run)` before use."""

    def __init__(self, certificate: OwnCertificate, own_ip: str) -> None:
        self.certificate = certificate
        self.own_ip = own_ip
        self.pool = HbonePool(self._connect)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.pool.run(task_status=task_status)

    async def _connect(self, key: PoolKey) -> H2ClientConnection:
        context = self.certificate.client
        if context is None:
            raise UpstreamError("no certificate yet")
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                tcp = await trio.open_tcp_stream(*key.dst)
                stream, _peer = await tls_connect(tcp, context, key.dst_ids)
        except (OSError, trio.TooSlowError, TLSError) as exc:
            raise UpstreamError(f"connection failure: {exc}") from exc
        return H2ClientConnection(stream, CLIENT_CONFIG)

    async def open(self, endpoint: Workload, ip: str, port: int) -> trio.abc.Stream:
        """A byte stream to the endpoint's `ip:port`."""
        if endpoint.protocol != HBONE:
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    return await trio.open_tcp_stream(ip, port)
            except (OSError, trio.TooSlowError) as exc:
                raise UpstreamError(f"connection failure: {exc}") from exc
        cert = self.certificate.current
        if cert is None:
            raise UpstreamError("no certificate yet")
        key = PoolKey(cert.identity, (Identity.parse(endpoint.spiffe_id),), (ip, HBONE_PORT), self.own_ip)
        try:
            stream = await self.pool.open_connect(key, format_address((ip, port)), [])
            with trio.fail_after(CONNECT_TIMEOUT):
                status, _headers = await stream.response()
        except (trio.BrokenResourceError, trio.TooSlowError, OSError) as exc:
            raise UpstreamError(f"connection failure: {exc}") from exc
        if status != 200:
            await stream.aclose()
            raise UpstreamError(f"connection failure: HBONE CONNECT answered {status}")
        return stream
