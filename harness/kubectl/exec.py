"""`kubectl exec`: run a command in a pod's container through the harness."""

from __future__ import annotations

import io
from typing import Any

from harness.kubectl import flags, pods
from harness.kubectl.context import KubectlContext
from harness.kubectl.errors import KubectlError
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("container", "c", flags.STRING, ""),
    Flag("stdin", "i", flags.BOOL),
    Flag("tty", "t", flags.BOOL),
    Flag("quiet", "q", flags.BOOL),
    Flag("pod-running-timeout", kind=flags.DURATION, default=60.0),
)

NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file\n"


def is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _check_container(pod: dict[str, Any], container: str) -> None:
    """What the kubelet refuses: a container the pod does not have or that is not running."""
    missing = KubectlError(f'unable to upgrade connection: container not found ("{container}")')
    if container not in pods.container_names(pod):
        raise missing
    status = pods.container_status(pod, container)
    if status is not None and "running" not in (status.get("state") or {}):
        raise missing
    if status is None and (pod.get("status") or {}).get("phase") != "Running":
        raise missing


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    before = parsed.before_dash
    if not before:
        raise KubectlError("pod, type/name or --filename must be specified")
    if len(before) > 1:
        raise KubectlError("exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\n"
                           "See 'kubectl exec -h' for help and examples")
    command = parsed.dash or []
    if not command:
        raise KubectlError("you must specify at least one command for the container")
    pod = await pods.resolve_pod(ctx.api, parsed["namespace"], before[0], for_logs=False,
                                 timeout=parsed["pod-running-timeout"])
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise KubectlError(f"cannot exec into a container in a completed pod; current phase is {phase}")
    notices = io.StringIO() if parsed["quiet"] else ctx.stderr
    container = parsed["container"] or pods.default_container(pod, notices)
    _check_container(pod, container)
    tty = parsed["tty"]
    if tty and not is_tty(ctx.stdin):
        if not parsed["quiet"]:
            ctx.stderr.write(NO_TTY)
        tty = False
    code = await ctx.exec_in_pod(pod, container, list(command), parsed["stdin"], tty)
    if code != 0 and not is_tty(ctx.stdout):
        ctx.stderr.write(f"command terminated with exit code {code}\n")
    return code
