"""Small helpers about object metadata: timestamps, generated names, readiness."""

from __future__ import annotations

import datetime
import secrets
from typing import Any

# Kubernetes' `rand.String` alphabet: no vowels (no words) and no look-alike characters.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def rfc3339(moment: datetime.datetime) -> str:
    """`2024-03-17T12:07:08Z`, the format of every timestamp in the API."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def now() -> str:
    return rfc3339(utc_now())


def random_suffix(length: int = 5) -> str:
    """The random tail of a generated name (`generateName`)."""
    return "".join(secrets.choice(SAFE_ALPHABET) for _ in range(length))


def safe_encode(text: str) -> str:
    """Kubernetes' `rand.SafeEncodeString`: map each byte onto the safe alphabet."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def name_of(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("name", "")


def namespace_of(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("namespace", "")


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def is_pod_ready(pod: dict[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_pod_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [ref.get("uid", "") for ref in obj.get("metadata", {}).get("ownerReferences") or []]


def controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """The ownerReference a controller puts on the objects it makes."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name_of(owner),
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any], stamp: str,
                  update_field: str | None = None) -> list[dict[str, Any]]:
    """Conditions with `new` put in place. `lastTransitionTime` moves only when the status changes;
    `update_field` (e.g. `lastUpdateTime`), if given, whenever status, reason or message change."""
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    merged = dict(new)
    same_status = old is not None and old.get("status") == new.get("status")
    merged["lastTransitionTime"] = old.get("lastTransitionTime", stamp) if same_status and old else stamp
    if update_field:
        same = same_status and old is not None and all(old.get(f) == new.get(f) for f in ("reason", "message"))
        merged[update_field] = old.get(update_field, stamp) if same and old else stamp
    if old is None:
        return [*conditions, merged]
    return [merged if c is old else c for c in conditions]
