"""The discovery port (istiod's 15010): plaintext HTTP/2 (h2c, prior knowledge).

`GET /v1/ambient?node=<k8s node>&id=<subscriber id>` answers 200 and streams JSON lines: the
current config at once, then every new version. `GET /debug/config_dump` is the same JSON as on
the HTTP port.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from functools import partial
from typing import Any

import trio

from components.common.h2conn import H2Request, H2Stream, serve_h2
from components.istiod.push import Publisher

log = logging.getLogger("istiod.ads")

NDJSON = "application/x-ndjson"


def split_address(address: str) -> tuple[str, int]:
    """`0.0.0.0:15010` or `[::]:15010` -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def _peer(stream: trio.abc.Stream) -> str:
    sock = getattr(stream, "socket", None)
    try:
        host, port = sock.getpeername()[:2] if sock is not None else ("", 0)
    except OSError:
        return "unknown"
    return f"{host}:{port}"


async def _respond_json(stream: H2Stream, status: int, body: Any) -> None:
    await stream.respond(status, [("content-type", "application/json")])
    await stream.send_all(json.dumps(body, indent=2).encode() + b"\n")
    await stream.send_eof()


async def _subscribe(publisher: Publisher, peer: str, query: dict[str, list[str]], stream: H2Stream) -> None:
    node = (query.get("node") or [""])[-1]
    if not node:
        await _respond_json(stream, 400, {"error": "the node query parameter is required"})
        return
    subscriber = publisher.connect((query.get("id") or [""])[-1] or node, node, peer)
    log.info("ADS: new connection for node:%s (k8s node %s)", subscriber.id, node)
    try:
        await stream.respond(200, [("content-type", NDJSON)])
        version = 0
        while True:
            version, data = await publisher.newer_than(version)
            await stream.send_all(data)
            publisher.sent(subscriber, version)
    finally:
        publisher.disconnect(subscriber)
        log.info('ADS: "%s" %s terminated', peer, subscriber.id)


async def _handle(publisher: Publisher, peer: str, request: H2Request, stream: H2Stream) -> None:
    url = urllib.parse.urlsplit(request.path or "/")
    if request.method != "GET":
        await _respond_json(stream, 405, {"error": f"method {request.method} not allowed"})
    elif url.path == "/v1/ambient":
        await _subscribe(publisher, peer, urllib.parse.parse_qs(url.query), stream)
    elif url.path == "/debug/config_dump":
        await _respond_json(stream, 200, publisher.config_dump())
    else:
        await _respond_json(stream, 404, {"error": f"no such path {url.path}"})


async def serve(address: str, publisher: Publisher,
                *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the discovery port; `task_status` gets the bound `host:port`."""
    host, port = split_address(address)
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def on_connection(transport: trio.abc.Stream) -> None:
        await serve_h2(transport, partial(_handle, publisher, _peer(transport)))

    bound = listeners[0].socket.getsockname()
    task_status.started(f"{host}:{bound[1]}")
    await trio.serve_listeners(on_connection, listeners)
