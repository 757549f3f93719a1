"""`istioctl waypoint generate|apply|list|delete|status`: the Gateway of class `istio-waypoint`
that istiod's waypoint controller turns into a waypoint Deployment and Service, as istioctl 1.24
writes, lists and removes it."""

from __future__ import annotations

from typing import Any

import trio

from components.common.apiclient import ApiError
from harness.istioctl.command import Command
from harness.istioctl.configdump import table
from harness.istioctl.context import IstioctlContext, emit
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import BOOL, STRING, Flag, Parsed
from harness.kubectl.printers import to_yaml

Obj = dict[str, Any]

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
WAYPOINT_CLASS = "istio-waypoint"
WAYPOINT_FOR = "istio.io/waypoint-for"
USE_WAYPOINT = "istio.io/use-waypoint"
REVISION = "istio.io/rev"
TRAFFIC_TYPES = ("service", "workload", "all", "none")
POLL = 0.1

NAME_FLAG = Flag("name", kind=STRING, default="waypoint")
REVISION_FLAG = Flag("revision", "r", STRING, "")
GENERATE_FLAGS = (Flag("for", kind=STRING, default="service"), NAME_FLAG, REVISION_FLAG)
APPLY_FLAGS = GENERATE_FLAGS + (Flag("enroll-namespace", kind=BOOL), Flag("wait", "w", BOOL))
WAIT_TIMEOUT = 120.0  # how long `apply --wait` waits for the Gateway to be Programmed


def _namespace(parsed: Parsed) -> str:
    return parsed["namespace"] or "default"


def gateway(parsed: Parsed) -> Obj:
    """The waypoint Gateway the flags describe (istioctl's makeGateway)."""
    traffic = parsed["for"]
    if traffic not in TRAFFIC_TYPES:
        raise IstioctlError(f"invalid traffic type: {traffic}. Valid options are: {', '.join(TRAFFIC_TYPES)}")
    labels = {WAYPOINT_FOR: traffic}
    if parsed["revision"]:
        labels[REVISION] = parsed["revision"]
    return {"apiVersion": GATEWAY_API_VERSION, "kind": "Gateway",
            "metadata": {"labels": labels, "name": parsed["name"], "namespace": _namespace(parsed)},
            "spec": {"gatewayClassName": WAYPOINT_CLASS,
                     "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}


def _programmed(gw: Obj) -> str:
    conditions = (gw.get("status") or {}).get("conditions") or []
    return next((c.get("status", "False") for c in conditions if c.get("type") == "Programmed"), "False")


async def generate(parsed: Parsed, ctx: IstioctlContext) -> int:
    emit(ctx.stdout, to_yaml(gateway(parsed)))
    return 0


async def _wait_programmed(ctx: IstioctlContext, namespace: str, name: str) -> None:
    with trio.move_on_after(WAIT_TIMEOUT):
        while True:
            gw = await ctx.api.get(GATEWAY_API_VERSION, "Gateway", namespace, name)
            if _programmed(gw) == "True":
                return
            await trio.sleep(POLL)
    raise IstioctlError(f"waypoint {namespace}/{name} is not ready")


async def apply(parsed: Parsed, ctx: IstioctlContext) -> int:
    gw = gateway(parsed)
    namespace, name = _namespace(parsed), parsed["name"]
    if parsed["enroll-namespace"]:
        ns = await ctx.api.get("v1", "Namespace", None, namespace)
        if (ns["metadata"].get("labels") or {}).get("istio.io/dataplane-mode") != "ambient":
            emit(ctx.stdout, "Warning: namespace is not enrolled in ambient. Consider running\t"
                             f"`kubectl label namespace {namespace} istio.io/dataplane-mode=ambient`\n")
    await ctx.api.apply(gw)
    if parsed["wait"]:
        await _wait_programmed(ctx, namespace, name)
    emit(ctx.stdout, f"✅ waypoint {namespace}/{name} applied\n")
    if parsed["enroll-namespace"]:
        await ctx.api.patch("v1", "Namespace", None, namespace, {"metadata": {"labels": {USE_WAYPOINT: name}}})
        emit(ctx.stdout, f'✅ namespace {namespace} labeled with "{USE_WAYPOINT}: {name}"\n')
    return 0


async def _waypoints(ctx: IstioctlContext, namespace: str | None) -> list[Obj]:
    listing = await ctx.api.list(GATEWAY_API_VERSION, "Gateway", namespace)
    return [g for g in listing.get("items") or []
            if (g.get("spec") or {}).get("gatewayClassName") == WAYPOINT_CLASS]


async def list_waypoints(parsed: Parsed, ctx: IstioctlContext) -> int:
    everywhere = parsed["all-namespaces"]
    waypoints = await _waypoints(ctx, None if everywhere else _namespace(parsed))
    if not waypoints:
        emit(ctx.stdout, "No waypoints found.\n")
        return 0
    rows = [(["NAMESPACE"] if everywhere else []) + ["NAME", "REVISION", "PROGRAMMED"]]
    for gw in waypoints:
        meta = gw["metadata"]
        rows.append(([meta["namespace"]] if everywhere else [])
                    + [meta["name"], (meta.get("labels") or {}).get(REVISION) or "default", _programmed(gw)])
    emit(ctx.stdout, table(rows, padding=5))
    return 0


async def delete(parsed: Parsed, ctx: IstioctlContext) -> int:
    namespace = _namespace(parsed)
    names: list[str] = parsed.args
    if parsed["all"]:
        if names:
            raise IstioctlError("cannot specify waypoint names when deleting all waypoints")
        names = [g["metadata"]["name"] for g in await _waypoints(ctx, namespace)]
    elif not names:
        names = [parsed["name"]]
    for name in names:
        try:
            await ctx.api.delete(GATEWAY_API_VERSION, "Gateway", namespace, name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            emit(ctx.stdout, f"waypoint {namespace}/{name} not found\n")
            continue
        emit(ctx.stdout, f"waypoint {namespace}/{name} deleted\n")
    return 0


async def status(parsed: Parsed, ctx: IstioctlContext) -> int:
    namespace, name = _namespace(parsed), parsed["name"]
    gw = await ctx.api.get(GATEWAY_API_VERSION, "Gateway", namespace, name)
    rows = [["NAMESPACE", "NAME", "STATUS", "TYPE", "REASON", "MESSAGE"]]
    for condition in (gw.get("status") or {}).get("conditions") or []:
        rows.append([namespace, name] + [str(condition.get(k, "")) for k in ("status", "type", "reason", "message")])
    emit(ctx.stdout, table(rows, padding=5))
    return 0


COMMAND = Command(
    "waypoint", "Manage waypoint configuration",
    long="A group of commands used to manage waypoint configuration",
    children=(
        Command("apply", "Apply a waypoint configuration", apply, APPLY_FLAGS,
                long="Apply a waypoint configuration to the cluster"),
        Command("delete", "Delete a waypoint configuration", delete,
                (NAME_FLAG, REVISION_FLAG, Flag("all", kind=BOOL)),
                long="Delete a waypoint configuration from the cluster", args="[name...]"),
        Command("generate", "Generate a waypoint configuration", generate, GENERATE_FLAGS,
                long="Generate a waypoint configuration as YAML"),
        Command("list", "List managed waypoint configurations", list_waypoints,
                (NAME_FLAG, REVISION_FLAG, Flag("all-namespaces", "A", BOOL)),
                long="List managed waypoint configurations in the cluster"),
        Command("status", "Show the status of waypoints in a namespace", status, (NAME_FLAG, REVISION_FLAG),
                long="Show the status of waypoints for the namespace provided or default namespace if none is provided"),
    ))
