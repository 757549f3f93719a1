"""Watch streams: newline-delimited JSON events from the store's history.

A watch from a resourceVersion replays the events after it (410 Expired if the history no longer
has them all); a watch without one starts with an ADDED event per existing object. Events are
filtered by namespace and selectors; an object that stops matching is sent as DELETED and one that
starts matching as ADDED, as kube-apiserver's watch cache does. A blank line every
HEARTBEAT seconds of silence notices clients that went away.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Callable

import trio

from components.apiserver import errors
from components.apiserver.store import Event, GroupKind, Store

Obj = dict[str, Any]
HEARTBEAT = 30.0


def _line(type_: str, obj: Obj) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _event_type(event: Event, accept: Callable[[Obj], bool]) -> str | None:
    now = accept(event.obj)
    if event.type != "MODIFIED":
        return event.type if now else None
    before = event.old is not None and accept(event.old)
    if now:
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


def expired_line(store: Store, requested: int) -> bytes:
    status = errors.expired(f"too old resource version: {requested} ({store.oldest_resource_version})").status()
    return _line("ERROR", status)


async def stream(store: Store, group_kind: GroupKind, namespace: str | None, accept: Callable[[Obj], bool],
                 present: Callable[[Obj], Obj], since: int | None, timeout: float | None) -> AsyncIterator[bytes]:
    """The body of a watch response, until `timeout` seconds have passed or the client leaves."""
    deadline = trio.current_time() + timeout if timeout else float("inf")
    if since is None:
        initial = [o for o in store.list(group_kind, namespace) if accept(o)]
        since = store.resource_version
        for obj in initial:
            yield _line("ADDED", present(obj))
    while True:
        batch = store.events_since(since)
        if batch is None:
            yield expired_line(store, since)
            return
        for event in batch:
            since = event.rv
            if event.group_kind != group_kind or (namespace and event.namespace != namespace):
                continue
            type_ = _event_type(event, accept)
            if type_ is not None:
                yield _line(type_, present(event.obj))
        if batch:
            continue
        with trio.move_on_at(min(deadline, trio.current_time() + HEARTBEAT)):
            await store.wait_beyond(since)
        if trio.current_time() >= deadline:
            return
        if store.resource_version <= since:
            yield b"\n"
