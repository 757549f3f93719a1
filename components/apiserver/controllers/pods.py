"""What the workload controllers share: template hashes, their pods, and making new ones."""

from __future__ import annotations

import copy
import json
from typing import Any

from components.apiserver import meta, resources
from components.apiserver.store import Store

Obj = dict[str, Any]

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def template_hash(template: Obj) -> str:
    """A stable 10-character hash of a pod template (FNV-1a, spelled with Kubernetes' safe alphabet,
    so it looks like a real `pod-template-hash`)."""
    value = FNV_OFFSET
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return meta.safe_encode(f"{value:010d}")


def owned_pods(store: Store, owner: Obj) -> list[Obj]:
    """The pods `owner` controls."""
    uid = owner["metadata"]["uid"]
    return [p for p in store.list(resources.key(resources.POD), meta.namespace_of(owner))
            if meta.controller_uid(p) == uid]


def is_active(pod: Obj) -> bool:
    return not meta.is_terminating(pod) and not meta.is_pod_terminal(pod)


def from_template(owner: Obj, generate_name: str, extra_labels: dict[str, str]) -> Obj:
    """A new pod for `owner` from its pod template."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template_meta = template.get("metadata") or {}
    metadata: Obj = {"generateName": generate_name, "namespace": meta.namespace_of(owner),
                     "labels": {**(template_meta.get("labels") or {}), **extra_labels},
                     "ownerReferences": [meta.owner_reference(owner)]}
    if template_meta.get("annotations"):
        metadata["annotations"] = template_meta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec") or {}}
