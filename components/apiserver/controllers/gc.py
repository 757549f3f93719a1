"""The garbage collector: objects whose owners are all gone are deleted (pods gracefully);
an object that still has another owner only loses the reference to the one that went."""

from __future__ import annotations

import copy
import logging
from typing import Any, Hashable, Iterable

from components.apiserver import meta
from components.apiserver.controllers.base import Controller
from components.apiserver.store import Event
from components.common import kinds

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class GarbageCollector(Controller):
    name = "garbage-collector"

    def _missing_owners(self, obj: Obj) -> list[str]:
        return [uid for uid in meta.owner_uids(obj) if self.store.by_uid(uid) is None]

    def resync(self) -> Iterable[Hashable]:
        return {uid for obj in self.store.all_objects() for uid in self._missing_owners(obj)}

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.type == "DELETED":
            return [event.obj["metadata"]["uid"]]
        if event.type == "ADDED":
            return self._missing_owners(event.obj)
        return []

    def reconcile(self, key: Hashable) -> None:
        if self.store.by_uid(str(key)) is not None:
            return
        for obj in list(self.store.all_objects()):
            refs = obj["metadata"].get("ownerReferences") or []
            if key not in (r.get("uid") for r in refs) or meta.is_terminating(obj):
                continue
            kind = kinds.for_object(obj["apiVersion"], obj["kind"])
            namespace, name = meta.namespace_of(obj), meta.name_of(obj)
            if self._missing_owners(obj) == meta.owner_uids(obj):
                log.info("Deleting %s %s/%s: its owners are gone", obj["kind"], namespace, name)
                self.registry.delete(kind, namespace, name)
            else:
                trimmed = copy.deepcopy(obj)
                trimmed["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != key]
                self.registry.update(kind, namespace, name, trimmed)
