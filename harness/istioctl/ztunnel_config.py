"""`istioctl ztunnel-config` (`zc`): workloads, services, policies, certificates and all.

Where the data comes from: workloads, services and policies are what istiod sends every ztunnel,
read from istiod's `/debug/config_dump` (pod port 8080); certificates are a ztunnel's own, read
from its admin `/config_dump` (pod port 15000), both through the apiserver's pod proxy. A pod
argument or `--node` picks the ztunnel as istioctl 1.24 does (with its errors: no ztunnel
DaemonSet, no pod on that node, not a ztunnel pod); `-f FILE` reads a saved dump instead. The
filters are istioctl's: `--workload-namespace`, `--workload-node`, `--address`,
`--service-namespace`, `--policy-namespace` (`-n` names the namespace of the ztunnel pod).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

from harness.istioctl import cluster
from harness.istioctl.command import Command, Handler
from harness.istioctl.configdump import (ZtunnelDump, WorkloadFilter, certificate_summary, dump_text, full_summary,
                                         policy_summary, service_summary, sorted_policies, sorted_services,
                                         workload_summary)
from harness.istioctl.context import IstioctlContext, emit
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import INT, STRING, Flag, Parsed
from harness.kubectl.printers import to_yaml

CONFIG, CERTIFICATES = "config", "certificates"
LOOKUP = "daemonset/ztunnel"

COMMON_FLAGS = (
    # istioctl 1.24 reads config_dump on 15000 whatever this says (the flag serves `zc log`).
    Flag("proxy-admin-port", kind=INT, default=cluster.ZTUNNEL_ADMIN_PORT),
    Flag("output", "o", STRING, "short"),
    Flag("node", kind=STRING, default=""),
    Flag("file", "f", STRING, ""),
)

Render = Callable[[ZtunnelDump, Parsed, str], str]


@dataclass(frozen=True)
class View:
    """One subcommand: what it needs fetched and how it prints (`output` is json or yaml, or
    "short" for the summary)."""

    needs: frozenset[str]
    render: Render


def _workloads(dump: ZtunnelDump, parsed: Parsed, output: str) -> str:
    selection = WorkloadFilter(parsed["address"], parsed["workload-node"], parsed["workload-namespace"])
    if output == "short":
        return workload_summary(dump, selection)
    return dump_text([w for w in dump.workloads if selection.accepts(w)], output)


def _services(dump: ZtunnelDump, parsed: Parsed, output: str) -> str:
    if output == "short":
        return service_summary(dump, parsed["service-namespace"])
    return dump_text(sorted_services(dump, parsed["service-namespace"]), output)


def _policies(dump: ZtunnelDump, parsed: Parsed, output: str) -> str:
    if output == "short":
        return policy_summary(dump, parsed["policy-namespace"])
    return dump_text(sorted_policies(dump, parsed["policy-namespace"]), output)


def _certificates(dump: ZtunnelDump, parsed: Parsed, output: str) -> str:
    return certificate_summary(dump) if output == "short" else dump_text(dump.certificates, output)


def _all(dump: ZtunnelDump, parsed: Parsed, output: str) -> str:
    if output == "short":
        return full_summary(dump)
    return (to_yaml(json.loads(dump.raw)) if output == "yaml" else dump.raw) + "\n"


async def _read_file(ctx: IstioctlContext, name: str) -> str:
    if name == "-":
        return ctx.stdin.read()
    try:
        return (ctx.cwd / name).read_text()
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise IstioctlError(f"open {name}: {reason}") from exc


async def _ztunnel(ctx: IstioctlContext, parsed: Parsed) -> tuple[str, str]:
    istio_namespace = parsed["istioNamespace"]
    if parsed["node"]:
        name, namespace = await cluster.pod_on_node(ctx.api, parsed["node"], "ztunnel", istio_namespace)
    else:
        lookup = parsed.args[0] if parsed.args else LOOKUP
        name, namespace = await cluster.infer_pod(ctx.api, lookup, parsed["namespace"] or istio_namespace)
    if not await cluster.is_ztunnel_pod(ctx.api, name, namespace):
        raise IstioctlError(f"workloads command is only supported by Ztunnel proxies: {name}")
    return name, namespace


async def load_dump(ctx: IstioctlContext, parsed: Parsed, needs: frozenset[str]) -> ZtunnelDump:
    """The dump a subcommand prints: from `-f`, else from istiod and/or a ztunnel."""
    if parsed["file"]:
        return ZtunnelDump.parse(await _read_file(ctx, parsed["file"]))
    ztunnel = None
    if CERTIFICATES in needs or parsed.args or parsed["node"]:
        ztunnel = await _ztunnel(ctx, parsed)
    dump: dict = {}
    if CONFIG in needs:
        istiod = await cluster.istiod_pod(ctx.api, parsed["istioNamespace"])
        meta = istiod["metadata"]
        body = await cluster.pod_json(ctx.api, meta["name"], meta["namespace"], cluster.ISTIOD_HTTP_PORT,
                                      "debug/config_dump")
        config = (body.get("config") or {}) if isinstance(body, dict) else {}
        dump.update({key: config.get(key) or [] for key in ("workloads", "services", "policies")})
    if CERTIFICATES in needs and ztunnel is not None:
        name, namespace = ztunnel
        try:
            body = await cluster.pod_json(ctx.api, name, namespace, cluster.ZTUNNEL_ADMIN_PORT, "config_dump")
        except IstioctlError as exc:
            raise IstioctlError(f"failed to execute command on {name}.{namespace} Ztunnel: {exc.message}") from exc
        dump["certificates"] = (body.get("certificates") if isinstance(body, dict) else None) or []
    return ZtunnelDump.parse(json.dumps(dump, indent=2))


def _runner(view: View) -> Handler:
    async def run(parsed: Parsed, ctx: IstioctlContext) -> int:
        chosen = sum(1 for given in (parsed["file"], len(parsed.args) == 1, parsed["node"]) if given)
        if chosen > 1:
            raise IstioctlError("at most one of --file, --node, or pod name must be passed")
        dump = await load_dump(ctx, parsed, view.needs)
        output = parsed["output"]
        if output not in ("short", "json", "yaml"):
            raise IstioctlError(f'output format "{output}" not supported')
        emit(ctx.stdout, view.render(dump, parsed, output))
        return 0
    return run


def _subcommand(name: str, aliases: tuple[str, ...], what: str, needs: frozenset[str], render: Render,
                *extra: Flag) -> Command:
    return Command(name, f"Retrieves {what} for the specified Ztunnel pod.", _runner(View(needs, render)),
                   COMMON_FLAGS + extra, aliases, args="[<type>/]<name>[.<namespace>]")


COMMAND = Command(
    "ztunnel-config", "Update or retrieve current Ztunnel configuration.", aliases=("zc",),
    long="A group of commands used to update or retrieve Ztunnel configuration from a Ztunnel instance.",
    children=(
        _subcommand("all", (), "all configuration", frozenset({CONFIG, CERTIFICATES}), _all),
        _subcommand("certificate", ("certificates", "certs", "cert"), "certificate",
                    frozenset({CERTIFICATES}), _certificates),
        _subcommand("policy", ("policies", "p", "pol"), "policies", frozenset({CONFIG}), _policies,
                    Flag("policy-namespace", kind=STRING, default="")),
        _subcommand("service", ("services", "s", "svc"), "services", frozenset({CONFIG}), _services,
                    Flag("service-namespace", kind=STRING, default="")),
        _subcommand("workload", ("w", "workloads"), "workload configuration", frozenset({CONFIG}), _workloads,
                    Flag("address", kind=STRING, default=""), Flag("workload-namespace", kind=STRING, default=""),
                    Flag("workload-node", kind=STRING, default="")),
    ))
