"""ztunnel's HTTP endpoints in its own netns: metrics (15020), readiness (15021) and admin (15000).

- `GET :15020/metrics` or `/stats/prometheus`: the Prometheus text of metrics.py.
- `GET :15021/healthz/ready`: 200 `ready` once every readiness task is done, else 500 naming the
  pending ones (`state manager`: a first config from istiod; `workload proxy manager`: connected
  to istio-cni, its snapshot processed, no proxy failing to start).
- `:15000`: `GET /config_dump` (workloads, services, policies, certificates, workloadState),
  `GET|POST /logging[?level=<RUST_LOG spec>]`, `POST /quitquitquit`.

Departure from the real ztunnel: admin listens on 0.0.0.0:15000, not localhost only, because the
emulator's istioctl reaches it through the apiserver's pod proxy (the pod's IP), where the real
istioctl port-forwards into the pod.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from components.common import http
from components.ztunnel import logs
from components.ztunnel.metrics import Metrics

Handler = Callable[[http.Request], Awaitable[http.Response]]

ADMIN_HELP = """ztunnel admin
/config_dump: workloads, services, policies, certificates and in-pod proxies
/logging: GET the log filter, POST ?level=<filter> to change it
/quitquitquit: POST to shut down
"""


def metrics_handler(metrics: Metrics) -> Handler:
    async def handle(request: http.Request) -> http.Response:
        if request.path not in ("/metrics", "/stats/prometheus"):
            return http.Response.text("not found\n", 404)
        if request.method not in ("GET", "HEAD"):
            return http.Response(405)
        body, content_type = metrics.render(request.header("accept"))
        return http.Response(200, [("content-type", content_type)], body)
    return handle


def readiness_handler(pending: Callable[[], list[str]]) -> Handler:
    async def handle(request: http.Request) -> http.Response:
        if request.path != "/healthz/ready":
            return http.Response.text("not found\n", 404)
        if request.method != "GET":
            return http.Response(405)
        waiting = pending()
        if not waiting:
            return http.Response.text("ready\n")
        return http.Response.text(f"not ready, pending: {', '.join(sorted(waiting))}\n", 500)
    return handle


class LogLevel:
    """The current RUST_LOG-style filter, as `/logging` shows and changes it."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def set(self, spec: str) -> None:
        logs.apply_filter(spec)
        self.spec = spec


def admin_handler(dump: Callable[[], dict[str, Any]], quit: Callable[[], None], level: LogLevel) -> Handler:
    async def handle(request: http.Request) -> http.Response:
        path = request.path
        if path == "/config_dump" and request.method == "GET":
            body = json.dumps(dump(), indent=2, default=str).encode() + b"\n"
            return http.Response(200, [("content-type", "application/json")], body)
        if path == "/quitquitquit":
            if request.method != "POST":
                return http.Response.text("Invalid HTTP method\n", 405)
            quit()
            return http.Response.text("shutdown now\n")
        if path == "/logging":
            wanted = request.arg("level")
            if request.method == "POST" and wanted:
                try:
                    level.set(wanted)
                except KeyError as exc:
                    return http.Response.text(f"Invalid level provided: {exc}\n{ADMIN_HELP}", 400)
            elif request.method not in ("GET", "POST"):
                return http.Response.text("Invalid HTTP method\n", 405)
            return http.Response.text(f"current log level is {level.spec}\n")
        if path == "/":
            return http.Response.text(ADMIN_HELP)
        return http.Response.text(f"not found\n{ADMIN_HELP}", 404)
    return handle
