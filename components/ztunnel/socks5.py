"""SOCKS5 on 127.0.0.1:15080 in each pod (ztunnel's `socks5.rs`): the minimal subset common
clients need, no authentication, CONNECT to an IPv4, IPv6 or domain address, then the same path
as a captured outbound connection.

Success is answered once the handshake is complete (before the upstream connection, as ztunnel
does). Domain names are resolved from istiod's config (a service hostname, also relative to the
client's namespace), then by the system resolver. Handshake bytes are read exactly, so data a
client sends right after its request stays for the tunnel.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass

import trio

from components.ztunnel import outbound, sockets
from components.ztunnel.config import HANDSHAKE_TIMEOUT
from components.ztunnel.proxy import WorkloadProxy
from components.ztunnel.sockets import Address
from components.ztunnel.state import ProxyState

log = logging.getLogger("components.ztunnel.proxy.socks5")

VERSION = 5
NO_AUTH = 0
NO_ACCEPTABLE_METHODS = 0xFF
CMD_CONNECT = 1
ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4

SUCCEEDED = 0
GENERAL_FAILURE = 1
HOST_UNREACHABLE = 4
COMMAND_NOT_SUPPORTED = 7
ADDRESS_TYPE_NOT_SUPPORTED = 8


class SocksError(Exception):
    """A refused handshake; `reply` is the SOCKS5 reply code to send (None: just close)."""

    def __init__(self, message: str, reply: int | None = GENERAL_FAILURE) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class SocksRequest:
    command: int
    host: str
    port: int
    is_domain: bool


def parse_greeting(data: bytes) -> list[int]:
    """`VER NMETHODS METHODS...` (complete) → the methods offered."""
    if len(data) < 2:
        raise SocksError("short greeting", None)
    if data[0] != VERSION:
        raise SocksError(f"unsupported version {data[0]}", None)
    if data[1] == 0:
        raise SocksError("methods cannot be zero", None)
    methods = list(data[2:2 + data[1]])
    if len(methods) != data[1]:
        raise SocksError("short greeting", None)
    return methods


def choose_method(methods: list[int]) -> bytes:
    """The method selection reply; only 'no authentication' is supported."""
    if NO_AUTH not in methods:
        raise SocksError("only unauthenticated is supported", None)
    return bytes([VERSION, NO_AUTH])


def request_length(head: bytes) -> int:
    """The full length of a request from its first 5 bytes (VER CMD RSV ATYP and one more)."""
    if len(head) < 5:
        raise ValueError("need 5 bytes")
    if head[0] != VERSION:
        raise SocksError(f"unsupported version {head[0]}")
    if head[1] != CMD_CONNECT:
        raise SocksError(f"unsupported command {head[1]}", COMMAND_NOT_SUPPORTED)
    if head[3] == ATYP_IPV4:
        return 4 + 4 + 2
    if head[3] == ATYP_IPV6:
        return 4 + 16 + 2
    if head[3] == ATYP_DOMAIN:
        return 4 + 1 + head[4] + 2
    raise SocksError(f"unsupported address type {head[3]}", ADDRESS_TYPE_NOT_SUPPORTED)


def parse_request(data: bytes) -> SocksRequest:
    """A complete CONNECT request → where to."""
    expected = request_length(data[:5])
    if len(data) != expected:
        raise SocksError("malformed request")
    atyp = data[3]
    (port,) = struct.unpack("!H", data[-2:])
    if atyp == ATYP_IPV4:
        return SocksRequest(data[1], socket.inet_ntop(socket.AF_INET, data[4:8]), port, False)
    if atyp == ATYP_IPV6:
        return SocksRequest(data[1], sockets.canonical_ip(socket.inet_ntop(socket.AF_INET6, data[4:20])), port, False)
    try:
        domain = data[5:5 + data[4]].decode()
    except UnicodeDecodeError:
        raise SocksError(f"domain is not a valid utf8 string: {data[5:5 + data[4]]!r}") from None
    if not domain:
        raise SocksError("empty domain")
    return SocksRequest(data[1], domain, port, True)


def reply(code: int, address: Address = ("0.0.0.0", 0)) -> bytes:
    ip, port = address
    if ":" in ip:
        return bytes([VERSION, code, 0, ATYP_IPV6]) + socket.inet_pton(socket.AF_INET6, ip) + struct.pack("!H", port)
    return bytes([VERSION, code, 0, ATYP_IPV4]) + socket.inet_pton(socket.AF_INET, ip) + struct.pack("!H", port)


def resolve_in_mesh(state: ProxyState, name: str, namespace: str, want_v6: bool = False) -> str | None:
    """A service hostname's VIP from istiod's config: the name as given, or with the client's
    namespace and the cluster suffix (as a pod's search path would complete it)."""
    name = name.rstrip(".").lower()
    candidates = [name, f"{name}.svc.cluster.local", f"{name}.{namespace}.svc.cluster.local"]
    for candidate in candidates:
        service = state.service_by_hostname(candidate, namespace)
        if service is not None and service.vips:
            for _network, ip in service.vips:
                if (":" in ip) == want_v6:
                    return ip
            return service.vips[0][1]
    return None


async def _read_exact(stream: trio.SocketStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            raise SocksError("connection closed during handshake", None)
        data += chunk
    return bytes(data)


async def negotiate(proxy: WorkloadProxy, stream: trio.SocketStream, client: Address) -> Address:
    """Run the handshake up to the request; the target address (domain resolved)."""
    head = await _read_exact(stream, 2)
    methods = await _read_exact(stream, head[1]) if head[0] == VERSION and head[1] else b""
    await stream.send_all(choose_method(parse_greeting(head + methods)))
    first = await _read_exact(stream, 5)
    rest = await _read_exact(stream, request_length(first) - 5)
    request = parse_request(first + rest)
    if not request.is_domain:
        return request.host, request.port
    namespace = proxy.info.namespace
    ip = resolve_in_mesh(proxy.inputs.store.state, request.host, namespace, ":" in client[0])
    if ip is None:
        family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
        try:
            infos = await trio.socket.getaddrinfo(request.host, request.port, family, socket.SOCK_STREAM)
        except OSError as exc:
            raise SocksError(f"failed to resolve {request.host}: {exc}", HOST_UNREACHABLE) from exc
        if not infos:
            raise SocksError(f"no addresses for {request.host}", HOST_UNREACHABLE)
        ip = str(ipaddress.ip_address(infos[0][4][0]))
    return ip, request.port


async def handle(proxy: WorkloadProxy, stream: trio.SocketStream) -> None:
    client = sockets.canonical(stream.socket.getpeername())
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            target = await negotiate(proxy, stream, client)
            await stream.send_all(reply(SUCCEEDED))
    except SocksError as exc:
        log.warning("failed to negotiate socks connection: %s", exc)
        if exc.reply is not None:
            with trio.move_on_after(1):
                try:
                    await stream.send_all(reply(exc.reply))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        return
    except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    await outbound.proxy_to(proxy, stream, client, target)
