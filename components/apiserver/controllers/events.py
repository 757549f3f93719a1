"""Recording Kubernetes Events (what `kubectl describe` and `kubectl get events` show)."""

from __future__ import annotations

import logging
import time
from typing import Any

from components.apiserver import meta, resources
from components.apiserver.errors import StatusError
from components.apiserver.registry import Registry

log = logging.getLogger(__name__)


def record(registry: Registry, involved: dict[str, Any], type_: str, reason: str, message: str,
           component: str) -> None:
    """Create an Event about `involved`; failing to record one is not an error."""
    stamp = meta.now()
    namespace = meta.namespace_of(involved) or "default"
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta.name_of(involved)}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": {"kind": involved["kind"], "namespace": meta.namespace_of(involved),
                           "name": meta.name_of(involved), "uid": involved["metadata"]["uid"],
                           "apiVersion": involved["apiVersion"],
                           "resourceVersion": involved["metadata"].get("resourceVersion", "")},
        "reason": reason, "message": message, "source": {"component": component},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": type_,
        "eventTime": None, "reportingComponent": component, "reportingInstance": "",
    }
    try:
        registry.create(resources.EVENT, namespace, event)
    except StatusError as exc:
        log.debug("could not record event %s for %s: %s", reason, meta.name_of(involved), exc)
