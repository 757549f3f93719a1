"""Readiness checks, made from the node's network namespace as the kubelet makes them."""

from __future__ import annotations

import socket
from typing import Any

import h11
import trio

from components.common import netns

PROBE_TIMEOUT = 1.0


async def tcp_open(node_netns: str, ip: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Does ip:port accept a TCP connection from the node?"""
    stream = await _connect(node_netns, ip, port, timeout)
    if stream is None:
        return False
    await stream.aclose()
    return True


async def _connect(node_netns: str, ip: str, port: int, timeout: float) -> trio.SocketStream | None:
    sock = trio.socket.from_stdlib_socket(netns.socket_in(node_netns, socket.AF_INET, socket.SOCK_STREAM))
    with trio.move_on_after(timeout):
        try:
            await sock.connect((ip, port))
            return trio.SocketStream(sock)
        except OSError:
            pass
    sock.close()
    return None


async def http_ok(node_netns: str, ip: str, port: int, path: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Does GET path answer with a status in 200..399, as a kubelet httpGet probe requires?"""
    stream = await _connect(node_netns, ip, port, timeout)
    if stream is None:
        return False
    conn = h11.Connection(h11.CLIENT)
    try:
        with trio.move_on_after(timeout):
            await stream.send_all(conn.send(h11.Request(method="GET", target=path, headers=[
                ("host", f"{ip}:{port}"), ("user-agent", "kube-probe/1.29"), ("connection", "close")])))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(4096)
                    if not data:
                        return False
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    return 200 <= event.status_code < 400
                else:
                    return False
        return False
    except (OSError, h11.RemoteProtocolError, trio.BrokenResourceError):
        return False
    finally:
        await stream.aclose()


def _port_number(port: Any, container: dict[str, Any]) -> int | None:
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    try:
        return int(port)
    except (TypeError, ValueError):
        return None


async def ready(node_netns: str, ip: str, container: dict[str, Any]) -> bool:
    """A container's readiness: its readinessProbe if it has one, else every declared TCP port open."""
    probe = container.get("readinessProbe")
    if probe:
        if "tcpSocket" in probe:
            port = _port_number(probe["tcpSocket"].get("port"), container)
            return port is not None and await tcp_open(node_netns, ip, port)
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = _port_number(get.get("port"), container)
            return port is not None and await http_ok(node_netns, ip, port, get.get("path", "/"))
        return True
    for declared in container.get("ports") or []:
        if declared.get("protocol", "TCP") == "TCP" and declared.get("containerPort"):
            if not await tcp_open(node_netns, ip, int(declared["containerPort"])):
                return False
    return True
