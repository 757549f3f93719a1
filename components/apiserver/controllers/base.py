"""The controller loop: level-triggered reconciliation of keys derived from store events.

A controller maps each store event to the keys it affects, and reconciles one key at a time by
reading the store and writing through the registry. Each reconcile is synchronous, so it sees and
changes the cluster in one atomic step; its own writes come back as events and are no-ops the
second time. A failed key is retried with a growing delay; if the controller falls so far behind
that the history no longer holds the events it missed, it reconciles everything again.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import Hashable, Iterable

import trio

from components.apiserver.errors import StatusError
from components.apiserver.registry import Registry
from components.apiserver.store import Event

log = logging.getLogger(__name__)

RETRY_START = 0.2
RETRY_MAX = 5.0


class Controller(ABC):
    name = "controller"

    def __init__(self, registry: Registry):
        self.registry = registry
        self.store = registry.store

    @abstractmethod
    def resync(self) -> Iterable[Hashable]:
        """Every key there is to reconcile (at start, and after missing events)."""

    @abstractmethod
    def keys_for(self, event: Event) -> Iterable[Hashable]:
        """The keys a change affects."""

    @abstractmethod
    def reconcile(self, key: Hashable) -> None:
        """Bring the cluster in line for one key."""


async def run(controller: Controller) -> None:
    """Run a controller until cancelled."""
    store = controller.store
    queue: dict[Hashable, None] = dict.fromkeys(controller.resync())
    since = store.resource_version
    retries: dict[Hashable, tuple[float, float]] = {}
    while True:
        while queue:
            key = next(iter(queue))
            del queue[key]
            try:
                controller.reconcile(key)
                retries.pop(key, None)
            except Exception as exc:
                delay = min(retries.get(key, (0.0, RETRY_START / 2))[1] * 2, RETRY_MAX)
                retries[key] = (trio.current_time() + delay, delay)
                if isinstance(exc, StatusError):
                    log.info("%s: syncing %s failed, retrying in %.1fs: %s", controller.name, key, delay, exc)
                else:
                    log.exception("%s: syncing %s failed, retrying in %.1fs", controller.name, key, delay)
            await trio.sleep(0)
        next_retry = min((due for due, _ in retries.values() if due > 0), default=math.inf)
        with trio.move_on_at(next_retry):
            await store.wait_beyond(since)
        now = trio.current_time()
        for key, (due, delay) in list(retries.items()):
            if 0 < due <= now:
                retries[key] = (0.0, delay)
                queue[key] = None
        events = store.events_since(since)
        since = store.resource_version
        if events is None:
            queue.update(dict.fromkeys(controller.resync()))
            continue
        for event in events:
            queue.update(dict.fromkeys(controller.keys_for(event)))
