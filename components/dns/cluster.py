"""The DNS server's view of the cluster: Services and Endpoints kept current by the API's watches."""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from components.common.apiclient import ApiClient
from components.dns.records import Records, build

log = logging.getLogger("plugin/kubernetes")

WATCHED = ("Service", "Endpoints")


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class ClusterState:
    """Caches of the watched kinds; the zone is rebuilt lazily, on the first query after a change."""

    def __init__(self, domain: str = "cluster.local", ttl: int = 5):
        self.domain = domain
        self.ttl = ttl
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in WATCHED}
        self.synced_kinds: set[str] = set()
        self.synced = trio.Event()
        self._records: Records | None = None

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One reflector event: SYNC (obj is the list) replaces the cache, the others edit it."""
        cache = self.objects[kind]
        if event == "SYNC":
            cache.clear()
            cache.update((_key(item), item) for item in obj.get("items") or [])
            self.synced_kinds.add(kind)
            if self.synced_kinds == set(WATCHED):
                self.synced.set()
        elif event == "DELETED":
            cache.pop(_key(obj), None)
        else:
            cache[_key(obj)] = obj
        self._records = None

    def records(self) -> Records | None:
        """The current zone, or None before both kinds have synced."""
        if not self.synced.is_set():
            return None
        if self._records is None:
            self._records = build(self.objects["Service"].values(), self.objects["Endpoints"].values(),
                                  self.domain, self.ttl, int(time.time()))
        return self._records


async def watch(api: ApiClient, state: ClusterState, kind: str) -> None:
    """Reflect one kind into the state, forever (the reflector relists after a lost watch)."""
    async for event, obj in api.reflect("v1", kind):
        state.apply(kind, event, obj)
