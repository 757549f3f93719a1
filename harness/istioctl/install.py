"""`istioctl install` (alias `apply`): the built-in manifests of a profile, applied component by
component, each waited for until ready, with istioctl 1.24's output on stderr.

Only the ambient profile is emulated. `--set profile=NAME` picks the profile;
`--set components.<base|pilot|cni|ztunnel>.enabled=false` leaves a component out;
`--set components.ingressGateways[0].enabled=true` (named istio-ingressgateway, the default) adds
the ingress gateway, as older ambient guides install it; other gateways are not emulated, which a
warning says; any other `--set` is accepted as istioctl accepts it and reported as having no
effect. Applying is idempotent, so installing again reconciles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import trio

from components.common.apiclient import ApiClient, ApiError
from harness import manifests
from harness.istioctl.components import SPEC_NAMES, Component, load_components, prepared
from harness.istioctl.context import VERSION, IstioctlContext, emit, is_tty
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import BOOL, DURATION, STRING_ARRAY, Flag, Parsed
from harness.istioctl.progress import ProgressLog
from harness.istioctl.waiting import NotReady, wait_ready

FLAGS = (
    Flag("set", "s", STRING_ARRAY, ()),
    Flag("skip-confirmation", "y", BOOL),
    Flag("readiness-timeout", kind=DURATION, default=300.0),
)

# The profiles istioctl 1.24 ships (manifests/profiles/*.yaml).
KNOWN_PROFILES = ("ambient", "default", "demo", "empty", "minimal", "openshift", "openshift-ambient", "preview",
                  "remote", "stable")
_COMPONENT_ENABLED = re.compile(r"components\.(\w+)\.enabled")
_GATEWAY_SETTING = re.compile(r"components\.(ingressGateways|egressGateways)\[(\d+)\]\.(\w+)")
_TRUE = ("1", "t", "T", "true", "TRUE", "True")

# pkg/art/istio-ascii.txt (each line 20 columns), printed bold bright blue before anything else.
ISTIO_ART = "".join(line.ljust(20) + "\n" for line in (
    "        |\\", "        | \\", "        |  \\", "        |   \\", "      /||    \\", "     / ||     \\",
    "    /  ||      \\", "   /   ||       \\", "  /    ||        \\", " /     ||         \\",
    "/______||__________\\", "____________________", "  \\__       _____/", "     \\_____/"))


INGRESS = SPEC_NAMES["ingressGateways"]
INGRESS_NAME = "istio-ingressgateway"


@dataclass
class Settings:
    profile: str = "default"
    # user-facing component names; the ambient profile has no ingress gateway unless enabled
    disabled: set[str] = field(default_factory=lambda: {INGRESS})
    warnings: list[str] = field(default_factory=list)


def _path_value(setting: str) -> tuple[str, str]:
    """istioctl's getPV: `path=value`; anything else is a path with an empty value."""
    parts = setting.split("=")
    if len(parts) != 2:
        return setting, ""
    return parts[0].strip(), parts[1].strip()


def parse_settings(sets: list[str]) -> Settings:
    settings = Settings()
    gateways_warned: set[str] = set()
    for setting in sets:
        path, value = _path_value(setting)
        enabled = _COMPONENT_ENABLED.fullmatch(path)
        gateway = _GATEWAY_SETTING.fullmatch(path)
        if path == "profile":
            settings.profile = value
        elif enabled and enabled.group(1) in SPEC_NAMES and enabled.group(1) not in ("ingressGateways",
                                                                                     "egressGateways"):
            if value not in _TRUE:
                settings.disabled.add(SPEC_NAMES[enabled.group(1)])
            else:
                settings.disabled.discard(SPEC_NAMES[enabled.group(1)])
        elif gateway and gateway.group(1) == "ingressGateways" and gateway.group(2) == "0" and (
                gateway.group(3) == "enabled" or (gateway.group(3) == "name" and value == INGRESS_NAME)):
            if gateway.group(3) == "enabled":
                (settings.disabled.discard if value in _TRUE else settings.disabled.add)(INGRESS)
        elif gateway:
            kind = SPEC_NAMES[gateway.group(1)]
            if kind not in gateways_warned:
                gateways_warned.add(kind)
                settings.warnings.append(
                    f"only the first ingress gateway, named {INGRESS_NAME}, is emulated: --set {setting} has no effect"
                    if kind == INGRESS else f"{kind} are not emulated yet: --set {setting} installs no gateway")
        else:
            settings.warnings.append(f"--set {setting} has no effect: the emulated Istio manifests are fixed")
    return settings


