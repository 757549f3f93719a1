"""`kubectl debug POD --image IMG -- CMD`, as seed 002 uses it to look into a pod's network
namespace (`iptables-save`, `ss -ntlp`, `ip rule`).

An ephemeral debug container shares the pod's namespaces; here the command runs in them through
the target container (`--target`, else the pod's first), with the tools every emulated
container has, so `--image` and `--profile` change nothing.
"""

from __future__ import annotations

import random

from harness.kubectl import flags, pods, resources
from harness.kubectl.context import KubectlContext
from harness.kubectl.errors import KubectlError
from harness.kubectl.exec import NO_TTY, is_tty
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("image", kind=flags.STRING, default=""),
    Flag("profile", kind=flags.STRING, default="legacy"),
    Flag("target", kind=flags.STRING, default=""),
    Flag("container", "c", flags.STRING, ""),
    Flag("stdin", "i", flags.BOOL),
    Flag("tty", "t", flags.BOOL),
    Flag("quiet", "q", flags.BOOL),
)

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery's rand.String alphabet


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    before = parsed.before_dash
    if len(before) != 1:
        raise KubectlError("debugging a pod requires exactly one pod name\n"
                           "See 'kubectl debug -h' for help and examples")
    if not parsed["image"]:
        raise KubectlError("--image is required")
    kind, name = resources.split_type_name(before[0])
    if kind.kind != "Pod":
        raise KubectlError(f"{kind.plural} are not supported by this emulator's debug; name a pod")
    pod = await ctx.api.get("v1", "Pod", parsed["namespace"], name)
    target = parsed["target"] or (pods.container_names(pod) or [""])[0]
    if target not in pods.container_names(pod):
        raise KubectlError(f'unable to upgrade connection: container not found ("{target}")')
    if not parsed["container"] and not parsed["quiet"]:
        debugger = "debugger-" + "".join(random.choice(NAME_CHARS) for _ in range(5))
        ctx.stderr.write(f"Defaulting debug container name to {debugger}.\n")
    tty = parsed["tty"]
    if tty and not is_tty(ctx.stdin):
        if not parsed["quiet"]:
            ctx.stderr.write(NO_TTY)
        tty = False
    return await ctx.exec_in_pod(pod, target, list(parsed.dash or ["sh"]), parsed["stdin"], tty)
