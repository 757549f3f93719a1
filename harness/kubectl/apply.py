"""`kubectl apply -f`: client-side apply with the last-applied-configuration annotation.

The live object is merged three ways (last applied, new configuration, live) and written back
with its resourceVersion, so fields other writers set (a label added with `kubectl label`,
replicas changed with `kubectl scale`, defaults the apiserver filled in) survive a re-apply.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl import flags, jsonpath, manifests, merge, printers
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, SourcedApiError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("filename", "f", flags.STRINGS),
    Flag("recursive", "R", flags.BOOL),
    Flag("output", "o", flags.STRING, ""),
    Flag("dry-run", kind=flags.STRING, default="none"),
    Flag("server-side", kind=flags.BOOL),
    Flag("force-conflicts", kind=flags.BOOL),
    Flag("field-manager", kind=flags.STRING, default="kubectl-client-side-apply"),
    Flag("validate", kind=flags.STRING, default="strict"),
)

MISSING_ANNOTATION = ("Warning: resource {ref} is missing the kubectl.kubernetes.io/last-applied-configuration "
                      "annotation which is required by kubectl apply. kubectl apply should only be used on "
                      "resources created declaratively by either kubectl create --save-config or kubectl apply. "
                      "The missing annotation will be patched automatically.\n")
CONFLICT_RETRIES = 5


def dry_run_suffix(value: str) -> str:
    if value in ("", "none", "false"):
        return ""
    if value in ("client", "true"):
        return " (dry run)"
    if value == "server":
        return " (server dry run)"
    raise KubectlError(f'Invalid dry-run value ({value}). Must be "none", "server", or "client".')


def place(item: manifests.Item, kind: kinds.Kind, parsed: flags.Parsed) -> dict[str, Any]:
    """The object with its namespace settled as kubectl does: an explicit -n must agree with the
    manifest's namespace; otherwise -n (or "default") fills it in."""
    obj = copy.deepcopy(item.obj)
    meta = obj.setdefault("metadata", {})
    if not kind.namespaced:
        return obj
    given = parsed["namespace"]
    if meta.get("namespace") and "namespace" in parsed.given and meta["namespace"] != given:
        raise KubectlError(f'the namespace from the provided object "{meta["namespace"]}" does not match the '
                           f'namespace "{given}". You must pass \'--namespace={meta["namespace"]}\' to perform '
                           "this operation.")
    if not meta.get("namespace"):
        meta["namespace"] = given
    return obj


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """The object carrying its own configuration in the annotation, as kubectl serializes it."""
    bare = copy.deepcopy(obj)
    annotations = bare.setdefault("metadata", {}).get("annotations") or {}
    annotations.pop(merge.LAST_APPLIED, None)
    if annotations:
        bare["metadata"]["annotations"] = annotations
    else:
        bare["metadata"].pop("annotations", None)
    result = copy.deepcopy(bare)
    result["metadata"].setdefault("annotations", {})[merge.LAST_APPLIED] = jsonpath.go_json(bare) + "\n"
    return result


def _describe(kind: kinds.Kind, meta: dict[str, Any]) -> str:
    """How kubectl names the object in apply errors (Go's GroupVersionResource/Kind strings)."""
    return (f'Resource: "{kind.group}/{kind.version}, Resource={kind.plural}", GroupVersionKind: '
            f'"{kind.group}/{kind.version}, Kind={kind.kind}"\nName: "{meta.get("name", "")}", Namespace: '
            f'"{meta.get("namespace", "")}"')


