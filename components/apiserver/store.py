"""The object store: every object of every kind in memory, one resourceVersion counter, and the
recent history of changes that watches replay.

Every write bumps the counter by one and records exactly one event, so the event of version N sits
at a known place in the history. Objects handed out are shared with the store: readers must not
change them, and writers always hand in a new object.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import trio

GroupKind = tuple[str, str]
Obj = dict[str, Any]

HISTORY_SIZE = 10000


@dataclass(frozen=True)
class Event:
    rv: int
    type: str                 # ADDED, MODIFIED, DELETED
    group_kind: GroupKind
    obj: Obj                  # the object after the change (for DELETED: its last state)
    old: Obj | None = None    # the object before a MODIFIED change

    @property
    def namespace(self) -> str:
        return self.obj.get("metadata", {}).get("namespace", "")


def group_kind_of(obj: Obj) -> GroupKind:
    return obj.get("apiVersion", "").rpartition("/")[0], obj.get("kind", "")


class Store:
    def __init__(self, history_size: int = HISTORY_SIZE):
        self._objects: dict[GroupKind, dict[tuple[str, str], Obj]] = {}
        self._uids: dict[str, tuple[GroupKind, str, str]] = {}
        self._history: deque[Event] = deque(maxlen=history_size)
        self._changed = trio.Event()
        self.resource_version = 0

    # -- reading -------------------------------------------------------------------------------

    def get(self, group_kind: GroupKind, namespace: str, name: str) -> Obj | None:
        return self._objects.get(group_kind, {}).get((namespace, name))

    def list(self, group_kind: GroupKind, namespace: str | None = None) -> list[Obj]:
        """Objects of a kind (in one namespace, or all), in namespace/name order."""
        objects = self._objects.get(group_kind, {})
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def group_kinds(self) -> list[GroupKind]:
        return [gk for gk, objects in self._objects.items() if objects]

    def by_uid(self, uid: str) -> Obj | None:
        where = self._uids.get(uid)
        return None if where is None else self.get(*where)

    def all_objects(self) -> Iterator[Obj]:
        for objects in list(self._objects.values()):
            yield from list(objects.values())

    # -- writing -------------------------------------------------------------------------------

    def put(self, obj: Obj) -> Obj:
        """Create or replace an object; returns it with its new resourceVersion."""
        group_kind = group_kind_of(obj)
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        old = self._objects.get(group_kind, {}).get(key)
        self.resource_version += 1
        stored = {**obj, "metadata": {**meta, "resourceVersion": str(self.resource_version)}}
        self._objects.setdefault(group_kind, {})[key] = stored
        self._uids[meta["uid"]] = (group_kind, *key)
        self._record(Event(self.resource_version, "MODIFIED" if old else "ADDED", group_kind, stored, old))
        return stored

    def remove(self, group_kind: GroupKind, namespace: str, name: str) -> Obj:
        """Delete an object; returns its last state, at the version of the deletion."""
        old = self._objects[group_kind].pop((namespace, name))
        self._uids.pop(old["metadata"]["uid"], None)
        self.resource_version += 1
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.resource_version)}}
        self._record(Event(self.resource_version, "DELETED", group_kind, gone))
        return gone

    def _record(self, event: Event) -> None:
        self._history.append(event)
        self._changed.set()
        self._changed = trio.Event()

    # -- history -------------------------------------------------------------------------------

    @property
    def oldest_resource_version(self) -> int:
        """The version of the oldest event still in the history (or the next one, if it is empty)."""
        return self.resource_version - len(self._history) + 1

    def events_since(self, resource_version: int) -> list[Event] | None:
        """Events after `resource_version`, or None if they are no longer all in the history."""
        first = self.oldest_resource_version
        if resource_version < first - 1:
            return None
        if resource_version >= self.resource_version:
            return []
        return list(itertools.islice(self._history, resource_version - first + 1, None))

    async def wait_beyond(self, resource_version: int) -> None:
        """Return once the store is past `resource_version`."""
        while self.resource_version <= resource_version:
            await self._changed.wait()

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"resourceVersion": self.resource_version, "objects": list(self.all_objects())}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Load a snapshot; the history starts empty, so older watches get 410 Expired."""
        self._objects.clear()
        self._uids.clear()
        self._history.clear()
        for obj in snapshot.get("objects", []):
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            self._objects.setdefault(group_kind_of(obj), {})[key] = obj
            self._uids[meta["uid"]] = (group_kind_of(obj), *key)
        self.resource_version = int(snapshot.get("resourceVersion", 0))
