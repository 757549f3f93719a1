"""Waiting, by watching, until what a component applied is ready (istioctl's
`WaitForResources`): Namespaces Active, Deployments and DaemonSets with every pod updated and
ready as their controllers count them."""

from __future__ import annotations

from typing import Any, Callable

import trio

from components.common.apiclient import ApiClient, ApiError
from harness import readiness

Obj = dict[str, Any]
WAITED_KINDS = ("Namespace", "Deployment", "DaemonSet")


class NotReady(Exception):
    """Resources still not ready when the time ran out; the message is istioctl's."""


def resource_id(obj: Obj) -> str:
    """`Deployment/istio-system/istiod`, `Namespace/istio-system`."""
    meta = obj.get("metadata") or {}
    parts = [obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")]
    return "/".join(p for p in parts if p)


def is_ready(obj: Obj) -> bool:
    kind, meta = obj.get("kind"), obj.get("metadata") or {}
    status = obj.get("status") or {}
    if kind == "Namespace":
        return status.get("phase") == "Active"
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return False
    if kind == "Deployment":
        wanted = (obj.get("spec") or {}).get("replicas", 1)
        return status.get("updatedReplicas", 0) >= wanted and status.get("readyReplicas", 0) >= wanted
    wanted = status.get("desiredNumberScheduled", 0)
    return status.get("updatedNumberScheduled", 0) >= wanted and status.get("numberReady", 0) >= wanted


def go_duration(seconds: float) -> str:
    """Go's time.Duration String(): `5m0s`, `30s`, `1.5s`, `1h0m0s`, `500ms`."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


async def _fetch(api: ApiClient, obj: Obj) -> Obj | None:
    meta = obj.get("metadata") or {}
    try:
        return await api.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def _until_ready(api: ApiClient, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    async for event, item in api.reflect(obj["apiVersion"], obj["kind"], meta.get("namespace"),
                                         field_selector=f"metadata.name={meta['name']}"):
        current = (item.get("items") or []) if event == "SYNC" else ([] if event == "DELETED" else [item])
        if any(is_ready({"kind": obj["kind"], **c}) for c in current):
            return


async def _problem(api: ApiClient, obj: Obj) -> str:
    """Why a workload is not ready, from its pods (the first one that is not up)."""
    current = await _fetch(api, obj)
    if current is None:
        return "not found"
    selector = ((current.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if obj["kind"] != "Namespace" and selector:
        listing = await api.list("v1", "Pod", current["metadata"].get("namespace"),
                                 label_selector=",".join(f"{k}={v}" for k, v in selector.items()))
        for pod in listing.get("items") or []:
            problem = readiness.pod_problem(pod)
            if problem:
                return problem
    return readiness.workload_problem(obj["kind"], current) or "not ready"


async def wait_ready(api: ApiClient, objects: list[Obj], timeout: float,
                     on_waiting: Callable[[list[str]], None]) -> None:
    """Return once every Namespace, Deployment and DaemonSet among `objects` is ready;
    `on_waiting` hears which are not, whenever that changes. Raises NotReady at `timeout`."""
    waited = [o for o in objects if o.get("kind") in WAITED_KINDS]
    pending = {}
    for obj in waited:
        current = await _fetch(api, obj)
        if current is None or not is_ready({"kind": obj["kind"], **current}):
            pending[resource_id(obj)] = obj
    if not pending:
        return
    on_waiting(sorted(pending))

    async def watch(key: str, obj: Obj) -> None:
        await _until_ready(api, obj)
        del pending[key]
        if pending:
            on_waiting(sorted(pending))

    with trio.move_on_after(timeout):
        async with trio.open_nursery() as nursery:
            for key, obj in list(pending.items()):
                nursery.start_soon(watch, key, obj)
    if pending:
        lines = [f"  {key} ({await _problem(api, obj)})" for key, obj in sorted(pending.items())]
        raise NotReady(f"resources not ready after {go_duration(timeout)}: context deadline exceeded\n"
                       + "\n".join(lines))
