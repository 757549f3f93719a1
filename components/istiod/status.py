"""Writing the translation's `ZtunnelAccepted` condition into each AuthorizationPolicy's status.

Writes go through the status subresource as a JSON merge patch of `status.conditions` (other
writers' conditions are kept). A write happens only when the condition differs from what the
cached object carries, ignoring `lastTransitionTime`, which moves only when the condition's
status does (Kubernetes' convention). Our own write comes back as a status-only watch event,
which finds nothing to do, so writes never loop.
"""

from __future__ import annotations

import datetime
import logging
from typing import Callable

import trio

from components.common.apiclient import ApiClient, ApiError
from components.istiod.translate.authorization import ZTUNNEL_ACCEPTED
from components.istiod.watcher import Cache, Dirty, Key, Obj, WATCHED

log = logging.getLogger("istiod.status")

RETRY_DELAY = 1.0
_POLICIES = next(w for w in WATCHED if w.field == "authorization_policies")


def rfc3339_now() -> str:
    """metav1.Time: seconds precision."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _comparable(condition: Obj) -> Obj:
    return {k: v for k, v in condition.items() if k != "lastTransitionTime"}


def updated_conditions(conditions: list[Obj], desired: Obj | None, stamp: str) -> list[Obj] | None:
    """`conditions` with our condition set to `desired` (removed if None), or None when that
    changes nothing."""
    old = next((c for c in conditions if c.get("type") == ZTUNNEL_ACCEPTED), None)
    if desired is None:
        return None if old is None else [c for c in conditions if c is not old]
    if old is not None and _comparable(old) == _comparable(desired):
        return None
    same_status = old is not None and old.get("status") == desired.get("status")
    merged = {**desired, "lastTransitionTime": old.get("lastTransitionTime", stamp) if same_status and old
              else stamp}
    if old is None:
        return [*conditions, merged]
    return [merged if c is old else c for c in conditions]


class StatusWriter:
    """Reconciles policies' status with the latest translation whenever either changes."""

    def __init__(self, api: ApiClient, cache: Cache, clock: Callable[[], str] = rfc3339_now) -> None:
        self.api = api
        self.cache = cache
        self.clock = clock
        self.desired: dict[Key, Obj] | None = None
        self.writes = 0
        self._dirty = Dirty()

    def update(self, policy_status: list[Obj]) -> None:
        """The translation's `policy_status`: what every policy's condition should be."""
        self.desired = {(s["namespace"], s["name"]): s["conditions"][0] for s in policy_status}
        self._dirty.set()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward_status_changes)
            while True:
                await self._dirty.wait_and_clear()
                if self.desired is not None and not await self.reconcile():
                    nursery.start_soon(self._retry_later)

    async def _forward_status_changes(self) -> None:
        while True:
            await self.cache.status_dirty.wait_and_clear()
            self._dirty.set()

    async def _retry_later(self) -> None:
        await trio.sleep(RETRY_DELAY)
        self._dirty.set()

    async def reconcile(self) -> bool:
        """Write every condition that differs; False if a write failed (and should be retried)."""
        desired = self.desired or {}
        ok = True
        for key, policy in list(self.cache.objects[_POLICIES.field].items()):
            conditions = (policy.get("status") or {}).get("conditions") or []
            new = updated_conditions(conditions, desired.get(key), self.clock())
            if new is None:
                continue
            ok = await self._write(key, new, desired.get(key)) and ok
        return ok

    async def _write(self, key: Key, conditions: list[Obj], condition: Obj | None) -> bool:
        namespace, name = key
        kind = _POLICIES.kind
        try:
            await self.api.patch(kind.api_version, kind.kind, namespace, name,
                                 {"status": {"conditions": conditions}}, subresource="status")
        except ApiError as exc:
            if exc.code == 404:
                return True
            log.warning("failed to write status of AuthorizationPolicy %s/%s: %s", namespace, name, exc)
            return False
        self.writes += 1
        if condition is None:
            log.info("removed %s from AuthorizationPolicy %s/%s", ZTUNNEL_ACCEPTED, namespace, name)
        else:
            log.info("AuthorizationPolicy %s/%s: %s=%s (%s)", namespace, name, ZTUNNEL_ACCEPTED,
                     condition["status"], condition["reason"])
        return True
