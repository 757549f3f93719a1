"""SOCKS5 handshake parsing and negotiation (ztunnel's socks5.rs subset)."""

from __future__ import annotations

import socket
import struct
from types import SimpleNamespace

import pytest
import trio

from components.ztunnel import socks5
from components.ztunnel.state import ProxyState, WorkloadInfo
from tests.unit.ztunnel_fixtures import config, service


def test_greeting_and_method_choice():
    assert socks5.parse_greeting(b"\x05\x02\x00\x02") == [0, 2]
    assert socks5.choose_method([0, 2]) == b"\x05\x00"
    with pytest.raises(socks5.SocksError, match="only unauthenticated"):
        socks5.choose_method([2])
    with pytest.raises(socks5.SocksError, match="unsupported version 4"):
        socks5.parse_greeting(b"\x04\x01\x00")
    with pytest.raises(socks5.SocksError, match="methods cannot be zero"):
        socks5.parse_greeting(b"\x05\x00")


def request(atyp: int, address: bytes, port: int, cmd: int = 1) -> bytes:
    return bytes([5, cmd, 0, atyp]) + address + struct.pack("!H", port)


def test_requests():
    ipv4 = request(1, socket.inet_aton("10.96.0.5"), 8000)
    assert socks5.request_length(ipv4[:5]) == len(ipv4)
    assert socks5.parse_request(ipv4) == socks5.SocksRequest(1, "10.96.0.5", 8000, False)
    ipv6 = request(4, socket.inet_pton(socket.AF_INET6, "fd00::1"), 80)
    assert socks5.parse_request(ipv6).host == "fd00::1"
    domain = request(3, b"\x07httpbin", 8000)
    assert socks5.request_length(domain[:5]) == len(domain)
    assert socks5.parse_request(domain) == socks5.SocksRequest(1, "httpbin", 8000, True)


@pytest.mark.parametrize("data,reply", [
    (request(1, b"\0\0\0\0", 80, cmd=2), socks5.COMMAND_NOT_SUPPORTED),
    (bytes([5, 1, 0, 9, 0]), socks5.ADDRESS_TYPE_NOT_SUPPORTED),
    (bytes([4, 1, 0, 1, 0]), socks5.GENERAL_FAILURE),
])
def test_bad_requests(data, reply):
    with pytest.raises(socks5.SocksError) as info:
        socks5.request_length(data[:5])
    assert info.value.reply == reply


def test_replies():
    assert socks5.reply(0) == b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    assert socks5.reply(4, ("fd00::1", 1))[:4] == b"\x05\x04\x00\x04"


def test_mesh_names_resolve_from_the_config():
    state = ProxyState(config([], [service("httpbin", "10.96.0.5", {8000: 8080})]))
    assert socks5.resolve_in_mesh(state, "httpbin", "default") == "10.96.0.5"
    assert socks5.resolve_in_mesh(state, "httpbin.default", "other") == "10.96.0.5"
    assert socks5.resolve_in_mesh(state, "httpbin.default.svc.cluster.local.", "x") == "10.96.0.5"
    assert socks5.resolve_in_mesh(state, "nosuch", "default") is None


async def test_negotiation_reads_exactly_the_handshake():
    state = ProxyState(config([], [service("httpbin", "10.96.0.5", {8000: 8080})]))
    proxy = SimpleNamespace(info=WorkloadInfo("sleep-1", "default", "sleep"),
                            inputs=SimpleNamespace(store=SimpleNamespace(state=state)))
    a, b = trio.socket.socketpair()
    client, server = trio.SocketStream(a), trio.SocketStream(b)
    async with client, server:
        await client.send_all(b"\x05\x01\x00" + request(3, b"\x07httpbin", 8000) + b"GET / HTTP/1.1\r\n")
        target = await socks5.negotiate(proxy, server, ("127.0.0.1", 5555))
        assert target == ("10.96.0.5", 8000)
        assert await client.receive_some(2) == b"\x05\x00"
        assert await server.receive_some() == b"GET / HTTP/1.1\r\n"
