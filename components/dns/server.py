"""The DNS listeners (UDP and TCP on the same port) and CoreDNS's HTTP side ports.

HTTP: `/health` (the health plugin, 8080), `/ready` (the ready plugin, 8181: 200 once both
watches have synced) and `/metrics` (the prometheus plugin, 9153).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import trio
from dnslib import CLASS, QTYPE, RCODE, DNSError, DNSRecord

from components.common import http
from components.dns.cluster import ClusterState
from components.dns.message import edns, format_error, pack_for, respond, udp_limit
from components.dns.metrics import Metrics

READ_SIZE = 65536
TCP_IDLE_TIMEOUT = 10.0

query_log = logging.getLogger("query")
ready_log = logging.getLogger("plugin/ready")


def split_address(address: str) -> tuple[str, int]:
    """`0.0.0.0:53` or `[::]:53` -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def _flags(reply: DNSRecord) -> str:
    header = reply.header
    names = [("qr", header.qr), ("aa", header.aa), ("tc", header.tc), ("rd", header.rd), ("ra", header.ra)]
    return ",".join(name for name, value in names if value)


def log_line(peer: Any, proto: str, request: DNSRecord, size: int, reply: DNSRecord, reply_size: int,
             seconds: float) -> str:
    """The log plugin's common format:
    `10.244.0.1:52335 - 40191 "A IN name. udp 54 false 512" NOERROR qr,aa,rd 106 0.000227979s`."""
    host, port = (peer[0], peer[1]) if isinstance(peer, tuple) else ("-", 0)
    opt = edns(request)
    do = bool(opt is not None and opt.ttl & 0x8000)
    q = request.q
    return (f'{host}:{port} - {request.header.id} "{QTYPE.get(q.qtype)} {CLASS.get(q.qclass)} {q.qname} {proto} '
            f'{size} {str(do).lower()} {udp_limit(request)}" {RCODE.get(reply.header.rcode)} {_flags(reply)} '
            f"{reply_size} {seconds:.9f}s")


class DnsServer:
    def __init__(self, state: ClusterState, metrics: Metrics, log_queries: bool = False):
        self.state = state
        self.metrics = metrics
        self.log_queries = log_queries

    def handle(self, data: bytes, proto: str, peer: Any) -> bytes | None:
        """The reply to one message (None: nothing worth answering)."""
        started = time.perf_counter()
        try:
            request = DNSRecord.parse(data)
        except DNSError:
            return format_error(data)
        if request.header.qr:
            return None
        reply = respond(self.state.records(), request)
        out = pack_for(reply, request, proto)
        family = 2 if isinstance(peer, tuple) and ":" in str(peer[0]) else 1
        qtype = QTYPE.get(request.q.qtype) if request.questions else "other"
        self.metrics.observe(proto, family, str(qtype), str(RCODE.get(reply.header.rcode)))
        if self.log_queries and request.questions:
            query_log.info(log_line(peer, proto, request, len(data), reply, len(out),
                                    time.perf_counter() - started))
        return out

    async def serve_udp(self, host: str, port: int,
                        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
            await sock.bind((host, port))
            task_status.started()
            while True:
                data, peer = await sock.recvfrom(READ_SIZE)
                out = self.handle(data, "udp", peer)
                if out is not None:
                    try:
                        await sock.sendto(out, peer)
                    except OSError:
                        pass

    async def serve_tcp(self, host: str, port: int,
                        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        await trio.serve_listeners(self.tcp_connection, listeners, task_status=task_status)

    async def tcp_connection(self, stream: trio.abc.Stream) -> None:
        """Length-prefixed messages (RFC 1035 4.2.2) until the client closes or idles out."""
        sock = getattr(stream, "socket", None)
        peer = sock.getpeername() if sock is not None else None
        reader = _Reader(stream)
        try:
            async with stream:
                while True:
                    message = None
                    with trio.move_on_after(TCP_IDLE_TIMEOUT):
                        prefix = await reader.exactly(2)
                        if prefix is not None:
                            message = await reader.exactly(int.from_bytes(prefix, "big"))
                    if message is None:
                        return
                    out = self.handle(message, "tcp", peer)
                    if out is None:
                        return
                    await stream.send_all(len(out).to_bytes(2, "big") + out)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return


class _Reader:
    def __init__(self, stream: trio.abc.Stream):
        self.stream = stream
        self.buffer = bytearray()

    async def exactly(self, size: int) -> bytes | None:
        """The next `size` bytes, or None if the stream ends first."""
        while len(self.buffer) < size:
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                return None
            self.buffer += data
        chunk = bytes(self.buffer[:size])
        del self.buffer[:size]
        return chunk


def http_handler(state: ClusterState, metrics: Metrics) -> http.Handler:
    """One handler for the three side ports (each path is meaningful on its own port only in CoreDNS;
    answering all three everywhere is harmless)."""

    async def handler(request: http.Request) -> http.Response:
        if request.path == "/health":
            return http.Response.text("OK")
        if request.path == "/ready":
            if state.synced.is_set():
                return http.Response.text("OK")
            ready_log.info('Still waiting on: "kubernetes"')
            return http.Response.text('Still waiting on: "kubernetes"', status=503)
        if request.path == "/metrics":
            return http.Response(200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                                 metrics.exposition())
        return http.Response.text("404 page not found\n", status=404)

    return handler


async def serve_http(address: str, handler: http.Handler,
                     *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    host, port = split_address(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    await http.serve(listeners, handler, task_status=task_status)
