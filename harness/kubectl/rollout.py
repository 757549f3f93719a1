"""`kubectl rollout restart|status|pause|resume` for deployments, daemonsets and statefulsets."""

from __future__ import annotations

from typing import Any

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import flags, printers, resources, timefmt, wait
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("selector", "l", flags.STRING, ""),
    Flag("timeout", kind=flags.DURATION, default=0.0),
    Flag("watch", "w", flags.BOOL, True),
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ROLLOUT_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
SUBCOMMANDS = ("restart", "status", "pause", "resume")
# Without --timeout, status waits as long as a deployment may take to progress before its
# controller reports ProgressDeadlineExceeded (progressDeadlineSeconds' default).
STATUS_TIMEOUT = 600.0


def status_message(kind: kinds.Kind, obj: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's rollout status viewers: (message, done)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    name = meta.get("name", "")
    observed = meta.get("generation", 0) <= status.get("observedGeneration", 0)
    if kind.kind == "Deployment":
        if not observed:
            return "Waiting for deployment spec update to be observed...\n", False
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
                raise KubectlError(f'deployment "{name}" exceeded its progress deadline')
        replicas = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        if updated < replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas '
                    "have been updated...\n"), False
        if status.get("replicas", 0) > updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {status.get("replicas", 0) - updated} old '
                    "replicas are pending termination...\n"), False
        if status.get("availableReplicas", 0) < updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {status.get("availableReplicas", 0)} of '
                    f"{updated} updated replicas are available...\n"), False
        return f'deployment "{name}" successfully rolled out\n', True
    if kind.kind == "DaemonSet":
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            raise KubectlError("rollout status is only available for RollingUpdate strategy type")
        if not observed:
            return "Waiting for daemon set spec update to be observed...\n", False
        desired, updated = status.get("desiredNumberScheduled", 0), status.get("updatedNumberScheduled", 0)
        if updated < desired:
            return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have '
                    "been updated...\n"), False
        if status.get("numberAvailable", 0) < desired:
            return (f'Waiting for daemon set "{name}" rollout to finish: {status.get("numberAvailable", 0)} of '
                    f"{desired} updated pods are available...\n"), False
        return f'daemon set "{name}" successfully rolled out\n', True
    if not observed:
        return "Waiting for statefulset spec update to be observed...\n", False
    replicas, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    if ready < replicas:
        return f"Waiting for {replicas - ready} pods to be ready...\n", False
    return f"partitioned roll out complete: {status.get('updatedReplicas', 0)} new pods have been updated...\n", True


async def _targets(args: list[str], parsed: flags.Parsed, ctx: KubectlContext
                   ) -> list[tuple[kinds.Kind, dict[str, Any]]]:
    if not args:
        raise KubectlError(resources.NO_RESOURCES)
    found = []
    for kind, names in resources.select(args).requests:
        if kind.kind not in ROLLOUT_KINDS:
            raise KubectlError(f"no rollout history found for {kind.kind.lower()}")
        if names:
            for name in names:
                found.append((kind, await ctx.api.get(kind.api_version, kind.kind, parsed["namespace"], name)))
        else:
            found.extend((kind, obj) for obj in await resources.list_items(
                ctx.api, kind, parsed["namespace"], label_selector=parsed["selector"]))
    return found


async def _status(kind: kinds.Kind, obj: dict[str, Any], parsed: flags.Parsed, ctx: KubectlContext) -> int:
    message, done = status_message(kind, obj)
    emit(ctx.stdout, message)
    if done or not parsed["watch"]:
        return 0
    last = message
    name = obj["metadata"]["name"]

    def check(state: dict[str, Any] | None) -> bool:
        nonlocal last
        if state is None:
            raise KubectlError(f'object has been deleted: {kind.plural} "{name}"')
        text, finished = status_message(kind, state)
        if text != last:
            emit(ctx.stdout, text)
            last = text
        return finished

    try:
        await wait.until(ctx.api, kind, parsed["namespace"], name, check, parsed["timeout"] or STATUS_TIMEOUT)
    except TimeoutError:
        raise KubectlError("timed out waiting for the condition") from None
    return 0


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed.args:
        raise KubectlError("you must specify a subcommand: " + ", ".join(SUBCOMMANDS))
    if parsed.args[0] not in SUBCOMMANDS:
        raise KubectlError(f'unknown command "{parsed.args[0]}" for "kubectl rollout"')
    command, args = parsed.args[0], parsed.args[1:]
    targets = await _targets(args, parsed, ctx)
    if command == "status":
        if len(targets) != 1:
            raise KubectlError("rollout status is only supported on individual resources and resource collections, "
                               f"but {len(targets)} resources were found")
        return await _status(targets[0][0], targets[0][1], parsed, ctx)
    errors: list[BaseException] = []
    for kind, obj in targets:
        meta = obj["metadata"]
        paused = bool((obj.get("spec") or {}).get("paused"))
        ref = printers.object_ref(kind, obj)
        try:
            if command == "restart":
                if paused:
                    raise KubectlError(f"can't restart paused {kind.kind.lower()} (run rollout resume first)")
                patch = {"spec": {"template": {"metadata": {"annotations": {
                    RESTARTED_AT: timefmt.rfc3339(timefmt.now().astimezone())}}}}}
                verb = "restarted"
            elif (command == "pause") == paused:
                emit(ctx.stdout, f"{ref} already {'paused' if paused else 'resumed'}\n")
                continue
            else:
                patch = {"spec": {"paused": command == "pause"}}
                verb = "paused" if command == "pause" else "resumed"
            await ctx.api.patch(kind.api_version, kind.kind, meta.get("namespace"), meta["name"], patch)
        except (ApiError, KubectlError) as exc:
            errors.append(exc)
            continue
        emit(ctx.stdout, f"{ref} {verb}\n")
    return report(errors, ctx.stderr, ctx.api.address)