async def apply_object(api: ApiClient, kind: kinds.Kind, obj: dict[str, Any], source: str, *, dry_run: bool,
                       warn: Callable[[str], object]) -> tuple[str, dict[str, Any]]:
    """Create or update one object: ("created" | "configured" | "unchanged", resulting object)."""
    meta = obj["metadata"]
    if not meta.get("name"):
        raise KubectlError(f"error when retrieving current configuration of:\n{_describe(kind, meta)}\n"
                           f'from server for: "{source}": resource name may not be empty')
    modified = with_last_applied(obj)
    for attempt in range(CONFLICT_RETRIES):
        try:
            current = await api.get(kind.api_version, kind.kind, meta.get("namespace"), meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise SourcedApiError(exc, f"error when retrieving current configuration of:\n"
                                           f'{_describe(kind, meta)}\nfrom server for: "{source}": ') from exc
            if dry_run:
                return "created", modified
            try:
                return "created", await api.create(modified)
            except ApiError as create_error:
                raise SourcedApiError(create_error, f'error when creating "{source}": ') from create_error
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if merge.LAST_APPLIED not in annotations and attempt == 0:
            warn(MISSING_ANNOTATION.format(ref=f"{kind.plural}/{meta['name']}"))
        try:
            original = json.loads(annotations.get(merge.LAST_APPLIED) or "{}")
        except json.JSONDecodeError:
            original = {}
        desired = merge.three_way(original, modified, current)
        desired.setdefault("apiVersion", kind.api_version)
        desired.setdefault("kind", kind.kind)
        if desired == current:
            return "unchanged", current
        if dry_run:
            return "configured", desired
        try:
            return "configured", await api.replace(desired)
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "Conflict" and attempt + 1 < CONFLICT_RETRIES:
                continue
            raise SourcedApiError(exc, f"error when applying patch:\n{jsonpath.go_json(modified)}\nto:\n"
                                       f'{_describe(kind, meta)}\nfor: "{source}": error when patching '
                                       f'"{source}": ') from exc
    raise KubectlError(f'Operation cannot be fulfilled on {kind.plural} "{meta["name"]}": the object has been '
                       "modified; please apply your changes to the latest version and try again")


class ObjectWriter:
    """Prints each object handled by apply/create: `-o` output or `<ref> <verb>`."""

    def __init__(self, ctx: KubectlContext, output: str, suffix: str):
        self.ctx = ctx
        self.fmt = printers.parse_output(output) if output else None
        if self.fmt is not None and self.fmt.human:
            raise KubectlError(f'unable to match a printer suitable for the output format "{output}", allowed '
                               "formats are: json,jsonpath,jsonpath-as-json,jsonpath-file,name,go-template,"
                               "go-template-file,template,templatefile,yaml")
        self.suffix = suffix
        self.count = 0

    def write(self, kind: kinds.Kind, obj: dict[str, Any], verb: str) -> None:
        if self.fmt is None:
            emit(self.ctx.stdout, f"{printers.object_ref(kind, obj)} {verb}{self.suffix}\n")
        else:
            text = printers.render_objects(self.fmt, [printers.for_output(obj, kind)], [kind], single=True)
            if self.fmt.kind == "yaml" and self.count:
                text = "---\n" + text
            emit(self.ctx.stdout, text)
        self.count += 1


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed["filename"]:
        raise KubectlError("must specify one of -f and -k")
    suffix = dry_run_suffix(parsed["dry-run"])
    writer = ObjectWriter(ctx, parsed["output"], suffix)
    items, read_errors = await manifests.read(parsed["filename"], ctx, parsed["recursive"])
    errors: list[BaseException] = list(read_errors)
    if not items and not errors:
        raise KubectlError("no objects passed to apply")
    for item in items:
        kind = kinds.served(item.obj["apiVersion"], item.obj["kind"])
        if kind is None:
            errors.append(manifests.mapping_error(item))
            continue
        try:
            obj = place(item, kind, parsed)
            verb, result = await apply_object(ctx.api, kind, obj, item.source, dry_run=bool(suffix),
                                              warn=ctx.stderr.write)
        except (ApiError, KubectlError) as exc:
            errors.append(exc)
            continue
        writer.write(kind, result, "serverside-applied" if parsed["server-side"] else verb)
    return report(errors, ctx.stderr, ctx.api.address)
