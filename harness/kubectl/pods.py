"""Finding the pod behind `deploy/NAME`, `svc/NAME`, ... and its default container, shared by
`logs` and `exec`."""

from __future__ import annotations

from typing import Any, TextIO

import trio

from components.common import kinds
from components.common.apiclient import ApiClient
from harness.kubectl import resources, tables, timefmt
from harness.kubectl.errors import KubectlError

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _ready_since(pod: dict[str, Any]) -> float:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            stamp = timefmt.parse_time(cond.get("lastTransitionTime"))
            if stamp is not None:
                return stamp.timestamp()
    return float("inf")


def _rank(pod: dict[str, Any], prefer_restarted: bool) -> tuple[Any, ...]:
    """kubectl's pod choice: bound, running, ready, ready for longest, then (for logs) most
    restarted or (for exec) least restarted, then oldest."""
    status = pod.get("status") or {}
    restarts = max((c.get("restartCount", 0) for c in status.get("containerStatuses") or []), default=0)
    created = timefmt.parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    ready = is_ready(pod)
    return (0 if (pod.get("spec") or {}).get("nodeName") else 1,
            -_PHASE_ORDINAL.get(status.get("phase", ""), 0),
            0 if ready else 1,
            _ready_since(pod) if ready else 0.0,
            -restarts if prefer_restarted else restarts,
            created.timestamp() if created else float("inf"))


def selector_for(kind: kinds.Kind, obj: dict[str, Any]) -> str:
    """The label selector of the pods an object owns, as kubectl's SelectorsForObject."""
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    if kind.kind == "Service":
        if not spec.get("selector"):
            raise KubectlError(f"invalid service '{name}': Service is defined without a selector")
        return ",".join(f"{k}={v}" for k, v in sorted(spec["selector"].items()))
    if kind.kind in ("Deployment", "DaemonSet", "ReplicaSet", "StatefulSet", "Job"):
        selector = tables.selector_string(spec.get("selector"))
        if not selector:
            raise KubectlError(f"{kind.kind.lower()} {name} has no selector")
        return selector
    go_type = f"*{kind.version}.{kind.kind}"
    raise KubectlError(f"cannot attach to {go_type}: selector for {go_type} not implemented")


async def first_pod(api: ApiClient, namespace: str, selector: str, *, for_logs: bool,
                    timeout: float = 20.0) -> tuple[dict[str, Any], int]:
    """The pod kubectl picks among those matching `selector` and how many matched; when none
    does yet, waits (up to `timeout`) for one to appear."""
    listing = await api.list("v1", "Pod", namespace, label_selector=selector)
    pods = list(listing.get("items") or [])
    if pods:
        pods.sort(key=lambda p: _rank(p, for_logs))
        return pods[0], len(pods)
    with trio.move_on_after(timeout):
        version = (listing.get("metadata") or {}).get("resourceVersion")
        async with api.watch("v1", "Pod", namespace, resource_version=version, label_selector=selector) as events:
            async for event in events:
                if event.get("type") in ("ADDED", "MODIFIED"):
                    return event["object"], 1
    raise KubectlError("timed out waiting for the condition")


async def resolve_pod(api: ApiClient, namespace: str, arg: str, *, for_logs: bool, stderr: TextIO | None = None,
                      timeout: float = 20.0) -> dict[str, Any]:
    """The pod named by `POD`, `pod/NAME` or `TYPE/NAME` of a workload or service."""
    kind, name = resources.split_type_name(arg)
    obj = await api.get(kind.api_version, kind.kind, resources.namespace_of(kind, namespace), name)
    if kind.kind == "Pod":
        return obj
    pod, count = await first_pod(api, namespace, selector_for(kind, obj), for_logs=for_logs, timeout=timeout)
    if count > 1 and stderr is not None:
        stderr.write(f"Found {count} pods, using pod/{pod['metadata']['name']}\n")
    return pod


def container_names(pod: dict[str, Any]) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]


def all_container_names(pod: dict[str, Any]) -> str:
    """podcmd.AllContainerNames: `a, b, init (init)`."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    names += [f"{c.get('name', '')} (init)" for c in spec.get("initContainers") or []]
    names += [f"{c.get('name', '')} (ephem)" for c in spec.get("ephemeralContainers") or []]
    return ", ".join(names)


def default_container(pod: dict[str, Any], stderr: TextIO) -> str:
    """The container kubectl picks without -c: the default-container annotation, else the
    first container (with kubectl's notice when there was a choice)."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    meta = pod.get("metadata") or {}
    if not containers:
        raise KubectlError(f"pod {meta.get('namespace')}/{meta.get('name')} does not have any containers")
    annotated = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if annotated and annotated in container_names(pod):
        return annotated
    first = containers[0].get("name", "")
    if len(containers) > 1 or spec.get("initContainers") or spec.get("ephemeralContainers"):
        stderr.write(f'Defaulted container "{first}" out of: {all_container_names(pod)}\n')
    return first


def container_status(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == container:
            return cs
    return None

