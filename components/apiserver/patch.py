"""PATCH bodies: JSON merge patch (RFC 7386; strategic merge patches are applied the same way) and
JSON patch (RFC 6902)."""

from __future__ import annotations

from typing import Any

from components.common.jsonpatch import PatchError, json_patch, merge_patch

MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
JSON_PATCH_TYPE = "application/json-patch+json"

__all__ = ["MERGE_TYPES", "JSON_PATCH_TYPE", "PatchError", "apply", "merge_patch"]


def apply(target: dict[str, Any], body: Any, content_type: str) -> Any:
    """The patched copy of `target`."""
    if content_type in MERGE_TYPES:
        return merge_patch(target, body)
    return json_patch(target, body)
