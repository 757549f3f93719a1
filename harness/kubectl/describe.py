"""`kubectl describe TYPE [NAME...]`: finds the objects (a name also matches as a prefix, as in
kubectl), their events and related objects, and prints kubectl's layout for each."""

from __future__ import annotations

from typing import Any

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl import flags, resources, tables, timefmt
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.describe_kinds import describe_deployment, describe_namespace, describe_node, describe_service
from harness.kubectl.describe_pods import describe_pod
from harness.kubectl.describe_writer import describe_generic, meta_of
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("selector", "l", flags.STRING, ""),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("show-events", kind=flags.BOOL, default=True),
)


async def find_events(api: ApiClient, kind: kinds.Kind, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = meta_of(obj)
    listing = await api.list("v1", "Event", meta.get("namespace") if kind.namespaced else None)
    found = []
    for event in listing.get("items") or []:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != kind.kind or involved.get("name") != meta.get("name"):
            continue
        if involved.get("uid") and meta.get("uid") and involved["uid"] != meta["uid"]:
            continue
        found.append(event)
    return found


async def describe(ctx: KubectlContext, kind: kinds.Kind, obj: dict[str, Any], show_events: bool) -> str:
    now = timefmt.now()
    events = await find_events(ctx.api, kind, obj) if show_events else None
    meta = meta_of(obj)
    if kind.kind == "Pod":
        return describe_pod(obj, events, now)
    if kind.kind == "Service":
        try:
            endpoints = await ctx.api.get("v1", "Endpoints", meta.get("namespace"), meta["name"])
        except ApiError:
            endpoints = None
        return describe_service(obj, endpoints, events, now)
    if kind.kind == "Deployment":
        selector = tables.selector_string((obj.get("spec") or {}).get("selector"))
        sets = await resources.list_items(ctx.api, resources.lookup("replicasets"), meta.get("namespace"),
                                          label_selector=selector)
        owned = [rs for rs in sets if any(ref.get("uid") == meta.get("uid")
                                          for ref in meta_of(rs).get("ownerReferences") or [])]
        return describe_deployment(obj, owned, events, now)
    if kind.kind == "Node":
        node_pods = await resources.list_items(ctx.api, resources.lookup("pods"), None,
                                               field_selector=f"spec.nodeName={meta['name']}")
        return describe_node(obj, node_pods, events, now)
    if kind.kind == "Namespace":
        return describe_namespace(obj)
    return describe_generic(obj, kind, events, now)


async def _matching(ctx: KubectlContext, kind: kinds.Kind, namespace: str | None, name: str
                    ) -> tuple[list[dict[str, Any]], ApiError | None]:
    """The object of that name, or else (as kubectl does) those whose names start with it."""
    obj, error = await resources.get_or_error(ctx.api, kind, namespace, name)
    if obj is not None:
        return [obj], None
    if error.code != 404:
        return [], error
    prefixed = [o for o in await resources.list_items(ctx.api, kind, namespace)
                if meta_of(o).get("name", "").startswith(name)]
    return prefixed, None if prefixed else error


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed.args:
        raise KubectlError('You must specify the type of resource to describe. Use "kubectl api-resources" for a '
                           "complete list of supported resources.")
    namespace = None if parsed["all-namespaces"] else parsed["namespace"]
    errors: list[BaseException] = []
    found: list[tuple[kinds.Kind, dict[str, Any]]] = []
    for kind, names in resources.select(parsed.args).requests:
        if names:
            for name in names:
                objects, error = await _matching(ctx, kind, namespace, name)
                if error is not None:
                    errors.append(error)
                found.extend((kind, o) for o in objects)
        else:
            found.extend((kind, o) for o in await resources.list_items(
                ctx.api, kind, namespace, label_selector=parsed["selector"]))
    texts = []
    for kind, obj in found:
        try:
            texts.append(await describe(ctx, kind, obj, parsed["show-events"]))
        except ApiError as exc:
            errors.append(exc)
    emit(ctx.stdout, "\n\n".join(texts))
    if not found and not errors:
        ctx.stderr.write(f"No resources found in {parsed['namespace']} namespace.\n")
    return report(errors, ctx.stderr, ctx.api.address)
