"""The waypoint as a whole: its certificate, istiod's config, the HBONE listener, the upstream pool
and the HTTP endpoints (15020 metrics, 15021 readiness, 15000 admin)."""

from __future__ import annotations

import logging
from typing import Any

import trio

from components.common import http, meshconfig
from components.waypoint.identity import Fetcher, OwnCertificate, ca_fetcher
from components.waypoint.mesh import Mesh
from components.waypoint.proxy import WaypointProxy
from components.waypoint.secrets import secrets_config_dump
from components.waypoint.settings import ADMIN_PORT, HBONE_PORT, READINESS_PORT, STATS_PORT, Settings
from components.waypoint.telemetry import SOURCE, WAYPOINT, Metrics
from components.waypoint.upstream import Upstreams

log = logging.getLogger("waypoint")

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class Waypoint:
    def __init__(self, settings: Settings, fetcher: Fetcher | None = None) -> None:
        self.settings = settings
        self.certificate = OwnCertificate(fetcher or ca_fetcher(
            settings.ca_address, settings.token_path, settings.root_cert_path, settings.identity,
            settings.cert_ttl, settings.cluster_id))
        self.metrics = Metrics(WAYPOINT if settings.mode == "waypoint" else SOURCE)
        self.upstreams = Upstreams(self.certificate, settings.pod_ip)
        self.proxy = WaypointProxy(settings, self.certificate, self.upstreams, self.metrics)
        self.configured = trio.Event()

    def pending(self) -> list[str]:
        waiting = []
        if not self.certificate.ready.is_set():
            waiting.append(f"certificate ({self.certificate.error or 'not fetched yet'})")
        if not self.configured.is_set():
            waiting.append("config from istiod")
        return waiting

    async def _config_loop(self) -> None:
        async with meshconfig.subscribe(self.settings.xds_address, self.settings.node_name,
                                        subscriber_id=self.settings.pod_name or None) as configs:
            async for config in configs:
                self.proxy.update(Mesh.from_config(config))
                if not self.configured.is_set():
                    log.info("received config version %s from istiod", config.get("version"))
                self.configured.set()

    async def _endpoints(self, request: http.Request) -> http.Response:
        if request.path in ("/stats/prometheus", "/metrics"):
            return http.Response(200, [("content-type", PROMETHEUS)], self.metrics.render())
        if request.path in ("/healthz/ready", "/ready"):
            pending = self.pending()
            return http.Response.text("\n".join(pending) + "\n", 503) if pending else http.Response.text("LIVE\n")
        if request.path == "/config_dump":
            return http.Response.json(self.config_dump(), indent=2)
        return http.Response.text("not found\n", 404)

    def config_dump(self) -> dict[str, Any]:
        mesh = self.proxy.mesh
        return {"gateway": f"{self.settings.namespace}/{self.settings.gateway_name}",
                "identity": self.settings.identity, "version": mesh.version,
                "routes": list(mesh.routes.values()),
                "policies": mesh.attached_policies(self.settings.namespace, self.settings.gateway_name, None)
                + [p for p in mesh.policies if any(t.get("kind") == "Service" for t in p.get("targets") or [])],
                "configs": [secrets_config_dump(self.certificate)]}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for port in (STATS_PORT, READINESS_PORT, ADMIN_PORT):
                listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
                await nursery.start(http.serve, listeners, self._endpoints)
            nursery.start_soon(self.certificate.run)
            nursery.start_soon(self._config_loop)
            await nursery.start(self.upstreams.run)
            if self.settings.mode == "waypoint":
                await nursery.start(self.proxy.serve, HBONE_PORT)
            else:
                nursery.start_soon(self.proxy.serve_gateway, self.settings.pod_labels())
            task_status.started()
