"""`kubectl label` and `kubectl annotate`: `key=value` sets, `key-` removes."""

from __future__ import annotations

import json
from typing import Any

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import flags, printers, resources
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("overwrite", kind=flags.BOOL),
    Flag("selector", "l", flags.STRING, ""),
    Flag("field-selector", kind=flags.STRING, default=""),
    Flag("all", kind=flags.BOOL),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("list", kind=flags.BOOL),
    Flag("output", "o", flags.STRING, ""),
    Flag("resource-version", kind=flags.STRING, default=""),
    Flag("dry-run", kind=flags.STRING, default="none"),
)


def split_changes(args: list[str], what: str) -> tuple[list[str], dict[str, str], list[str]]:
    """Resource arguments, keys to set and keys to remove (arguments with `=` or a trailing `-`)."""
    resource_args: list[str] = []
    updates: dict[str, str] = {}
    removals: list[str] = []
    for arg in args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            if not key:
                raise KubectlError(f"invalid {what} spec: {arg}")
            updates[key] = value
        elif arg.endswith("-") and len(arg) > 1:
            removals.append(arg[:-1])
        else:
            resource_args.append(arg)
    for key in removals:
        if key in updates:
            raise KubectlError(f"can not both modify and remove {what}s in the same command")
    return resource_args, updates, removals


def _check_overwrites(current: dict[str, str], updates: dict[str, str], annotate: bool) -> None:
    clashes = [f"'{k}' already has a value ({current[k]})" for k, v in updates.items()
               if k in current and current[k] != v and not (annotate and k == "kubernetes.io/change-cause")]
    if not clashes:
        return
    if annotate:
        raise KubectlError("--overwrite is false but found the following declared annotation(s): " + "; ".join(clashes))
    clashes = [f"{clash}, and --overwrite is false" for clash in clashes]
    raise KubectlError(clashes[0] if len(clashes) == 1 else "[" + ", ".join(clashes) + "]")


def _message(before: dict[str, Any], after: dict[str, Any], overwrite: bool, annotate: bool) -> str:
    """kubectl's verdict: `labeled`, `not labeled`, or `unlabeled` when only removals happened."""
    if annotate:
        return "annotated"
    old, new = json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)
    if old == new:
        return "not labeled"
    return "unlabeled" if not overwrite and len(new) < len(old) else "labeled"


async def _objects(resource_args: list[str], parsed: flags.Parsed, ctx: KubectlContext,
                   errors: list[BaseException]) -> list[tuple[kinds.Kind, dict[str, Any]]]:
    if not resource_args:
        raise KubectlError(resources.NO_RESOURCES)
    namespace = None if parsed["all-namespaces"] else parsed["namespace"]
    selection = resources.select(resource_args)
    found = []
    for kind, names in selection.requests:
        if names:
            for name in names:
                obj, error = await resources.get_or_error(ctx.api, kind, namespace, name)
                if error is not None:
                    errors.append(error)
                else:
                    found.append((kind, obj))
        elif parsed["all"] or parsed["selector"] or parsed["field-selector"]:
            found.extend((kind, obj) for obj in await resources.list_items(
                ctx.api, kind, namespace, label_selector=parsed["selector"], field_selector=parsed["field-selector"]))
        else:
            raise KubectlError("resource(s) were provided, but no name was specified")
    return found


async def run(parsed: flags.Parsed, ctx: KubectlContext, *, annotate: bool = False) -> int:
    what = "annotation" if annotate else "label"
    field = "annotations" if annotate else "labels"
    resource_args, updates, removals = split_changes(parsed.args, what)
    if parsed["list"]:
        errors: list[BaseException] = []
        for _, obj in await _objects(resource_args, parsed, ctx, errors):
            for key, value in ((obj.get("metadata") or {}).get(field) or {}).items():
                emit(ctx.stdout, f"{key}={value}\n")
        return report(errors, ctx.stderr, ctx.api.address)
    if not updates and not removals:
        raise KubectlError(f"at least one {what} update is required")
    errors = []
    for kind, obj in await _objects(resource_args, parsed, ctx, errors):
        meta = obj.get("metadata") or {}
        current = dict(meta.get(field) or {})
        try:
            if not parsed["overwrite"]:
                _check_overwrites(current, updates, annotate)
            if parsed["resource-version"] and meta.get("resourceVersion") != parsed["resource-version"]:
                raise KubectlError(f"the resourceVersion of {printers.object_ref(kind, obj)} has changed")
            for key in removals:
                if key not in current:
                    emit(ctx.stdout, f'{what} "{key}" not found.\n')
            updated = {k: v for k, v in current.items() if k not in removals}
            updated.update(updates)
            patch: dict[str, Any] = {k: v for k, v in updates.items() if current.get(k) != v}
            patch.update({k: None for k in removals if k in current})
            result = obj
            if patch and parsed["dry-run"] in ("none", "false", ""):
                result = await ctx.api.patch(kind.api_version, kind.kind, meta.get("namespace"), meta["name"],
                                             {"metadata": {field: patch}})
        except (ApiError, KubectlError) as exc:
            errors.append(exc)
            continue
        if parsed["output"] == "name":
            emit(ctx.stdout, printers.object_ref(kind, result) + "\n")
        else:
            verdict = _message({field: current}, {field: updated}, parsed["overwrite"], annotate)
            emit(ctx.stdout, f"{printers.object_ref(kind, result)} {verdict}\n")
    return report(errors, ctx.stderr, ctx.api.address)
