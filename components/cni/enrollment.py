"""Which pods istio-cni captures (istio/istio `cni/pkg/util.PodRedirectionEnabled` and its callers)."""

from __future__ import annotations

import enum
from typing import Any

DATAPLANE_MODE = "istio.io/dataplane-mode"
MODE_AMBIENT = "ambient"
MODE_NONE = "none"
SIDECAR_STATUS = "sidecar.istio.io/status"
REDIRECTION = "ambient.istio.io/redirection"
REDIRECTION_ENABLED = "enabled"
TERMINAL_PHASES = ("Succeeded", "Failed")


class Capture(enum.Enum):
    ENROLL = "enroll"  # capture it now
    NO_IP = "no-ip"  # wants capture, but has no IP yet
    TERMINAL = "terminal"  # finished: drop it from ztunnel, its netns is going away
    OUT = "out"  # not (or no longer) in the mesh


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def is_ztunnel_pod(pod: dict[str, Any], system_namespace: str = "istio-system") -> bool:
    return pod["metadata"].get("namespace") == system_namespace and _labels(pod).get("app") == "ztunnel"


def redirection_enabled(pod: dict[str, Any], namespace: dict[str, Any] | None) -> bool:
    """Ambient on the namespace or the pod, the pod not opted out, no sidecar, not hostNetwork."""
    pod_mode = _labels(pod).get(DATAPLANE_MODE)
    if _labels(namespace).get(DATAPLANE_MODE) != MODE_AMBIENT and pod_mode != MODE_AMBIENT:
        return False
    if SIDECAR_STATUS in _annotations(pod):
        return False  # ztunnel and a sidecar for one pod is not supported
    if pod_mode == MODE_NONE:
        return False
    return not (pod.get("spec") or {}).get("hostNetwork")


def pod_ips(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [entry["ip"] for entry in status.get("podIPs") or [] if entry.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


def is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def is_annotated(pod: dict[str, Any]) -> bool:
    return _annotations(pod).get(REDIRECTION) == REDIRECTION_ENABLED


def evaluate(pod: dict[str, Any], namespace: dict[str, Any] | None,
             system_namespace: str = "istio-system") -> Capture:
    """What the agent should do with a pod of its node, given the pod's namespace object."""
    if is_terminal(pod):
        return Capture.TERMINAL
    if is_ztunnel_pod(pod, system_namespace) or not redirection_enabled(pod, namespace):
        return Capture.OUT
    return Capture.ENROLL if pod_ips(pod) else Capture.NO_IP


def namespace_ambient(namespace: dict[str, Any]) -> bool:
    return _labels(namespace).get(DATAPLANE_MODE) == MODE_AMBIENT


def service_account(pod: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"


def container_names(pod: dict[str, Any]) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
