"""The kubectl command line: finding the command, parsing its flags, running it, and turning
errors into kubectl's messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from components.common.apiclient import ApiError
from harness.kubectl import (apply, create, debug, delete, describe, exec as exec_, flags, get, info, label, logs,
                             patch, rollout, wait)
from harness.kubectl.context import KubectlContext
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.printers import PartialOutput

Handler = Callable[[flags.Parsed, KubectlContext], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    flags: tuple[flags.Flag, ...]
    run: Handler
    summary: str


async def _annotate(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    return await label.run(parsed, ctx, annotate=True)


COMMANDS: dict[str, Command] = {
    "create": Command(create.FLAGS, create.run, "Create a resource from a file or from stdin"),
    "get": Command(get.FLAGS, get.run, "Display one or many resources"),
    "describe": Command(describe.FLAGS, describe.run, "Show details of a specific resource or group of resources"),
    "delete": Command(delete.FLAGS, delete.run, "Delete resources by file names, stdin, resources and names, or by "
                                                "resources and label selector"),
    "apply": Command(apply.FLAGS, apply.run, "Apply a configuration to a resource by file name or stdin"),
    "patch": Command(patch.PATCH_FLAGS, patch.run_patch, "Update fields of a resource"),
    "label": Command(label.FLAGS, label.run, "Update the labels on a resource"),
    "annotate": Command(label.FLAGS, _annotate, "Update the annotations on a resource"),
    "scale": Command(patch.SCALE_FLAGS, patch.run_scale, "Set a new size for a deployment, replica set, or "
                                                         "replication controller"),
    "rollout": Command(rollout.FLAGS, rollout.run, "Manage the rollout of a resource"),
    "logs": Command(logs.FLAGS, logs.run, "Print the logs for a container in a pod"),
    "exec": Command(exec_.FLAGS, exec_.run, "Execute a command in a container"),
    "debug": Command(debug.FLAGS, debug.run, "Create debugging sessions for troubleshooting workloads and nodes"),
    "wait": Command(wait.FLAGS, wait.run, "Experimental: Wait for a specific condition on one or many resources"),
    "version": Command(info.VERSION_FLAGS, info.run_version, "Print the client and server version information"),
    "api-resources": Command(info.API_RESOURCES_FLAGS, info.run_api_resources,
                             "Print the supported API resources on the server"),
    "cluster-info": Command(info.NO_FLAGS, info.run_cluster_info, "Display cluster information"),
    "config": Command(info.NO_FLAGS, info.run_config, "Modify kubeconfig files"),
}

HELP = ("kubectl controls the Kubernetes cluster manager.\n\n"
        " Find more information at: https://kubernetes.io/docs/reference/kubectl/\n\n"
        "Commands:\n{commands}\n"
        "Usage:\n  kubectl [flags] [options]\n\n"
        "Use \"kubectl <command> --help\" for more information about a given command.\n")


def _help() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    return HELP.format(commands="".join(f"  {name.ljust(width)}{cmd.summary}\n" for name, cmd in COMMANDS.items()))


def _command_help(name: str, command: Command) -> str:
    options = []
    for flag in command.flags:
        short = f"-{flag.short}, " if flag.short else "    "
        value = "" if flag.kind == flags.BOOL else "=" + ("''" if flag.default in (None, "") else str(flag.default))
        options.append(f"    {short}--{flag.name}{value}")
    return (f"{command.summary}.\n\nOptions:\n" + "\n".join(options) + "\n\nUsage:\n"
            f"  kubectl {name} [options]\n\nUse \"kubectl options\" for a list of global command-line options "
            "(applies to all commands).\n")


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _unknown_command(name: str) -> KubectlError:
    """Cobra's message, with its suggestions (edit distance up to 2, or a prefix)."""
    close = [c for c in COMMANDS if _distance(name.lower(), c) <= 2 or c.startswith(name.lower())]
    text = f'unknown command "{name}" for "kubectl"'
    if close:
        text += "\n\nDid you mean this?\n" + "".join(f"\t{c}\n" for c in close)
    return KubectlError(text)


async def run(argv: list[str], ctx: KubectlContext) -> int:
    """Run one kubectl command line (without the leading "kubectl"); returns its exit code."""
    try:
        name, rest = flags.split_command(argv)
        if name is None:
            flags.parse(rest, ())
            ctx.stdout.write(_help())
            return 0
        command = COMMANDS.get(name)
        if command is None:
            raise _unknown_command(name)
        parsed = flags.parse(rest, command.flags, name)
        if parsed["help"]:
            ctx.stdout.write(_command_help(name, command))
            return 0
        return await command.run(parsed, ctx)
    except PartialOutput as partial:
        ctx.stdout.write(partial.text)
        return report([partial.error], ctx.stderr)
    except (KubectlError, ApiError) as exc:
        return report([exc], ctx.stderr, ctx.api.address)
