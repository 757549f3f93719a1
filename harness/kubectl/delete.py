"""`kubectl delete`: by file, by name, by selector or `--all`; waits until the objects are gone.

Deleting a pod is graceful: the apiserver sets deletionTimestamp and the kubelet removes the
pod once its containers have stopped, so `--wait` (the default) follows the object with a watch
until it disappears.
"""

from __future__ import annotations

from typing import Any

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import apply, flags, manifests, printers, resources, wait
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, SourcedApiError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("filename", "f", flags.STRINGS),
    Flag("recursive", "R", flags.BOOL),
    Flag("selector", "l", flags.STRING, ""),
    Flag("field-selector", kind=flags.STRING, default=""),
    Flag("all", kind=flags.BOOL),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("ignore-not-found", kind=flags.BOOL),
    Flag("wait", kind=flags.BOOL, default=True),
    Flag("now", kind=flags.BOOL),
    Flag("grace-period", kind=flags.INT, default=-1),
    Flag("force", kind=flags.BOOL),
    Flag("timeout", kind=flags.DURATION, default=0.0),
    Flag("output", "o", flags.STRING, ""),
)

FORCE_WARNING = ("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                 "terminated. The resource may continue to run on the cluster indefinitely.\n")
DEFAULT_GRACE = 30  # a pod's default terminationGracePeriodSeconds
Target = tuple[kinds.Kind, "str | None", str, "str | None"]  # kind, namespace, name, manifest source


def grace_period(parsed: flags.Parsed) -> int:
    grace = parsed["grace-period"]
    if parsed["now"]:
        if grace >= 0:
            raise KubectlError("--now and --grace-period cannot be specified together")
        grace = 1
    if grace == 0 and not parsed["force"]:
        grace = 1
    if parsed["force"] and grace < 0:
        grace = 0
    return grace


async def _targets(parsed: flags.Parsed, ctx: KubectlContext, errors: list[BaseException]) -> list[Target]:
    namespace = None if parsed["all-namespaces"] else parsed["namespace"]
    if parsed["filename"]:
        items, read_errors = await manifests.read(parsed["filename"], ctx, parsed["recursive"])
        errors.extend(read_errors)
        targets: list[Target] = []
        for item in items:
            kind = kinds.served(item.obj["apiVersion"], item.obj["kind"])
            if kind is None:
                errors.append(manifests.mapping_error(item))
                continue
            try:
                obj = apply.place(item, kind, parsed)
            except KubectlError as exc:
                errors.append(exc)
                continue
            targets.append((kind, obj["metadata"].get("namespace"), obj["metadata"].get("name", ""), item.source))
        return targets
    if not parsed.args:
        raise KubectlError(resources.NO_RESOURCES)
    selection = resources.select(parsed.args)
    targets = []
    for kind, names in selection.requests:
        if names:
            if parsed["all"] or parsed["selector"]:
                raise KubectlError("name cannot be provided when a selector is specified")
            targets.extend((kind, resources.namespace_of(kind, namespace), name, None) for name in names)
            continue
        if not (parsed["all"] or parsed["selector"] or parsed["field-selector"]):
            raise KubectlError("resource(s) were provided, but no name was specified")
        for obj in await resources.list_items(ctx.api, kind, namespace, label_selector=parsed["selector"],
                                              field_selector=parsed["field-selector"]):
            targets.append((kind, obj["metadata"].get("namespace"), obj["metadata"]["name"], None))
    if not targets:
        emit(ctx.stdout, "No resources found\n")
    return targets


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    grace = grace_period(parsed)
    errors: list[BaseException] = []
    targets = await _targets(parsed, ctx, errors)
    if parsed["force"] and grace == 0:
        ctx.stderr.write(FORCE_WARNING)
    deleted: list[tuple[kinds.Kind, str | None, str, Any]] = []
    for kind, namespace, name, source in targets:
        try:
            result = await ctx.api.delete(kind.api_version, kind.kind, namespace, name,
                                          grace_period_seconds=grace if grace >= 0 else None)
        except ApiError as exc:
            # objects found by a selector may be gone already (deleted with their owner)
            selected = not source and (parsed["all"] or parsed["selector"])
            if exc.code == 404 and (parsed["ignore-not-found"] or selected):
                continue
            errors.append(SourcedApiError(exc, f'error when deleting "{source}": ') if source else exc)
            continue
        if parsed["output"] == "name":
            emit(ctx.stdout, f"{printers.resource_name(kind)}/{name}\n")
        else:
            verb = "force deleted" if parsed["force"] and grace == 0 else "deleted"
            emit(ctx.stdout, f'{printers.resource_name(kind)} "{name}" {verb}\n')
        if isinstance(result, dict) and result.get("kind") != "Status" and result.get("metadata"):
            deleted.append((kind, namespace, name, result["metadata"].get("uid")))
    if parsed["wait"]:
        for kind, namespace, name, uid in deleted:
            timeout = parsed["timeout"] or (max(grace, DEFAULT_GRACE) + 60)
            try:
                await wait.until(ctx.api, kind, namespace, name, wait.gone(uid), timeout)
            except TimeoutError:
                errors.append(KubectlError(f"timed out waiting for the condition on {kind.plural}/{name}"))
            except ApiError as exc:
                errors.append(exc)
    return report(errors, ctx.stderr, ctx.api.address)
