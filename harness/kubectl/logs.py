"""`kubectl logs`: a container's log file, its tail, or followed as it grows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from components.common.apiclient import ApiError
from harness.kubectl import flags, pods, resources, wait
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("container", "c", flags.STRING, ""),
    Flag("tail", kind=flags.INT, default=-1),
    Flag("follow", "f", flags.BOOL),
    Flag("selector", "l", flags.STRING, ""),
    Flag("all-containers", kind=flags.BOOL),
    Flag("prefix", kind=flags.BOOL),
    Flag("max-log-requests", kind=flags.INT, default=5),
    Flag("pod-running-timeout", kind=flags.DURATION, default=20.0),
    Flag("ignore-errors", kind=flags.BOOL),
)

USAGE = ("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for "
         "the logs command\nSee 'kubectl logs -h' for help and examples")
# A log file has no change notification, so a follow reads what was appended this often.
FOLLOW_INTERVAL = 0.1


def _bad_request(message: str) -> ApiError:
    return ApiError({"kind": "Status", "code": 400, "reason": "BadRequest", "message": message})


def _containers(pod: dict[str, Any], parsed: flags.Parsed, container: str, ctx: KubectlContext) -> list[str]:
    spec = pod.get("spec") or {}
    every = [c.get("name", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    if parsed["all-containers"]:
        return every
    if container:
        if container not in every:
            raise KubectlError(f"container {container} is not valid for pod {pod['metadata']['name']}")
        return [container]
    annotated = ((pod["metadata"].get("annotations") or {}).get(pods.DEFAULT_CONTAINER_ANNOTATION))
    if annotated and annotated not in every:
        ctx.stderr.write(f'Default container name "{annotated}" not found in pod {pod["metadata"]["name"]}\n')
    return [pods.default_container(pod, ctx.stderr)]


def tail_lines(data: bytes, count: int) -> bytes:
    """The last `count` lines (all with a negative count)."""
    if count < 0:
        return data
    if count == 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def _prefixed(data: bytes, prefix: str) -> str:
    text = data.decode(errors="replace")
    if not prefix:
        return text
    return "".join(prefix + line for line in text.splitlines(keepends=True))


def _log_file(ctx: KubectlContext, pod: dict[str, Any], container: str) -> Path:
    path = Path(ctx.container_log_path(pod, container))
    if not path.exists():
        state = (pods.container_status(pod, container) or {}).get("state") or {}
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise _bad_request(f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: {reason}')
    return path


async def _container_ended(ctx: KubectlContext, pod: dict[str, Any], container: str) -> None:
    """Return when the pod is gone or this container has terminated (its log stream ends)."""
    meta = pod["metadata"]

    def ended(state: dict[str, Any] | None) -> bool:
        if state is None or state["metadata"].get("uid") != meta.get("uid"):
            return True
        status = pods.container_status(state, container) or {}
        return "terminated" in (status.get("state") or {})

    try:
        await wait.until(ctx.api, resources.lookup("pods"), meta.get("namespace"), meta["name"], ended, wait.FOREVER)
    except TimeoutError:
        return


async def _follow(ctx: KubectlContext, pod: dict[str, Any], container: str, path: Path, offset: int,
                  prefix: str) -> None:
    pending = b""
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def watch_end() -> None:
            await _container_ended(ctx, pod, container)
            done.set()

        nursery.start_soon(watch_end)
        while True:
            finished = done.is_set()
            try:
                size = path.stat().st_size
                if size < offset:
                    offset = 0
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except FileNotFoundError:
                chunk = b""
            offset += len(chunk)
            pending += chunk
            if b"\n" in pending:
                complete, _, pending = pending.rpartition(b"\n")
                emit(ctx.stdout, _prefixed(complete + b"\n", prefix))
            if finished:
                break
            with trio.move_on_after(FOLLOW_INTERVAL):
                await done.wait()
        if pending:
            emit(ctx.stdout, _prefixed(pending, prefix))
        nursery.cancel_scope.cancel()


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    namespace = parsed["namespace"]
    args = parsed.args
    container = parsed["container"]
    if parsed["selector"]:
        if args:
            raise KubectlError("only a selector (-l) or a POD name is allowed")
        targets = await resources.list_items(ctx.api, resources.lookup("pods"), namespace,
                                             label_selector=parsed["selector"])
        if not targets:
            ctx.stderr.write(f"No resources found in {namespace} namespace.\n")
            return 0
        tail = parsed["tail"] if "tail" in parsed.given else 10
    else:
        if not args or len(args) > 2:
            raise KubectlError(USAGE)
        if len(args) == 2:
            if container:
                raise KubectlError("only one of -c or an inline [CONTAINER] arg is allowed")
            container = args[1]
        targets = [await pods.resolve_pod(ctx.api, namespace, args[0], for_logs=True, stderr=ctx.stderr,
                                          timeout=parsed["pod-running-timeout"])]
        tail = parsed["tail"]

    streams: list[tuple[dict[str, Any], str]] = []
    for pod in targets:
        streams.extend((pod, c) for c in _containers(pod, parsed, container, ctx))
    if parsed["follow"] and len(streams) > parsed["max-log-requests"]:
        raise KubectlError(f"you are attempting to follow {len(streams)} log streams, but maximum allowed "
                           f"concurrency is {parsed['max-log-requests']}, use --max-log-requests to increase the limit")

    errors: list[BaseException] = []
    opened: list[tuple[dict[str, Any], str, Path, int, str]] = []
    for pod, name in streams:
        prefix = f"[pod/{pod['metadata']['name']}/{name}] " if parsed["prefix"] else ""
        try:
            path = _log_file(ctx, pod, name)
            data = path.read_bytes()
        except ApiError as exc:
            if not parsed["ignore-errors"]:
                errors.append(exc)
            continue
        shown = tail_lines(data, tail)
        if parsed["follow"]:
            # print only complete lines now; the follower prints the rest as it completes
            cut = shown.rfind(b"\n") + 1
            emit(ctx.stdout, _prefixed(shown[:cut], prefix))
            opened.append((pod, name, path, len(data) - (len(shown) - cut), prefix))
        else:
            emit(ctx.stdout, _prefixed(shown, prefix))
    if opened:
        async with trio.open_nursery() as nursery:
            for pod, name, path, offset, prefix in opened:
                nursery.start_soon(_follow, ctx, pod, name, path, offset, prefix)
    return report(errors, ctx.stderr, ctx.api.address)
