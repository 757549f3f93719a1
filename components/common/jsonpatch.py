"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), shared by the apiserver (PATCH requests)
and kubectl (client-side patches and apply)."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied; the message says which operation and path."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PatchError(f"jsonpatch path not found: {path}")
    return doc


def _index(container: list[Any], part: str, path: str, adding: bool) -> int:
    if adding and part == "-":
        return len(container)
    if not part.isdigit() or int(part) > len(container) - (0 if adding else 1):
        raise PatchError(f"jsonpatch index out of range: {path}")
    return int(part)


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    return _container(doc, parts, path)


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _container(doc, parts[:-1], path)
    if isinstance(parent, list):
        return parent.pop(_index(parent, parts[-1], path, adding=False))
    if not isinstance(parent, dict) or parts[-1] not in parent:
        raise PatchError(f"jsonpatch remove operation does not apply: doc is missing path: {path}")
    return parent.pop(parts[-1])


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _container(doc, parts[:-1], path)
    if isinstance(parent, list):
        index = _index(parent, parts[-1], path, adding=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    elif isinstance(parent, dict):
        if replace and parts[-1] not in parent:
            raise PatchError(f"jsonpatch replace operation does not apply: doc is missing key: {path}")
        parent[parts[-1]] = value
    else:
        raise PatchError(f"jsonpatch path not found: {path}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind, path = op.get("op"), op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            doc = _add(doc, path, _remove(doc, op.get("from", "")))
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc
