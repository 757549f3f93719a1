"""istiod's informers: the kinds the ambient translation reads, reflected from the apiserver into
one cache, with the bookkeeping the push debouncer needs (what changed, and when)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from components.common import kinds
from components.common.apiclient import ApiClient
from components.istiod.translate import Snapshot

Obj = dict[str, Any]
Key = tuple[str, str]

log = logging.getLogger("istiod.ads")


@dataclass(frozen=True)
class Watched:
    field: str            # the Snapshot field its objects go to
    kind: kinds.Kind      # the served kind, at its preferred version
    status_is_input: bool = True  # False: a status-only change cannot change the config


def _watched(field: str, kind: str, group: str, status_is_input: bool = True) -> Watched:
    found = kinds.preferred(kind, group)
    if found is None:
        raise LookupError(f"{group or 'core'} {kind} is missing from components/common/kinds.py")
    return Watched(field, found, status_is_input)


# The translation reads Pods' and Gateways' status (IPs, readiness, addresses) but not the status
# of Istio's policies, which is where istiod writes its own conditions.
WATCHED: tuple[Watched, ...] = (
    _watched("namespaces", "Namespace", ""),
    _watched("pods", "Pod", ""),
    _watched("services", "Service", ""),
    _watched("endpoints", "Endpoints", ""),
    _watched("authorization_policies", "AuthorizationPolicy", "security.istio.io", status_is_input=False),
    _watched("peer_authentications", "PeerAuthentication", "security.istio.io", status_is_input=False),
    _watched("gateways", "Gateway", "gateway.networking.k8s.io"),
    _watched("virtual_services", "VirtualService", "networking.istio.io", status_is_input=False),
    _watched("destination_rules", "DestinationRule", "networking.istio.io", status_is_input=False),
    _watched("http_routes", "HTTPRoute", "gateway.networking.k8s.io", status_is_input=False),
    _watched("istio_gateways", "Gateway", "networking.istio.io", status_is_input=False),
)


class Dirty:
    """A flag one task waits on: any number of `set()` calls wake it once."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()

    async def wait_and_clear(self) -> None:
        await self._event.wait()
        self.clear()


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _without_status(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


class Cache:
    """The watched objects by Snapshot field and (namespace, name).

    `config_dirty` is set by every change that may alter the config; `status_dirty` by changes
    to policies' status only (someone else rewrote it, or our own write came back). `pending`
    names what changed since the last build (for the debounce log line).
    """

    def __init__(self) -> None:
        self.objects: dict[str, dict[Key, Obj]] = {w.field: {} for w in WATCHED}
        self.synced_fields: set[str] = set()
        self.synced = trio.Event()
        self.config_dirty = Dirty()
        self.status_dirty = Dirty()
        self.pending: list[str] = []
        self.first_change: float | None = None
        self.last_change: float | None = None

    def apply(self, watched: Watched, event: str, obj: Obj) -> None:
        """One reflector event: SYNC (obj is the list) replaces the kind's objects."""
        store = self.objects[watched.field]
        if event == "SYNC":
            store.clear()
            store.update((key_of(item), item) for item in obj.get("items") or [])
            self.synced_fields.add(watched.field)
            if len(self.synced_fields) == len(WATCHED):
                self.synced.set()
            self._changed(f"{watched.kind.kind}/*")
            return
        key = key_of(obj)
        old = store.pop(key, None) if event == "DELETED" else store.get(key)
        if event != "DELETED":
            store[key] = obj
        if (event == "MODIFIED" and old is not None and not watched.status_is_input
                and _without_status(old) == _without_status(obj)):
            self.status_dirty.set()
            return
        self._changed(f"{watched.kind.kind}/{key[0]}/{key[1]}" if key[0] else f"{watched.kind.kind}/{key[1]}")

    def _changed(self, what: str) -> None:
        now = trio.current_time()
        if self.first_change is None:
            self.first_change = now
        self.last_change = now
        self.pending.append(what)
        self.config_dirty.set()

    def take_changes(self) -> list[str]:
        """What changed since the last call; the change times and `config_dirty` start over."""
        changes, self.pending = self.pending, []
        self.config_dirty.clear()
        self.first_change = self.last_change = None
        return changes

    def snapshot(self, **options: Any) -> Snapshot:
        """The translation's input (options: root_namespace, trust_domain, cluster_id)."""
        fields = {w.field: tuple(self.objects[w.field].values()) for w in WATCHED}
        return Snapshot(**fields, **options)


async def watch(api: ApiClient, cache: Cache, watched: Watched) -> None:
    """Reflect one kind into the cache, forever (the reflector lists again after a lost watch)."""
    kind = watched.kind
    async for event, obj in api.reflect(kind.api_version, kind.kind):
        if event == "SYNC":
            log.debug("synced %s: %d objects", kind.plural, len(obj.get("items") or []))
        cache.apply(watched, event, obj)
