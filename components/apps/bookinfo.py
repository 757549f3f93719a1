"""What Istio's Bookinfo services share: the headers they propagate, how they name the services
they call, their one-shot JSON client, and their listener.

Upstream (istio/istio samples/bookinfo/src) each service calls the next by its Kubernetes name and
port (`http://reviews:9080`, overridable by `<SERVICE>_HOSTNAME`, `<SERVICE>_SERVICE_PORT` and
`SERVICES_DOMAIN`) with one new connection per request, and copies the tracing and user headers
of the request it is serving onto the requests it makes.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any, Mapping

import trio

from components.common import http
from components.common.http import Request, Response

PORT = 9080

# The headers every Bookinfo service copies from its request onto the requests it makes.
PROPAGATED_HEADERS = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
    "traceparent", "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie", "authorization", "jwt",
)


def propagated(request: Request, names: tuple[str, ...] = PROPAGATED_HEADERS) -> list[tuple[str, str]]:
    """The request's headers among `names`, to send on with the calls it causes."""
    return [(key, value) for key, value in request.headers if key in names]


@dataclass(frozen=True)
class Backend:
    """A Bookinfo service as its callers address it."""

    host: str
    port: int

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] = os.environ) -> "Backend":
        prefix = service.upper()
        domain = env.get("SERVICES_DOMAIN")
        host = env.get(f"{prefix}_HOSTNAME", service) + (f".{domain}" if domain else "")
        return cls(host, int(env.get(f"{prefix}_SERVICE_PORT", PORT)))

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.authority}"


@dataclass(frozen=True)
class Reply:
    """What a call to another service gave: its status and JSON, or the reason it failed."""

    status: int | None
    body: Any = None
    size: int = 0
    failure: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


async def get_json(backend: Backend, path: str, headers: list[tuple[str, str]], timeout: float) -> Reply:
    """GET `path` on `backend` over a new connection; a refused, reset or late call is a Reply
    without status (as the upstream clients see an exception), never an exception."""
    try:
        with trio.fail_after(timeout):
            response = await http.request(backend.authority, "GET", path, headers=headers, host=backend.authority)
    except trio.TooSlowError:
        return Reply(None, failure=f"Read timed out. (read timeout={timeout:g})")
    except (OSError, http.HTTPError, trio.BrokenResourceError) as exc:
        return Reply(None, failure=str(exc) or type(exc).__name__)
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        body = None
    return Reply(response.status, body, len(response.body))


def json_response(text: str, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(status, [("Content-Type", content_type)], text.encode())


def pod_name(env: Mapping[str, str] = os.environ) -> str:
    """The pod's name as its programs see it: HOSTNAME, which the runtime sets to the pod's hostname."""
    return env.get("HOSTNAME") or socket.gethostname()


def env_flag(name: str, default: bool, env: Mapping[str, str] = os.environ) -> bool:
    """A boolean the way Java's `Boolean.valueOf` reads it: only "true" (any case) is true."""
    value = env.get(name)
    return default if value is None else value.lower() == "true"


async def serve(port: int, handler: http.Handler,
                *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `handler` on 0.0.0.0:`port` until cancelled; `task_status` gets the listeners."""
    listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
    async with trio.open_nursery() as nursery:
        await nursery.start(http.serve, listeners, handler)
        task_status.started(listeners)
