"""The built-in kinds the apiserver's own code refers to, from the one kinds table."""

from __future__ import annotations

from components.common import kinds


def _served(api_version: str, kind: str) -> kinds.Kind:
    found = kinds.served(api_version, kind)
    if found is None:
        raise LookupError(f"{api_version} {kind} is missing from components/common/kinds.py")
    return found


NAMESPACE = _served("v1", "Namespace")
NODE = _served("v1", "Node")
POD = _served("v1", "Pod")
SERVICE = _served("v1", "Service")
ENDPOINTS = _served("v1", "Endpoints")
SERVICE_ACCOUNT = _served("v1", "ServiceAccount")
SECRET = _served("v1", "Secret")
EVENT = _served("v1", "Event")
DEPLOYMENT = _served("apps/v1", "Deployment")
DAEMONSET = _served("apps/v1", "DaemonSet")
TOKEN_REVIEW = _served("authentication.k8s.io/v1", "TokenReview")

# Kinds without a `/status` subresource. Every other kind (Pod, Node, Namespace, Service, the apps
# kinds, and the CRD-backed Istio and Gateway kinds) has one: its status is written only there.
WITHOUT_STATUS = frozenset({("", "ConfigMap"), ("", "Secret"), ("", "ServiceAccount"), ("", "Endpoints"),
                            ("", "Event")})
# Kinds the apiserver answers but never stores.
VIRTUAL = frozenset({("authentication.k8s.io", "TokenReview")})


def has_status(group_kind: tuple[str, str]) -> bool:
    return group_kind not in WITHOUT_STATUS


def key(kind: kinds.Kind) -> tuple[str, str]:
    """The storage key of a kind (group, Kind)."""
    return kinds.storage_key(kind.api_version, kind.kind)
