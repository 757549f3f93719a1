"""istiod as one object: watches, the push loop, the status writer, its two ports and the CA child."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from components.common.apiclient import ApiClient
from components.istiod import debug, xds
from components.istiod.builder import Builder, Debounce
from components.istiod.ca_process import Backoff, CaSupervisor
from components.istiod.push import Publisher
from components.istiod.status import StatusWriter
from components.istiod.watcher import WATCHED, Cache, watch
from components.istiod.waypoints import WaypointController

# istio's default scope, which its log lines show without a name.
log = logging.getLogger("istiod.")


@dataclass(frozen=True)
class Options:
    api: str
    xds: str = "0.0.0.0:15010"
    http: str = "0.0.0.0:8080"
    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    cluster_id: str = "Kubernetes"
    ca_command: str | None = None
    ca_address: str | None = None    # where that CA listens; readiness waits for it
    debounce: Debounce = field(default_factory=Debounce)
    ca_backoff: Backoff = field(default_factory=Backoff)
    ca_grace: float = 5.0


class Istiod:
    """`await nursery.start(Istiod(options).run)` returns once both ports listen; the bound
    addresses are then in `xds_address` and `http_address`."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.api = ApiClient(options.api)
        self.cache = Cache()
        self.publisher = Publisher()
        self.status = StatusWriter(self.api, self.cache)
        self.waypoints = WaypointController(self.api)
        self.builder = Builder(self.cache, self.publisher, self.status, {
            "root_namespace": options.root_namespace, "trust_domain": options.trust_domain,
            "cluster_id": options.cluster_id}, options.debounce)
        self.ca = (CaSupervisor(options.ca_command, options.ca_backoff, options.ca_grace)
                   if options.ca_command else None)
        self.ready = trio.Event()
        self.xds_address = ""
        self.http_address = ""

    async def run(self, *, task_status: trio.TaskStatus[Istiod] = trio.TASK_STATUS_IGNORED) -> None:
        o = self.options
        log.info("Starting Istiod Server with primary cluster %s (root namespace %s, trust domain %s)",
                 o.cluster_id, o.root_namespace, o.trust_domain)
        async with trio.open_nursery() as nursery:
            if self.ca is not None:
                nursery.start_soon(self.ca.run)
            for watched in WATCHED:
                nursery.start_soon(watch, self.api, self.cache, watched)
            self.http_address = await nursery.start(debug.serve, o.http, self.publisher, self.ready,
                                                   o.ca_address if o.ca_command else None)
            log.info("starting HTTP service at %s", self.http_address)
            self.xds_address = await nursery.start(xds.serve, o.xds, self.publisher)
            log.info("starting discovery service at %s (ambient config as JSON lines over h2c)", self.xds_address)
            nursery.start_soon(self.builder.run, self.ready)
            nursery.start_soon(self.status.run)
            nursery.start_soon(self.waypoints.run)
            task_status.started(self)
