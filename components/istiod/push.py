"""The versioned ambient config and its subscribers.

There is no queue per subscriber: each one remembers the version it was sent and, when it can
send again, takes whatever is newest. A subscriber that falls behind skips the versions it
missed; memory stays one encoded message however many subscribers there are.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field
from typing import Any

import trio

from components.common import jsonlines
from components.istiod.translate import Translation

Obj = dict[str, Any]
MESSAGE_TYPE = "ambient-config"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Subscriber:
    """One push stream, as `/debug/syncz` shows it."""

    id: str                 # istiod's connection id: `<subscriber id>-<n>`
    node: str               # the Kubernetes node the subscriber runs on
    peer: str
    connected: str = field(default_factory=_now)
    sent_version: int = 0
    sent_at: str | None = None
    pushes: int = 0

    def describe(self, current: int) -> Obj:
        return {"proxy": self.id, "node": self.node, "address": self.peer, "connected": self.connected,
                "sent_version": str(self.sent_version) if self.sent_version else None,
                "sent_at": self.sent_at, "pushes": self.pushes, "synced": self.sent_version == current}


def message(version: int, config: Obj) -> bytes:
    """One push: `{"version": "<n>", "type": "ambient-config", "workloads", "services", "policies"}`
    as a JSON line (dict keys that are ints, like service ports, become strings in JSON)."""
    return jsonlines.encode({"version": str(version), "type": MESSAGE_TYPE, **config})


class Publisher:
    """The current translation, its version (bumped only when the config changes) and the
    subscribers connected."""

    def __init__(self) -> None:
        self.version = 0
        self.translation: Translation | None = None
        self.message = b""
        self.last_push: float | None = None
        self.subscribers: dict[str, Subscriber] = {}
        self._changed = trio.Event()
        self._connections = itertools.count(1)

    @property
    def config(self) -> Obj | None:
        return self.translation.config if self.translation is not None else None

    def publish(self, translation: Translation) -> bool:
        """Take a new translation; True if its config differs from the current one (a new version)."""
        changed = self.translation is None or translation.config != self.translation.config
        self.translation = translation
        if changed:
            self.version += 1
            self.message = message(self.version, translation.config)
            self.last_push = trio.current_time()
            self._changed.set()
            self._changed = trio.Event()
        return changed

    async def newer_than(self, version: int) -> tuple[int, bytes]:
        """Wait for a version above `version`; return the newest (version, message)."""
        while self.version <= version:
            await self._changed.wait()
        return self.version, self.message

    def connect(self, subscriber_id: str, node: str, peer: str) -> Subscriber:
        subscriber = Subscriber(f"{subscriber_id}-{next(self._connections)}", node, peer)
        self.subscribers[subscriber.id] = subscriber
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber.id, None)

    def sent(self, subscriber: Subscriber, version: int) -> None:
        subscriber.sent_version = version
        subscriber.sent_at = _now()
        subscriber.pushes += 1

    def syncz(self) -> list[Obj]:
        return [s.describe(self.version) for s in sorted(self.subscribers.values(), key=lambda s: s.id)]

    def config_dump(self) -> Obj:
        return {"version": str(self.version), "config": self.config, "subscribers": self.syncz()}
