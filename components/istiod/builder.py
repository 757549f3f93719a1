"""The push loop: wait for the caches, then rebuild the config after each burst of changes.

Changes are debounced as istiod does (PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX, shortened): a
build waits until no change came for `after`, but never longer than `maximum` after the first
change. Labelling a namespace of a hundred pods is one push; a single change is pushed within
`after` plus the translation time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from components.istiod.push import Publisher
from components.istiod.status import StatusWriter
from components.istiod.translate import Translation, translate
from components.istiod.watcher import Cache

log = logging.getLogger("istiod.ads")
ambient_log = logging.getLogger("istiod.ambient")


@dataclass(frozen=True)
class Debounce:
    after: float = 0.03
    maximum: float = 0.3


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _describe(changes: list[str]) -> str:
    """istiod's `for config Pod/default/x and 2 more configs`."""
    unique = list(dict.fromkeys(changes))
    more = f" and {len(unique) - 1} more configs" if len(unique) > 1 else ""
    return f"{unique[0]}{more}" if unique else "nothing"


class Builder:
    def __init__(self, cache: Cache, publisher: Publisher, status: StatusWriter,
                 snapshot_options: dict[str, Any], debounce: Debounce = Debounce()) -> None:
        self.cache = cache
        self.publisher = publisher
        self.status = status
        self.snapshot_options = snapshot_options
        self.debounce = debounce
        self.builds = 0

    def build(self) -> Translation | None:
        """Translate the cache; None (keeping the current config) if the translation failed."""
        try:
            return translate(self.cache.snapshot(**self.snapshot_options))
        except Exception:
            ambient_log.exception("failed to translate the cluster's objects; keeping version %d",
                                  self.publisher.version)
            return None

    def push(self, translation: Translation) -> None:
        self.builds += 1
        config = translation.config
        if self.publisher.publish(translation):
            log.info("Pushing ambient config version %d to %d subscribers (workloads:%d services:%d policies:%d)",
                     self.publisher.version, len(self.publisher.subscribers), len(config["workloads"]),
                     len(config["services"]), len(config["policies"]))
        else:
            log.debug("ambient config unchanged, version stays %d", self.publisher.version)
        self.status.update(translation.policy_status)

    async def _stable(self) -> tuple[list[str], float]:
        """Wait for a burst of changes to settle; (what changed, time since the last change)."""
        await self.cache.config_dirty.wait()
        while True:
            first, last = self.cache.first_change, self.cache.last_change
            assert first is not None and last is not None
            deadline = min(last + self.debounce.after, first + self.debounce.maximum)
            if trio.current_time() >= deadline:
                break
            await trio.sleep_until(deadline)
        return self.cache.take_changes(), trio.current_time() - last

    async def run(self, ready: trio.Event) -> None:
        """Build after the first sync of every watch (then `ready` is set), and after each burst."""
        started = trio.current_time()
        await self.cache.synced.wait()
        self.cache.take_changes()
        while (translation := self.build()) is None:
            await self.cache.config_dirty.wait()
            self.cache.take_changes()
        self.push(translation)
        log.info("All caches have been synced up in %s, marking server ready", _ms(trio.current_time() - started))
        ready.set()
        while True:
            changes, since_change = await self._stable()
            since_push = trio.current_time() - (self.publisher.last_push or started)
            log.info("Push debounce stable[%d] %d for config %s: %s since last change, %s since last push, "
                     "full=true", self.builds + 1, len(changes), _describe(changes), _ms(since_change),
                     _ms(since_push))
            translation = self.build()
            if translation is not None:
                self.push(translation)
