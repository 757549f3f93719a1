"""Sockets in pods' network namespaces, with the options ztunnel sets on them.

A socket belongs to the netns it was created in, so the thread steps into the pod's netns (by
the fd istio-cni sent) around `socket()` and bind only, then returns to ztunnel's own; every
socket made for a pod carries SO_MARK 0x539 so the pod's redirection rules let it pass. Original
destinations come from SO_ORIGINAL_DST (REDIRECT) or the local address (TPROXY).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

import trio

from components.common import netns as netns_mod
from components.common.addresses import Address
from components.ztunnel.config import CONNECT_TIMEOUT, INPOD_MARK, LISTEN_BACKLOG

SO_ORIGINAL_DST = 80            # netfilter's, at SOL_IP (and IP6T_SO_ORIGINAL_DST at SOL_IPV6)
IP_TRANSPARENT = 19
IP_FREEBIND = 15
IPV6_TRANSPARENT = 75
IPV6_FREEBIND = 78
SO_MARK = getattr(socket, "SO_MARK", 36)
KEEPALIVE_TIME = 180
KEEPALIVE_INTERVAL = 180
KEEPALIVE_RETRIES = 9



def canonical_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 address as plain IPv4 (what dual-stack sockets report); others as is."""
    try:
        parsed = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def canonical(address: tuple) -> Address:
    """(ip, port) from any sockaddr tuple, IPv4-mapped addresses unmapped."""
    return canonical_ip(address[0]), int(address[1])


def parse_original_dst(raw: bytes) -> Address:
    """A `struct sockaddr_in` (16 bytes) or `sockaddr_in6` (28 bytes) from SO_ORIGINAL_DST."""
    if len(raw) < 2:
        raise ValueError("sockaddr too short")
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return canonical_ip(socket.inet_ntop(socket.AF_INET6, raw[8:24])), port
    raise ValueError(f"unexpected sockaddr family {family} ({len(raw)} bytes)")


def original_dst(sock: socket.socket | trio.socket.SocketType) -> Address | None:
    """The pre-NAT destination of a redirected connection, or None if it was not NATed."""
    local = canonical(sock.getsockname())
    attempts = [(socket.IPPROTO_IP, 16)]
    if sock.family == socket.AF_INET6 and ":" in local[0]:
        attempts = [(socket.IPPROTO_IPV6, 28)]
    for level, size in attempts:
        try:
            return parse_original_dst(sock.getsockopt(level, SO_ORIGINAL_DST, size))
        except (OSError, ValueError):
            continue
    return None


def original_dst_or_local(sock: socket.socket | trio.socket.SocketType) -> Address:
    """ztunnel's `orig_dst_addr_or_default`: SO_ORIGINAL_DST, else the local address (TPROXY)."""
    return original_dst(sock) or canonical(sock.getsockname())


def set_keepalive(sock: socket.socket | trio.socket.SocketType) -> None:
    """ztunnel's SocketConfig: keepalive after 180 s idle, every 180 s, 9 probes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_TIME)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_RETRIES)


def set_transparent(sock: socket.socket, family: int) -> None:
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)


def set_freebind(sock: socket.socket, family: int) -> None:
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)


class _Default:
    """The mark of the netns the socket is made in."""


DEFAULT = _Default()


def family_of(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class Netns:
    """A network namespace held open by fd (a pod's, from ZDS), or None for our own; `mark` is
    what sockets made in it carry (None: unmarked, for tests without CAP_NET_ADMIN)."""

    def __init__(self, fd: int | None, mark: int | None = INPOD_MARK) -> None:
        self.fd = fd
        self.mark = mark
        info = os.stat("/proc/thread-self/ns/net") if fd is None else os.fstat(fd)
        self.id = (info.st_dev, info.st_ino)

    @classmethod
    def current(cls, mark: int | None = INPOD_MARK) -> "Netns":
        return cls(None, mark)

    def entered(self) -> ContextManager[None]:
        """The calling thread in this netns for the body (which must not yield)."""
        return nullcontext() if self.fd is None else netns_mod.entered_fd(self.fd)

    def socket(self, family: int, mark: int | None | _Default = DEFAULT) -> socket.socket:
        """A TCP socket in this netns, marked so the pod's rules do not capture it again."""
        if isinstance(mark, _Default):
            mark = self.mark
        with self.entered():
            sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if mark is not None:
                sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        except BaseException:
            sock.close()
            raise
        return sock

    def has_ipv6(self) -> bool:
        """Whether `::1` is usable on the netns' loopback (IPv6 not disabled there)."""
        with self.entered():
            try:
                probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            except OSError:
                return False
        with probe:
            try:
                probe.bind(("::1", 0))
            except OSError:
                return False
        return True

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def listener_socket(netns: Netns, host: str, port: int, *, transparent: bool,
                    mark: int | None | _Default = DEFAULT) -> trio.socket.SocketType:
    """A listening socket in `netns` on host:port, with SO_REUSEPORT (a restarted ztunnel binds
    beside the old one), SO_MARK and, for captured ports, IP_TRANSPARENT. `::` is dual-stack."""
    family = family_of(host)
    sock = netns.socket(family, mark)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if transparent:
            set_transparent(sock, family)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return trio.socket.from_stdlib_socket(sock)


@contextmanager
def _closing_on_error(sock: socket.socket) -> Iterator[socket.socket]:
    try:
        yield sock
    except BaseException:
        sock.close()
        raise


async def connect(netns: Netns, destination: Address, *, source_ip: str | None = None,
                  mark: int | None | _Default = DEFAULT, timeout: float = CONNECT_TIMEOUT) -> trio.SocketStream:
    """TCP from a socket in `netns` to `destination`, optionally from `source_ip` (ztunnel's
    `freebind_connect`: IP_TRANSPARENT + IP_FREEBIND and bind (source_ip, 0), so the app sees the
    real client; skipped when source and destination are the same address).

    A timeout raises OSError(ETIMEDOUT).
    """
    ip, port = destination
    family = family_of(ip)
    sock = netns.socket(family, mark)
    with _closing_on_error(sock):
        if source_ip is not None and canonical_ip(source_ip) != canonical_ip(ip):
            set_transparent(sock, family)
            set_freebind(sock, family)
            sock.bind((canonical_ip(source_ip), 0))
        set_keepalive(sock)
        sock.setblocking(False)
        tsock = trio.socket.from_stdlib_socket(sock)
        with trio.move_on_after(timeout) as scope:
            try:
                await tsock.connect((ip, port))
            except OSError as exc:
                if exc.errno is None:
                    raise
                raise OSError(exc.errno, os.strerror(exc.errno)) from exc
        if scope.cancelled_caught:
            raise OSError(errno.ETIMEDOUT, "connection timed out")
    return trio.SocketStream(tsock)
