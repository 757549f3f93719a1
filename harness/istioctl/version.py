"""`istioctl version`: the client's version, the control plane's (the image tag of each running
istiod, as the emulated istiod has no /version), and the data plane's (the proxies connected to
istiod, from its /debug/syncz, all at the control plane's release)."""

from __future__ import annotations

from typing import Any

from harness.istioctl import cluster
from harness.istioctl.context import VERSION, IstioctlContext, emit
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import BOOL, Flag, Parsed

FLAGS = (Flag("remote", kind=BOOL, default=True),)


def image_tag(pod: dict[str, Any]) -> str:
    """The tag of the pod's `discovery` container image (else its first container's)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if c.get("name") == "discovery"), containers[0] if containers else {})
    image = container.get("image", "")
    _, colon, tag = image.rpartition(":")
    return tag if colon and "/" not in tag else "unknown"


async def _connected_proxies(ctx: IstioctlContext, istiods: list[dict[str, Any]]) -> int | None:
    """How many proxies the istiods list as connected; None when one cannot be asked."""
    count = 0
    for pod in istiods:
        meta = pod["metadata"]
        try:
            syncz = await cluster.pod_json(ctx.api, meta["name"], meta["namespace"], cluster.ISTIOD_HTTP_PORT,
                                           "debug/syncz")
        except IstioctlError:
            return None
        if isinstance(syncz, list):
            count += sum(1 for s in syncz if isinstance(s, dict) and s.get("connected", True))
    return count


async def run(parsed: Parsed, ctx: IstioctlContext) -> int:
    if not parsed["remote"]:
        emit(ctx.stdout, f"client version: {VERSION}\n")
        return 0
    namespace = parsed["istioNamespace"]
    istiods = await cluster.running_istiods(ctx.api, namespace)
    if not istiods:
        emit(ctx.stderr, f'Istio is not present in the cluster: no running Istio pods in namespace "{namespace}"\n')
        emit(ctx.stdout, f"client version: {VERSION}\n")
        return 0
    lines = [f"client version: {VERSION}"]
    tags = [(((p["metadata"].get("labels") or {}).get("istio", "")), image_tag(p)) for p in istiods]
    if len({tag for _, tag in tags}) == 1:
        lines.append(f"control plane version: {tags[0][1]}")
    else:
        lines += [f"{component} version: {tag}" for component, tag in tags]
    proxies = await _connected_proxies(ctx, istiods)
    if proxies is not None:
        lines.append(f"data plane version: {f'{tags[0][1]} ({proxies} proxies)' if proxies else 'none'}")
    emit(ctx.stdout, "\n".join(lines) + "\n")
    return 0
