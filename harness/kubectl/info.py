"""`kubectl version`, `api-resources`, `cluster-info` and `config current-context`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from components.common import http, kinds
from components.common.apiclient import ApiError
from harness.kubectl import flags, printers, resources
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag
from harness.kubectl.tabwriter import table_writer

CLIENT_VERSION = {"major": "1", "minor": "29", "gitVersion": "v1.29.2",
                  "gitCommit": "4b8e819355d791d96b7e9d9efe4cbafae2311c88", "gitTreeState": "clean",
                  "buildDate": "2024-02-14T10:40:49Z", "goVersion": "go1.21.7", "compiler": "gc",
                  "platform": "linux/amd64"}
KUSTOMIZE_VERSION = "v5.0.4-0.20230601165947-6ce0bf390ce3"

VERSION_FLAGS = (Flag("client", kind=flags.BOOL), Flag("output", "o", flags.STRING, ""))
API_RESOURCES_FLAGS = (
    Flag("namespaced", kind=flags.STRING, default=""),
    Flag("api-group", kind=flags.STRING, default=""),
    Flag("output", "o", flags.STRING, ""),
    Flag("no-headers", kind=flags.BOOL),
)
NO_FLAGS: tuple[Flag, ...] = ()


async def _get_path(ctx: KubectlContext, path: str) -> Any:
    """A GET outside the resource API (/version), with the apiserver's errors as ApiError."""
    try:
        response = await http.request(ctx.api.address, "GET", path, headers=[("accept", "application/json")])
    except (OSError, http.HTTPError) as exc:
        raise ApiError({"code": 503, "reason": "ServiceUnavailable",
                        "message": f"the apiserver at {ctx.api.address} cannot be reached: {exc}"}) from exc
    body = response.json_body() if response.body else None
    if response.status >= 400:
        if isinstance(body, dict) and body.get("kind") == "Status":
            raise ApiError(body)
        raise ApiError({"kind": "Status", "code": response.status, "reason": "NotFound",
                        "message": "the server could not find the requested resource"})
    return body


async def run_version(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    server: dict[str, Any] | None = None
    error: ApiError | None = None
    if not parsed["client"]:
        try:
            server = await _get_path(ctx, "/version")
        except ApiError as exc:
            error = exc
    if parsed["output"] in ("json", "yaml"):
        data: dict[str, Any] = {"clientVersion": CLIENT_VERSION, "kustomizeVersion": KUSTOMIZE_VERSION}
        if server is not None:
            data["serverVersion"] = server
        emit(ctx.stdout, printers.to_json(data) if parsed["output"] == "json" else printers.to_yaml(data))
    elif parsed["output"]:
        raise KubectlError("--output must be 'yaml' or 'json'")
    else:
        text = f"Client Version: {CLIENT_VERSION['gitVersion']}\nKustomize Version: {KUSTOMIZE_VERSION}\n"
        if server is not None:
            text += f"Server Version: {server.get('gitVersion', '')}\n"
        emit(ctx.stdout, text)
    return report([error] if error else [], ctx.stderr, ctx.api.address)


def served_kinds() -> list[kinds.Kind]:
    """One entry per kind (its preferred version): the core group first, then groups in the
    order the cluster serves them, names sorted within a group."""
    preferred: list[kinds.Kind] = []
    for kind in kinds.all_served():
        if kinds.preferred(kind.kind, kind.group) is kind and kind not in preferred:
            preferred.append(kind)
    groups = list(dict.fromkeys(k.group for k in preferred))
    return sorted(preferred, key=lambda k: (groups.index(k.group), k.plural))


async def run_api_resources(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    selected = served_kinds()
    if parsed["namespaced"]:
        wanted = parsed["namespaced"].lower() in ("true", "1", "t")
        selected = [k for k in selected if k.namespaced == wanted]
    if "api-group" in parsed.given:
        selected = [k for k in selected if k.group == parsed["api-group"]]
    if parsed["output"] == "name":
        emit(ctx.stdout, "".join(k.plural + (f".{k.group}" if k.group else "") + "\n" for k in selected))
        return 0
    if parsed["output"] not in ("", "wide"):
        raise KubectlError(f'--output {parsed["output"]} is not available')
    writer = table_writer()
    if not parsed["no-headers"]:
        writer.write("NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\n")
    for kind in selected:
        writer.write(f"{kind.plural}\t{','.join(kind.short_names)}\t{kind.api_version}\t"
                     f"{'true' if kind.namespaced else 'false'}\t{kind.kind}\n")
    emit(ctx.stdout, writer.flush())
    return 0


async def _server_url(ctx: KubectlContext) -> str:
    """Where the control plane is reached: the `kubernetes` service's endpoint."""
    try:
        endpoints = await ctx.api.get("v1", "Endpoints", "default", "kubernetes")
    except ApiError:
        return ctx.api.address
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            for port in subset.get("ports") or []:
                return f"https://{address.get('ip')}:{port.get('port')}"
    return ctx.api.address


async def run_cluster_info(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if parsed.args:
        raise KubectlError(f'unknown command "{parsed.args[0]}" for "kubectl cluster-info"')
    server = await _server_url(ctx)
    lines = [f"Kubernetes control plane is running at {server}"]
    for svc in await resources.list_items(ctx.api, resources.lookup("services"), "kube-system",
                                          label_selector="kubernetes.io/cluster-service=true"):
        meta = svc["metadata"]
        name = (meta.get("labels") or {}).get("kubernetes.io/name") or meta["name"]
        ports = (svc.get("spec") or {}).get("ports") or []
        port = (ports[0].get("name") or str(ports[0].get("port"))) if ports else ""
        target = f"{meta['name']}:{port}" if port else meta["name"]
        lines.append(f"{name} is running at {server}/api/v1/namespaces/kube-system/services/{target}/proxy")
    emit(ctx.stdout, "\n".join(lines) + "\n\nTo further debug and diagnose cluster problems, use "
                     "'kubectl cluster-info dump'.\n")
    return 0


def cluster_name(ctx: KubectlContext) -> str:
    """The run's cluster name: the directory of its apiserver socket, else $AMBIENT_CLUSTER."""
    if ctx.api.address.startswith("unix:"):
        socket = Path(ctx.api.address[len("unix:"):])
        if socket.name == "apiserver.sock" and socket.parent.name:
            return socket.parent.name
    return os.environ.get("AMBIENT_CLUSTER") or "ambient"


async def run_config(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    command = parsed.args[0] if parsed.args else ""
    name = cluster_name(ctx)
    if command == "current-context":
        emit(ctx.stdout, name + "\n")
        return 0
    if command == "get-contexts":
        writer = table_writer()
        writer.write("CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE\n")
        writer.write(f"*\t{name}\t{name}\t{name}\t\n")
        emit(ctx.stdout, writer.flush())
        return 0
    if command == "view":
        config = {"apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
                  "clusters": [{"name": name, "cluster": {"server": await _server_url(ctx)}}],
                  "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                  "users": [{"name": name, "user": {}}]}
        emit(ctx.stdout, printers.to_yaml(config))
        return 0
    if not command:
        raise KubectlError("you must specify a subcommand: current-context, get-contexts or view")
    raise KubectlError(f'unknown command "{command}" for "kubectl config"')
