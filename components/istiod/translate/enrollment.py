"""Which pods are in the ambient mesh, and so which protocol ztunnel speaks to them."""

from __future__ import annotations

from typing import Mapping

from components.istiod.translate.model import (
    DATAPLANE_MODE, REDIRECTION, SIDECAR_STATUS, TUNNEL, Obj, annotations_of, labels_of, spec_of,
)


def is_ambient(pod: Obj, namespace_labels: Mapping[str, str]) -> bool:
    """istio-cni's default enablement selectors: the pod is labelled `ambient`, or its namespace is
    and the pod does not opt out with `none`. A hostNetwork pod can never be captured (its netns is
    the node's) and a pod with a sidecar keeps the sidecar, so neither is ever enrolled."""
    if spec_of(pod).get("hostNetwork") or SIDECAR_STATUS in annotations_of(pod):
        return False
    mode = labels_of(pod).get(DATAPLANE_MODE)
    if mode == "ambient":
        return True
    return mode != "none" and namespace_labels.get(DATAPLANE_MODE) == "ambient"


def tunnel_protocol(pod: Obj, namespace_labels: Mapping[str, str]) -> tuple[str, bool]:
    """(`protocol`, `nativeTunnel`) of the pod's Workload.

    istiod itself says HBONE once istio-cni has annotated the pod `ambient.istio.io/redirection:
    enabled`, or when the pod terminates HBONE itself (label `networking.istio.io/tunnel: http`,
    as waypoints do: native tunnel). Here a pod its labels enroll is HBONE too, without waiting for
    that annotation, so the config follows the labels a user sets (peers may then try HBONE a
    moment before the pod's redirection is in place, where istiod would still send plaintext).
    """
    if "http" in labels_of(pod).get(TUNNEL, "").split(","):
        return "HBONE", True
    if annotations_of(pod).get(REDIRECTION) == "enabled" or is_ambient(pod, namespace_labels):
        return "HBONE", False
    return "TCP", False
