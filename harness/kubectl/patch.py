"""`kubectl patch` (strategic, merge and JSON patches) and `kubectl scale`."""

from __future__ import annotations

from typing import Any

import yaml

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import apply, flags, merge, printers, resources
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag
from harness.kubectl.manifests import Loader

PATCH_FLAGS = (
    Flag("patch", "p", flags.STRING, ""),
    Flag("type", kind=flags.STRING, default="strategic"),
    Flag("output", "o", flags.STRING, ""),
    Flag("dry-run", kind=flags.STRING, default="none"),
)

SCALE_FLAGS = (
    Flag("replicas", kind=flags.INT, default=-1),
    Flag("current-replicas", kind=flags.INT, default=-1),
    Flag("output", "o", flags.STRING, ""),
)

BUILTIN_GROUPS = ("", "apps", "authentication.k8s.io")
CONFLICT_RETRIES = 5


def _named(args: list[str], command: str) -> list[tuple[kinds.Kind, str]]:
    selection = resources.select(args)
    targets = [(kind, name) for kind, names in selection.requests for name in names]
    if not targets:
        raise KubectlError(f"resource(s) were provided, but no name was specified\n"
                           f"See 'kubectl {command} -h' for help and examples" if args else
                           f"You must provide one or more resources by argument or filename.\n"
                           f"See 'kubectl {command} -h' for help and examples")
    return targets


def parse_patch(text: str) -> Any:
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        raise KubectlError(f'unable to parse "{text}": {exc}') from exc


def patched(current: dict[str, Any], patch: Any, patch_type: str, kind: kinds.Kind) -> dict[str, Any]:
    if patch_type == "json":
        return merge.json_patch(current, patch)
    if patch_type == "merge":
        return merge.merge_patch(current, patch)
    if kind.group not in BUILTIN_GROUPS:
        raise ApiError({"kind": "Status", "code": 415, "reason": "UnsupportedMediaType",
                        "message": "the body of the request was in an unknown format - accepted media types "
                                   "include: application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml"})
    return merge.strategic_merge(current, patch)


async def patch_object(ctx: KubectlContext, kind: kinds.Kind, namespace: str | None, name: str, patch: Any,
                       patch_type: str, dry_run: bool) -> tuple[dict[str, Any], bool]:
    """Apply the patch to the live object: (result, whether anything changed)."""
    attempt = 1
    while True:
        current = await ctx.api.get(kind.api_version, kind.kind, namespace, name)
        desired = patched(current, patch, patch_type, kind)
        if desired == current:
            return current, False
        if dry_run:
            return desired, True
        try:
            return await ctx.api.replace(desired), True
        except ApiError as exc:
            if exc.code != 409 or exc.reason != "Conflict" or attempt == CONFLICT_RETRIES:
                raise
        attempt += 1


async def run_patch(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed["patch"]:
        raise KubectlError("must specify -p to patch")
    if parsed["type"] not in ("json", "merge", "strategic"):
        raise KubectlError(f'--type must be one of [json merge strategic], not "{parsed["type"]}"')
    patch = parse_patch(parsed["patch"])
    suffix = apply.dry_run_suffix(parsed["dry-run"])
    writer = apply.ObjectWriter(ctx, parsed["output"], suffix)
    errors: list[BaseException] = []
    for kind, name in _named(parsed.args, "patch"):
        try:
            result, changed = await patch_object(ctx, kind, resources.namespace_of(kind, parsed["namespace"]), name,
                                                 patch, parsed["type"], bool(suffix))
        except (ApiError, KubectlError) as exc:
            errors.append(exc)
            continue
        writer.write(kind, result, "patched" if changed else "patched (no change)")
    return report(errors, ctx.stderr, ctx.api.address)


async def run_scale(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if "replicas" not in parsed.given:
        raise KubectlError('required flag(s) "replicas" not set')
    if parsed["replicas"] < 0:
        raise KubectlError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    errors: list[BaseException] = []
    for kind, name in _named(parsed.args, "scale"):
        namespace = resources.namespace_of(kind, parsed["namespace"])
        try:
            if kind.kind not in ("Deployment", "ReplicaSet", "StatefulSet"):
                raise ApiError({"kind": "Status", "code": 404, "reason": "NotFound",
                                "message": "the server could not find the requested resource"})
            if parsed["current-replicas"] >= 0:
                current = await ctx.api.get(kind.api_version, kind.kind, namespace, name)
                replicas = (current.get("spec") or {}).get("replicas", 1)
                if replicas != parsed["current-replicas"]:
                    raise KubectlError(f"Expected replicas to be {parsed['current-replicas']}, was {replicas}")
            result = await ctx.api.patch(kind.api_version, kind.kind, namespace, name,
                                         {"spec": {"replicas": parsed["replicas"]}})
        except (ApiError, KubectlError) as exc:
            errors.append(exc)
            continue
        if parsed["output"] == "name":
            emit(ctx.stdout, printers.object_ref(kind, result) + "\n")
        else:
            emit(ctx.stdout, f"{printers.object_ref(kind, result)} scaled\n")
    return report(errors, ctx.stderr, ctx.api.address)
