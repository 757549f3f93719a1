"""istiod's HTTP port (8080): readiness and the debug endpoints, over HTTP/1.1.

- `/ready`: 200 once every watch has synced, the first config is built and (when istiod runs a CA)
  the CA accepts connections, else 503 — real istiod is not ready before its embedded CA.
- `/debug/config_dump`: the current version, config and subscribers.
- `/debug/syncz`: each subscriber and the version it was last sent.
- `/debug/authorizationz`: the policies as translated for ztunnel, with their status conditions.
"""

from __future__ import annotations

import trio

from components.common import http
from components.istiod.push import Publisher
from components.istiod.xds import split_address


def authorizationz(publisher: Publisher) -> dict:
    translation = publisher.translation
    if translation is None:
        return {"version": None, "policies": [], "status": []}
    return {"version": str(publisher.version), "policies": translation.config["policies"],
            "status": translation.policy_status}


async def _accepts(address: str | None) -> bool:
    if address is None:
        return True
    host, port = split_address(address)
    try:
        with trio.fail_after(1):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError):
        return False
    await stream.aclose()
    return True


def handler(publisher: Publisher, ready: trio.Event, ca_address: str | None = None) -> http.Handler:
    async def handle(request: http.Request) -> http.Response:
        if request.method not in ("GET", "HEAD"):
            return http.Response.json({"error": f"method {request.method} not allowed"}, 405)
        if request.path == "/ready":
            if ready.is_set() and await _accepts(ca_address):
                return http.Response.text("ready\n")
            return http.Response.text("not ready\n", 503)
        if request.path == "/debug/config_dump":
            return http.Response.json(publisher.config_dump(), indent=2)
        if request.path == "/debug/syncz":
            return http.Response.json(publisher.syncz(), indent=2)
        if request.path == "/debug/authorizationz":
            return http.Response.json(authorizationz(publisher), indent=2)
        return http.Response.json({"error": f"no such path {request.path}"}, 404)

    return handle


async def serve(address: str, publisher: Publisher, ready: trio.Event, ca_address: str | None = None,
                *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the HTTP port; `task_status` gets the bound `host:port`."""
    host, port = split_address(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    async with trio.open_nursery() as nursery:
        await nursery.start(http.serve, listeners, handler(publisher, ready, ca_address))
        task_status.started(f"{host}:{bound[1]}")
