"""Waiting until a cluster's workloads are up, by watching them (never by sleeping)."""

from __future__ import annotations

import math
from typing import Any

import trio

from components.common.apiclient import ApiClient

WATCHED = (("v1", "Pod"), ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"))


class NotReady(Exception):
    """The cluster did not become ready in time; the message lists what was still pending."""


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why a pod is not up yet (None when it is Running and Ready, or has completed)."""
    meta, status = pod["metadata"], pod.get("status", {})
    ref = f"pod {meta.get('namespace')}/{meta['name']}"
    phase = status.get("phase", "Pending")
    if phase == "Succeeded":
        return None
    if meta.get("deletionTimestamp"):
        return f"{ref}: terminating"
    ready = _condition(pod, "Ready")
    if phase == "Running" and ready and ready.get("status") == "True":
        return None
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return f"{ref}: Pending: {scheduled.get('message') or scheduled.get('reason', 'not scheduled')}"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if key in state and state[key].get("reason") not in (None, "ContainerCreating"):
                detail = state[key].get("message") or ""
                return f"{ref}: container {cs['name']}: {state[key]['reason']}{': ' + detail if detail else ''}"
    if status.get("message"):
        return f"{ref}: {status['message']}"
    return f"{ref}: {phase}{'' if phase != 'Running' else ', not ready'}"


def workload_problem(kind: str, obj: dict[str, Any]) -> str | None:
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    ref = f"{kind.lower()} {meta.get('namespace')}/{meta['name']}"
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return f"{ref}: not yet observed by its controller"
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        have = status.get("readyReplicas", 0)
        return None if have >= want else f"{ref}: {have}/{want} replicas ready"
    want = status.get("desiredNumberScheduled", 0)
    have = status.get("numberReady", 0)
    return None if have >= want else f"{ref}: {have}/{want} pods ready"


def problems(objects: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> list[str]:
    found: list[str] = []
    for (_, kind), items in objects.items():
        for obj in items.values():
            problem = pod_problem(obj) if kind == "Pod" else workload_problem(kind, obj)
            if problem:
                found.append(problem)
    return sorted(found)


async def wait_ready(api: ApiClient, timeout: float = math.inf) -> None:
    """Return once every pod is Running and Ready (or completed) and every Deployment and DaemonSet
    has all its replicas ready; raise NotReady naming what is still pending at `timeout`."""
    objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {key: {} for key in WATCHED}
    synced: set[tuple[str, str]] = set()
    changed = trio.Event()

    async def follow(key: tuple[str, str]) -> None:
        async for event, obj in api.reflect(*key):
            cache = objects[key]
            if event == "SYNC":
                cache.clear()
                cache.update({item["metadata"]["uid"]: item for item in obj["items"]})
                synced.add(key)
            elif event == "DELETED":
                cache.pop(obj["metadata"]["uid"], None)
            else:
                cache[obj["metadata"]["uid"]] = obj
            changed.set()

    async with trio.open_nursery() as nursery:
        for key in WATCHED:
            nursery.start_soon(follow, key)
        with trio.move_on_after(timeout):
            while True:
                await changed.wait()
                changed = trio.Event()
                if len(synced) == len(WATCHED) and objects[("v1", "Pod")] and not problems(objects):
                    nursery.cancel_scope.cancel()
                    return
        pending = problems(objects)
        nursery.cancel_scope.cancel()
    raise NotReady("not ready after {:.0f}s:\n  ".format(timeout) + "\n  ".join(pending or ["no pods yet"]))