def check_profile(profile: str) -> None:
    if profile not in KNOWN_PROFILES:
        raise IstioctlError(f'generate config: profile "{profile}" not found: open profiles/{profile}.yaml: '
                            "file does not exist")
    if profile not in manifests.PROFILES:
        emulated = ", ".join(f'"{p}"' for p in manifests.PROFILES)
        raise IstioctlError(f'profile "{profile}" is not emulated: only {emulated} is (--set profile=ambient)')


def multi_error(errors: list[str]) -> str:
    """istio's multierror format: one error as is, several as a bulleted count."""
    if len(errors) == 1:
        return errors[0]
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n"


async def confirm(ctx: IstioctlContext, prompt: str) -> bool:
    """istioctl's Confirm: ask until y/yes or n/no; an empty line or end of input is no."""
    while True:
        emit(ctx.stdout, prompt + " ")
        line = await trio.to_thread.run_sync(ctx.stdin.readline, abandon_on_cancel=True)
        words = line.split()
        if len(words) != 1:
            return False
        if words[0].upper() in ("Y", "YES"):
            return True
        if words[0].upper() in ("N", "NO"):
            return False


async def install_component(api: ApiClient, component: Component, timeout: float, log: ProgressLog) -> None:
    """Apply a component's objects and wait for them; raises IstioctlError with istioctl's
    wording when applying fails or readiness times out."""
    def waiting(ids: list[str]) -> None:
        if component.name:
            log.status(f"Processing resources for {component.name}. Waiting for {', '.join(ids)}")

    if component.name:
        log.status(f"Processing resources for {component.name}.")
    for obj in component.objects:
        try:
            await api.apply(prepared(obj, component.name))
        except ApiError as exc:
            raise IstioctlError(str(exc)) from exc
    try:
        await wait_ready(api, [prepared(o, component.name) for o in component.objects], timeout, waiting)
    except NotReady as exc:
        raise IstioctlError(f"failed to wait for resource: {exc}") from exc


async def run(parsed: Parsed, ctx: IstioctlContext) -> int:
    if parsed.args:
        raise IstioctlError(f"accepts 0 arg(s), received {len(parsed.args)}")
    settings = parse_settings(list(parsed["set"] or []))
    check_profile(settings.profile)
    plan = [c for c in load_components(ctx.manifests_dir) if c.name not in settings.disabled]
    art = f"\x1b[94;1m{ISTIO_ART}\x1b[0m" if is_tty(ctx.stderr) else ISTIO_ART
    emit(ctx.stderr, art + "\n")
    for warning in settings.warnings:
        emit(ctx.stderr, f"! {warning}\n")
    if not parsed["skip-confirmation"]:
        prompt = f'This will install the Istio {VERSION} profile "{settings.profile}" into the cluster. Proceed? (y/N)'
        if not await confirm(ctx, prompt):
            emit(ctx.stderr, "Cancelled.\n")
            return 1
    log = ProgressLog(ctx.stderr)
    errors = []
    for component in plan:
        try:
            await install_component(ctx.api, component, parsed["readiness-timeout"], log)
        except IstioctlError as exc:
            errors.append(exc.message)
            log.failed(component.name or "Istio", exc.message)
            continue
        if component.name:
            log.installed(component.name, component.icon)
    if errors:
        raise IstioctlError("failed to install manifests: " + multi_error(errors))
    log.complete()
    if settings.profile == "ambient":
        emit(ctx.stderr, "The ambient profile has been installed successfully, enjoy Istio without sidecars!\n")
    return 0
