"""`istioctl x precheck`: whether Istio can be installed or upgraded, with istioctl 1.24's checks
that mean something here.

The control-plane check compares the Kubernetes version with Istio 1.24's minimum (1.28); install
permissions and Gateway API CRD versions always pass (the emulated apiserver has no RBAC and
serves the Gateway API at v1). `--from-version 1.21` (or older) adds the upgrade checks: a
`zipkin` Service in istio-system (tracing no longer defaults to it) and `discoverySelectors`
without ENHANCED_RESOURCE_SCOPING (now on by default). Messages print as istioctl's analysis
messages, always colored, as precheck asks the formatter to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from components.common import http
from components.common.apiclient import ApiClient, ApiError
from harness.istioctl.context import GREEN, VERSION, IstioctlContext, emit, paint
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import BOOL, STRING, Flag, Parsed

FLAGS = (
    Flag("skip-controlplane", kind=BOOL),
    Flag("from-version", "f", STRING, ""),
)
MIN_KUBERNETES_MINOR = 28
ANALYSIS_URL = f"https://istio.io/v{VERSION.rsplit('.', 1)[0]}/docs/reference/config/analysis"
LEVEL_COLORS = {"Warning": "\x1b[33m", "Error": "\x1b[1;31m"}
LEVEL_RANK = {"Error": 0, "Warning": 1, "Info": 2}
UPDATE_TEMPLATE = ('The configuration "{field}" changed in release {release}: {info}. Or, install with '
                   "`--set compatibilityVersion={compat}` to retain the old default.")


@dataclass(frozen=True)
class Message:
    level: str
    code: str
    origin: str  # "Cluster", "Service istio-system/zipkin"
    text: str

    def render(self) -> str:
        return f"{LEVEL_COLORS.get(self.level, '')}{self.level}\x1b[0m [{self.code}] ({self.origin}) {self.text}"


def _update_incompatibility(origin: str, field: str, release: str, info: str, compat: str) -> Message:
    text = UPDATE_TEMPLATE.format(field=field, release=release, info=info, compat=compat)
    return Message("Warning", "IST0169", origin, text)


async def _kubernetes_version(api: ApiClient) -> dict:
    try:
        response = await http.request(api.address, "GET", "/version", headers=[("accept", "application/json")])
        return json.loads(response.body)
    except (OSError, http.HTTPError, ValueError) as exc:
        raise IstioctlError(f"failed to get the Kubernetes version: {exc}") from exc


async def check_control_plane(api: ApiClient) -> list[Message]:
    version = await _kubernetes_version(api)
    minor = int("".join(ch for ch in str(version.get("minor", "0")) if ch.isdigit()) or 0)
    if str(version.get("major")) == "1" and minor < MIN_KUBERNETES_MINOR:
        return [Message("Error", "IST0142", "Cluster", f'The Kubernetes Version "{version.get("gitVersion", "")}" '
                                                        f"is lower than the minimum version: 1.{MIN_KUBERNETES_MINOR}")]
    return []


async def _check_tracing(api: ApiClient) -> list[Message]:
    try:
        await api.get("v1", "Service", "istio-system", "zipkin")
    except ApiError as exc:
        if exc.code == 404:
            return []
        raise
    return [_update_incompatibility(
        "Service istio-system/zipkin", "meshConfig.defaultConfig.tracer", "1.21",
        "tracing is no longer by default enabled to send to 'zipkin.istio-system.svc'; follow "
        "https://istio.io/latest/docs/tasks/observability/distributed-tracing/telemetry-api/", "1.21")]


async def _check_pilot(api: ApiClient, namespace: str) -> list[Message]:
    messages = []
    deployments = await api.list("apps/v1", "Deployment", namespace, label_selector="app=istiod")
    for deployment in deployments.get("items") or []:
        meta = deployment["metadata"]
        revision = (meta.get("labels") or {}).get("istio.io/rev", "")
        config_map = "istio" if revision == "default" else f"istio-{revision}"
        try:
            mesh_text = (await api.get("v1", "ConfigMap", namespace, config_map)).get("data", {}).get("mesh", "")
        except ApiError:
            mesh_text = ""
        mesh = yaml.safe_load(mesh_text) if mesh_text else {}
        if not isinstance(mesh, dict) or mesh.get("discoverySelectors") is None:
            continue
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        mitigated = any(env.get("name") == "ENHANCED_RESOURCE_SCOPING" and env.get("value") == "true"
                        for c in containers if c.get("name") == "discovery" for env in c.get("env") or [])
        if not mitigated:
            messages.append(_update_incompatibility(
                f"Deployment {meta.get('namespace')}/{meta['name']}", "ENHANCED_RESOURCE_SCOPING", "1.22",
                "previously, the enhanced scoping of custom resources was disabled by default; now it will be "
                "enabled by default", "1.21"))
    return messages


async def check_from_version(api: ApiClient, version: str, istio_namespace: str) -> list[Message]:
    major, dot, minor_text = version.partition(".")
    if not dot:
        raise IstioctlError(f"invalid version {version}, expected format like '1.0'")
    if major != "1":
        raise IstioctlError(f"expected major version 1, got {version}")
    if not minor_text.lstrip("+-").isdigit():
        raise IstioctlError(f"minor version is not a number: {minor_text}")
    if int(minor_text) > 21:
        return []
    return await _check_pilot(api, istio_namespace) + await _check_tracing(api)


async def run(parsed: Parsed, ctx: IstioctlContext) -> int:
    messages: list[Message] = []
    if not parsed["skip-controlplane"]:
        messages += await check_control_plane(ctx.api)
    if parsed["from-version"]:
        messages += await check_from_version(ctx.api, parsed["from-version"], parsed["istioNamespace"])
    shown = sorted(set(messages), key=lambda m: (LEVEL_RANK.get(m.level, 3), m.code, m.origin, m.text))
    if not shown:
        emit(ctx.stderr, paint(ctx.stderr, GREEN, "✔") + " No issues found when checking the cluster. Istio is safe "
             "to install or upgrade!\n  To get started, check out https://istio.io/latest/docs/setup/getting-started/."
             "\n")
        return 0
    emit(ctx.stdout, "\n".join(m.render() for m in shown) + "\n")
    raise IstioctlError("Issues found when checking the cluster. Istio may not be safe to install or upgrade.\n"
                        f"See {ANALYSIS_URL} for more information about causes and resolutions.")
