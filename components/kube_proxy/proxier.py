"""kube-proxy's iptables proxier: watch Services and Endpoints, and on every change write the
rules they call for (at most once per `min_sync_period`, and every `sync_period` regardless, which
repairs rules someone else removed)."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, Awaitable, Callable

import trio

from components.common.apiclient import ApiClient
from components.kube_proxy import conntrack, iptables
from components.kube_proxy.rules import FILTER, NAT, Ruleset, compute
from components.kube_proxy.servicemap import ServicePort, service_ports
from components.kube_proxy.structured import duration, kv

log = logging.getLogger(__name__)

CONTROLLERS = {"Service": "service config", "Endpoints": "endpoints config"}


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class Proxier:
    def __init__(self, cluster_cidr: str | None = None, min_sync_period: float = 1.0, sync_period: float = 30.0,
                 apply_rules: Callable[[Ruleset], Awaitable[None]] | None = None,
                 clear_conntrack: Callable[[list[conntrack.Stale]], Awaitable[int]] | None = None):
        """`apply_rules` and `clear_conntrack` default to the iptables and conntrack layers, run in
        a worker thread (libiptc and netlink calls block)."""
        self.cluster_cidr = cluster_cidr
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.apply_rules = apply_rules or partial(trio.to_thread.run_sync, iptables.apply)
        self.clear_conntrack = clear_conntrack or partial(trio.to_thread.run_sync, conntrack.clear)
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in CONTROLLERS}
        self.synced_kinds: set[str] = set()
        self.synced = trio.Event()
        self.changed = trio.Event()
        self.applied: list[ServicePort] = []

    def on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One reflector event: SYNC (obj is the list) replaces the cache, the others edit it."""
        cache = self.objects[kind]
        if event == "SYNC":
            listed = {_key(item): item for item in obj.get("items") or []}
            if kind not in self.synced_kinds:
                self.synced_kinds.add(kind)
                log.info(kv("Caches are synced", controller=CONTROLLERS[kind]))
                if self.synced_kinds == set(CONTROLLERS):
                    self.synced.set()
            elif listed == cache:
                return      # a relist after a lost watch that changed nothing
            self.objects[kind] = listed
        elif event == "DELETED":
            cache.pop(_key(obj), None)
        else:
            cache[_key(obj)] = obj
        self.changed.set()

    async def watch(self, api: ApiClient, kind: str) -> None:
        log.info(kv(f"Starting {CONTROLLERS[kind]} controller"))
        log.info(kv("Waiting for caches to sync", controller=CONTROLLERS[kind]))
        async for event, obj in api.reflect("v1", kind):
            self.on_event(kind, event, obj)

    def _log_changes(self, ports: list[ServicePort]) -> None:
        before = {sp.name_string + "/" + sp.protocol: sp for sp in self.applied}
        after = {sp.name_string + "/" + sp.protocol: sp for sp in ports}
        for name in sorted(after.keys() - before.keys()):
            sp = after[name]
            log.info(kv("Adding new service port", portName=sp.name_string,
                        servicePort=f"{sp.cluster_ip}:{sp.port}/{sp.protocol}"))
        for name in sorted(before.keys() - after.keys()):
            sp = before[name]
            log.info(kv("Removing service port", portName=sp.name_string,
                        servicePort=f"{sp.cluster_ip}:{sp.port}/{sp.protocol}"))

    async def sync(self) -> bool:
        """Write the rules for the current caches; False if writing them failed."""
        started = time.monotonic()
        log.info(kv("Syncing iptables rules"))
        ports = service_ports(self.objects["Service"].values(), self.objects["Endpoints"].values())
        ruleset = compute(ports, self.cluster_cidr)
        self._log_changes(ports)
        filter_chains, filter_rules = ruleset.counts(FILTER)
        nat_chains, nat_rules = ruleset.counts(NAT)
        log.info(kv("Reloading service iptables data", numServices=len(ports),
                    numEndpoints=sum(len(sp.endpoints) for sp in ports), numFilterChains=filter_chains,
                    numFilterRules=filter_rules, numNATChains=nat_chains, numNATRules=nat_rules))
        try:
            await self.apply_rules(ruleset)
        except Exception as exc:    # a failed write must not end the proxier: it retries
            log.error(kv("Failed to sync iptables rules", err=exc))
            return False
        stale = conntrack.stale_udp(self.applied, ports)
        self.applied = ports
        if stale:
            await self._clear(stale)
        log.info(kv("SyncProxyRules complete", elapsed=duration(time.monotonic() - started)))
        return True

    async def _clear(self, stale: list[conntrack.Stale]) -> None:
        services = sorted({s.cluster_ip for s in stale if s.endpoint_ip is None})
        endpoints = sorted({f"{s.cluster_ip}->{s.endpoint_ip}" for s in stale if s.endpoint_ip is not None})
        try:
            deleted = await self.clear_conntrack(stale)
        except Exception as exc:    # stale entries age out by themselves; the rules are what matter
            log.error(kv("Failed to delete stale conntrack entries", err=exc))
            return
        if deleted:
            log.info(kv("Deleted stale conntrack entries", serviceIPs=services, endpoints=endpoints,
                        count=deleted))

    async def sync_loop(self) -> None:
        await self.synced.wait()
        last: float | None = None
        while True:
            if last is not None:
                with trio.move_on_after(self.sync_period):
                    await self.changed.wait()
                delay = last + self.min_sync_period - trio.current_time()
                if delay > 0:
                    await trio.sleep(delay)
            self.changed = trio.Event()
            last = trio.current_time()
            if not await self.sync():
                self.changed.set()

    async def run(self, api: ApiClient) -> None:
        async with trio.open_nursery() as nursery:
            for kind in CONTROLLERS:
                nursery.start_soon(self.watch, api, kind)
            nursery.start_soon(self.sync_loop)
