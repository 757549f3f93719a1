"""`kubectl get`: tables, the -o formats, `get all`, and `--watch`."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import flags, manifests, printers, resources, timefmt
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("output", "o", flags.STRING, ""),
    Flag("selector", "l", flags.STRING, ""),
    Flag("field-selector", kind=flags.STRING, default=""),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("show-labels", kind=flags.BOOL),
    Flag("show-kind", kind=flags.BOOL),
    Flag("no-headers", kind=flags.BOOL),
    Flag("watch", "w", flags.BOOL),
    Flag("watch-only", kind=flags.BOOL),
    Flag("label-columns", "L", flags.STRINGS),
    Flag("sort-by", kind=flags.STRING, default=""),
    Flag("ignore-not-found", kind=flags.BOOL),
    Flag("filename", "f", flags.STRINGS),
    Flag("recursive", "R", flags.BOOL),
    Flag("chunk-size", kind=flags.INT, default=500),
)

NO_TYPE = ('You must specify the type of resource to get. Use "kubectl api-resources" for a complete list of '
           'supported resources.\n\nerror: Required resource not specified.\nUse "kubectl explain <resource>" '
           "for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for "
           "help and examples")

Found = list[tuple[kinds.Kind, dict[str, Any]]]


async def _from_files(parsed: flags.Parsed, ctx: KubectlContext) -> tuple[resources.Selection, list[BaseException]]:
    items, errors = await manifests.read(parsed["filename"], ctx, parsed["recursive"])
    selection = resources.Selection(by_name=True)
    for item in items:
        kind = kinds.served(item.obj["apiVersion"], item.obj["kind"])
        if kind is None:
            errors.append(manifests.mapping_error(item))
            continue
        selection.requests.append((kind, [item.obj.get("metadata", {}).get("name", "")]))
    selection.single = len(selection.requests) == 1
    return selection, list(errors)


async def fetch(selection: resources.Selection, parsed: flags.Parsed, ctx: KubectlContext, namespace: str | None
                ) -> tuple[Found, list[BaseException]]:
    found: Found = []
    errors: list[BaseException] = []
    for kind, names in selection.requests:
        if names:
            for name in names:
                obj, error = await resources.get_or_error(ctx.api, kind, namespace, name)
                if obj is not None:
                    found.append((kind, obj))
                elif not (error.code == 404 and parsed["ignore-not-found"]):
                    errors.append(error)
            continue
        try:
            for obj in await resources.list_items(ctx.api, kind, namespace, label_selector=parsed["selector"],
                                                  field_selector=parsed["field-selector"]):
                found.append((kind, obj))
        except ApiError as exc:
            errors.append(exc)
    return found, errors


def _table_options(parsed: flags.Parsed, fmt: printers.OutputFormat, selection: resources.Selection
                   ) -> printers.TableOptions:
    return printers.TableOptions(
        wide=fmt.kind == "wide", no_headers=parsed["no-headers"], with_namespace=parsed["all-namespaces"],
        with_kind=selection.several_kinds or parsed["show-kind"], show_labels=parsed["show-labels"],
        label_columns=list(parsed["label-columns"]))


def _print_generic(fmt: printers.OutputFormat, found: Found, single: bool, no_headers: bool) -> str:
    shown = [printers.for_output(obj, kind) for kind, obj in found]
    return printers.render_objects(fmt, shown, [k for k, _ in found], single, no_headers)


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    fmt = printers.parse_output(parsed["output"])
    all_namespaces = parsed["all-namespaces"]
    namespace = None if all_namespaces else parsed["namespace"]
    errors: list[BaseException] = []
    if parsed["filename"]:
        selection, errors = await _from_files(parsed, ctx)
    else:
        if not parsed.args:
            raise KubectlError(NO_TYPE, raw=True)
        selection = resources.select(parsed.args)
    if all_namespaces and selection.by_name and not parsed["filename"]:
        raise KubectlError("a resource cannot be retrieved by name across all namespaces")
    if parsed["watch"] or parsed["watch-only"]:
        return await watch(parsed, ctx, fmt, selection, namespace)

    found, fetch_errors = await fetch(selection, parsed, ctx, namespace)
    errors += fetch_errors
    if parsed["sort-by"]:
        found = printers.sort_objects(found, parsed["sort-by"])

    if not fmt.human:
        if selection.single and errors:
            return report(errors, ctx.stderr, ctx.api.address)
        if not found and parsed["ignore-not-found"]:
            return report(errors, ctx.stderr, ctx.api.address)
        try:
            emit(ctx.stdout, _print_generic(fmt, found, selection.single, parsed["no-headers"]))
        except printers.PartialOutput as partial:
            emit(ctx.stdout, partial.text)
            errors.append(partial.error)
        return report(errors, ctx.stderr, ctx.api.address)

    printer = printers.TablePrinter(_table_options(parsed, fmt, selection))
    now = timefmt.now()
    text = ""
    index = 0
    while index < len(found):
        kind = found[index][0]
        group = []
        while index < len(found) and found[index][0] == kind:
            group.append(found[index][1])
            index += 1
        text += printer.print(kind, group, now)
    emit(ctx.stdout, text)
    if not text and not errors and not parsed["ignore-not-found"]:
        where = "No resources found" if all_namespaces else f"No resources found in {parsed['namespace']} namespace."
        ctx.stderr.write(where + "\n")
    return report(errors, ctx.stderr, ctx.api.address)


async def watch(parsed: flags.Parsed, ctx: KubectlContext, fmt: printers.OutputFormat,
                selection: resources.Selection, namespace: str | None) -> int:
    """Print the current objects, then each change, until interrupted."""
    if len(selection.requests) != 1:
        raise KubectlError("you may only specify a single resource type")
    kind, names = selection.requests[0]
    if len(names) > 1:
        raise KubectlError(f"watch is only supported on individual resources and resource collections, but "
                           f"{len(names)} resources were found")
    field_selector = parsed["field-selector"]
    if names:
        obj, error = await resources.get_or_error(ctx.api, kind, namespace, names[0])
        if error is not None:
            return report([error], ctx.stderr, ctx.api.address)
        field_selector = ",".join(filter(None, [field_selector, f"metadata.name={names[0]}"]))
    printer = printers.TablePrinter(_table_options(parsed, fmt, selection))
    printed: dict[str, str] = {}  # uid -> resourceVersion last shown
    first = True
    synced = False

    def show(objects: list[dict[str, Any]]) -> None:
        nonlocal first
        if not objects:
            return
        if fmt.human:
            emit(ctx.stdout, printer.print(kind, objects, timefmt.now()))
            return
        for obj in objects:
            text = _print_generic(fmt, [(kind, obj)], True, parsed["no-headers"])
            if fmt.kind == "yaml" and not first:
                text = "---\n" + text
            emit(ctx.stdout, text)
            first = False

    events = ctx.api.reflect(kind.api_version, kind.kind, resources.namespace_of(kind, namespace),
                             label_selector=parsed["selector"] or None, field_selector=field_selector or None)
    async with aclosing(events):
        async for event_type, obj in events:
            if event_type == "SYNC":
                changed = [o for o in obj.get("items") or []
                           if printed.get(o["metadata"].get("uid", "")) != o["metadata"].get("resourceVersion")]
                if parsed["watch-only"] and not synced:
                    printed.update({o["metadata"].get("uid", ""): o["metadata"].get("resourceVersion", "")
                                    for o in changed})
                    synced = True
                    continue
                synced = True
            else:
                changed = [obj]
            for o in changed:
                printed[o["metadata"].get("uid", "")] = o["metadata"].get("resourceVersion", "")
            show(changed)
    return 0
