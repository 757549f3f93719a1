"""Computing updated objects on the client: `kubectl apply`'s three-way merge and the
strategic-merge and JSON patches of `kubectl patch`.

The result is sent with PUT and the object's resourceVersion, so a concurrent change is a
Conflict that the caller retries, as kubectl retries its patches.
"""

from __future__ import annotations

import copy
from typing import Any

from components.common import jsonpatch
from harness.kubectl.errors import KubectlError

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Lists Kubernetes merges element by element (patchMergeKey), by field name.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
    "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",), "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",), "hostAliases": ("ip",), "conditions": ("type",),
    "ownerReferences": ("uid",), "topologySpreadConstraints": ("topologyKey",),
    "ports": ("containerPort", "port"), "readinessGates": ("conditionType",),
}


def _merge_key(name: str, *lists: list[Any] | None) -> str | None:
    """The key a list field merges on, if all its elements are objects carrying it."""
    elements = [e for items in lists for e in (items or [])]
    for key in MERGE_KEYS.get(name, ()):
        if elements and all(isinstance(e, dict) and key in e for e in elements):
            return key
    return None


def three_way(original: Any, modified: Any, current: Any) -> Any:
    """What `kubectl apply` makes of the live object: fields in the new configuration are set,
    fields dropped from the last applied configuration are removed, and fields nobody declared
    (defaults, other writers' labels, scaled replicas) are kept."""
    if not isinstance(modified, dict) or not isinstance(current, dict):
        return copy.deepcopy(modified)
    original = original if isinstance(original, dict) else {}
    result = copy.deepcopy(current)
    for key in original:
        if key not in modified:
            result.pop(key, None)
    for key, value in modified.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(current.get(key), dict):
            result[key] = three_way(original.get(key), value, current[key])
        elif isinstance(value, list) and isinstance(current.get(key), list):
            result[key] = _merge_lists(key, original.get(key), value, current[key])
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_lists(name: str, original: Any, modified: list[Any], current: list[Any]) -> list[Any]:
    original_list = original if isinstance(original, list) else []
    key = _merge_key(name, original_list, modified, current)
    if key is None:
        return copy.deepcopy(modified)
    by_key_current = {e[key]: e for e in current}
    by_key_original = {e[key]: e for e in original_list}
    declared = {e[key] for e in modified}
    merged = [three_way(by_key_original.get(e[key]), e, by_key_current[e[key]]) if e[key] in by_key_current
              else copy.deepcopy(e) for e in modified]
    kept = [copy.deepcopy(e) for e in current if e[key] not in declared and e[key] not in by_key_original]
    return merged + kept


def strategic_merge(current: Any, patch: Any) -> Any:
    """A strategic merge patch: objects merge, null deletes, keyed lists merge by key
    (`$patch: delete` removes an element, `$patch: replace` replaces the list), other lists
    are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _patch_list(key, result[key], value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def _patch_list(name: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    elements = [e for e in patch if not (isinstance(e, dict) and e.get("$patch") == "delete")]
    key = _merge_key(name, current, elements)
    if key is None:
        return copy.deepcopy(patch)
    result = copy.deepcopy(current)
    for element in patch:
        if key not in element:
            continue
        index = next((i for i, e in enumerate(result) if e.get(key) == element[key]), None)
        if element.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(copy.deepcopy(element))
        else:
            result[index] = strategic_merge(result[index], element)
    return result


def merge_patch(current: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    return jsonpatch.merge_patch(current, patch)


def json_patch(current: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; a patch that does not apply is kubectl's error."""
    try:
        return jsonpatch.json_patch(current, operations)
    except jsonpatch.PatchError as exc:
        raise KubectlError(str(exc)) from exc


