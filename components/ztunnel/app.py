"""ztunnel as a whole: istiod's config, certificates, the ZDS client and the pod proxies, the
HTTP endpoints, and shutdown.

On SIGTERM (or `/quitquitquit`) every pod proxy stops listening at once (a successor ztunnel
bound beside it with SO_REUSEPORT takes new connections), existing connections get the drain
deadline (5 s), then everything stops.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping

import trio

from components.common import caclient, http, meshconfig
from components.common.caclient import WorkloadCertificate
from components.common.tls import Identity
from components.ztunnel import admin, inbound, inbound_passthrough, logs, outbound, socks5
from components.ztunnel.certs import CertManager, Fetcher
from components.ztunnel.config import ADMIN_PORT, READINESS_PORT, STATS_PORT, Config
from components.ztunnel.inpod import StateManager, ZdsClient
from components.ztunnel.metrics import Metrics
from components.ztunnel.proxy import ProxyInputs, WorkloadProxy
from components.ztunnel.sockets import Netns
from components.ztunnel.state import ProxyState, Store, WorkloadInfo

log = logging.getLogger("components.ztunnel.app")

ADDRESS_TYPE = "type.googleapis.com/istio.workload.Address"
AUTHORIZATION_TYPE = "type.googleapis.com/istio.security.Authorization"
STATE_MANAGER_TASK = "state manager"
WORKLOAD_MANAGER_TASK = "workload proxy manager"

HANDLERS = {"inbound": inbound.handle, "inbound plaintext": inbound_passthrough.handle,
            "outbound": outbound.handle, "socks5": socks5.handle}


def _delta(previous: Mapping[Any, Any], current: Mapping[Any, Any]) -> tuple[int, int]:
    changed = sum(1 for key, value in current.items() if previous.get(key) != value)
    removed = sum(1 for key in previous if key not in current)
    return changed, removed


def _address_resources(state: ProxyState) -> dict[tuple[str, ...], Any]:
    """Workloads and services as xDS Address resources: a service's endpoints are not part of it
    (they come from the workloads), so a new pod is one changed resource."""
    resources: dict[tuple[str, ...], Any] = {("workload", uid): w.raw for uid, w in state.workloads.items()}
    for service in state.services:
        resources[("service", service.namespace, service.hostname)] = {
            k: v for k, v in service.raw.items() if k != "endpoints"}
    return resources


def address_delta(previous: ProxyState, current: ProxyState) -> tuple[int, int]:
    """(size, removes) of the Address update from `previous` to `current`."""
    return _delta(_address_resources(previous), _address_resources(current))


def policy_delta(previous: ProxyState, current: ProxyState) -> tuple[int, int]:
    def by_key(state: ProxyState) -> dict[str, Any]:
        return {f"{p.get('namespace', '')}/{p.get('name', '')}": p for p in state.policies}
    return _delta(by_key(previous), by_key(current))


class Ztunnel:
    def __init__(self, config: Config, *, fetcher: Fetcher | None = None, metrics: Metrics | None = None,
                 log_level: str = "info") -> None:
        self.config = config
        self.store = Store()
        self.metrics = metrics or Metrics()
        self.certs = CertManager(fetcher or self.fetch_certificate)
        self.inputs = ProxyInputs(config, self.store, self.certs, self.metrics)
        self.manager = StateManager(self._start_proxy, on_change=self._proxies_changed)
        self.zds = ZdsClient(config.inpod_uds, self.manager)
        self.log_level = admin.LogLevel(log_level)
        self.xds_streams = 0
        self._proxy_nursery: trio.Nursery | None = None
        self._shutdown = trio.Event()

    # Certificates

    async def fetch_certificate(self, identity: Identity) -> WorkloadCertificate:
        """Ask the CA for `identity` with our own token (re-read: the kubelet refreshes it)."""
        token = (await trio.Path(self.config.auth_token).read_text()).strip()
        root = await trio.Path(self.config.ca_root_ca).read_bytes()
        return await caclient.fetch_certificate(
            self.config.ca_address, root, token, str(identity), impersonate=True,
            ttl_seconds=self.config.secret_ttl, server_name=self.config.ca_server_name,
            cluster_id=self.config.cluster_id, extra_headers=self.config.ca_headers)

    def _identities_in_use(self) -> set[Identity]:
        state = self.store.state
        wanted = state.node_local_identities(self.config.node_name)
        for proxy in self.manager.proxies.values():
            local = state.find_local(proxy.info, self.config.node_name)
            wanted.add(local.identity if local is not None else
                       Identity(self.config.trust_domain, proxy.info.namespace, proxy.info.service_account))
        return wanted

    def _retain_certs(self) -> None:
        if self.store.ready:
            self.certs.retain(self._identities_in_use())

    # Pods

    def _start_proxy(self, uid: str, info: WorkloadInfo, netns: Netns) -> WorkloadProxy:
        if self._proxy_nursery is None:
            raise OSError("ztunnel is not running proxies")
        proxy = WorkloadProxy(self.inputs, uid, info, netns)
        proxy.bind()
        self._proxy_nursery.start_soon(proxy.run, HANDLERS)
        return proxy

    def _proxies_changed(self) -> None:
        self.metrics.set_proxy_counts(len(self.manager.proxies), len(self.manager.pending))
        self._retain_certs()

    # istiod's config

    def apply_config(self, config: dict[str, Any]) -> None:
        """A new snapshot from istiod: store it, log it as ztunnel logs xDS responses, warm up
        certificates, and close inbound connections the new policies deny."""
        first = not self.store.ready
        previous = self.store.state
        self.store.update(config)
        current = self.store.state
        for type_url, (size, removes) in ((ADDRESS_TYPE, address_delta(previous, current)),
                                          (AUTHORIZATION_TYPE, policy_delta(previous, current))):
            if size or removes or first:
                event = logs.xds_response(type_url, size, removes, self.xds_streams or None)
                logs.emit(dataclasses.replace(event, level=logging.INFO))
        for identity in current.node_local_identities(self.config.node_name):
            self.certs.prefetch(identity)
        self._retain_certs()
        for proxy in list(self.manager.proxies.values()):
            if isinstance(proxy, WorkloadProxy):
                proxy.connections.reevaluate(current)

    def _stream_connected(self) -> None:
        self.xds_streams += 1

    async def _config_loop(self) -> None:
        async with meshconfig.subscribe(self.config.xds_address, self.config.node_name,
                                        subscriber_id=self.config.pod_name or None,
                                        on_connect=self._stream_connected) as subscription:
            async for config in subscription:
                self.apply_config(config)

    # Readiness and admin

    def pending_tasks(self) -> list[str]:
        pending = []
        if not self.store.ready:
            pending.append(STATE_MANAGER_TASK)
        if not self.zds.ready:
            pending.append(WORKLOAD_MANAGER_TASK)
        return pending

    def config_dump(self) -> dict[str, Any]:
        dump: dict[str, Any] = self.store.state.dump()
        dump["config"] = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "ca_headers"}
        dump["version"] = self.store.state.version
        dump["certificates"] = self.certs.dump()
        dump["workloadState"] = self.manager.dump()
        return dump

    def request_shutdown(self) -> None:
        self._shutdown.set()

    # Running

    async def _serve_http(self, port: int, handler: admin.Handler, host: str | None,
                          *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        await http.serve(listeners, handler, task_status=task_status)

    async def _run_proxies(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._proxy_nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until shutdown is requested, then drain and return."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve_http, STATS_PORT, admin.metrics_handler(self.metrics), None)
            await nursery.start(self._serve_http, READINESS_PORT, admin.readiness_handler(self.pending_tasks), None)
            await nursery.start(self._serve_http, ADMIN_PORT,
                                admin.admin_handler(self.config_dump, self.request_shutdown, self.log_level),
                                "0.0.0.0")
            await nursery.start(self.certs.run)
            await nursery.start(self._run_proxies)
            nursery.start_soon(self._config_loop)
            zds_scope = trio.CancelScope()
            nursery.start_soon(self._run_zds, zds_scope)
            task_status.started()
            await self._shutdown.wait()
            zds_scope.cancel()
            await self._drain()
            nursery.cancel_scope.cancel()

    async def _run_zds(self, scope: trio.CancelScope) -> None:
        with scope:
            await self.zds.run()

    async def _drain(self) -> None:
        deadline = trio.current_time() + self.config.drain_deadline
        proxies = [p for p in self.manager.proxies.values() if isinstance(p, WorkloadProxy)]
        log.info("shutting down: draining %d proxies for up to %.0fs", len(proxies), self.config.drain_deadline)
        for proxy in proxies:
            proxy.stop_listening()
        async with trio.open_nursery() as nursery:
            for proxy in proxies:
                nursery.start_soon(proxy.drain, deadline)
        log.info("shutdown complete")

