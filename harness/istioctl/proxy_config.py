"""`istioctl proxy-config` (`pc`): `secret`, the one subcommand emulated.

As istioctl 1.24 does, `secret` reads the admin `/config_dump` of the pod named (`NAME[.NS]`, or
one pod of `TYPE/NAME[.NS]`; `-n`, else `default`) on `--proxy-admin-port` (15000), through the
apiserver's pod proxy, and decodes it as Envoy's: a waypoint or gateway (proxyv2) shows its SDS
secrets; a ztunnel pod, whose dump is not Envoy's since ztunnel left Envoy, has no secrets section
and gets istioctl's error (`istioctl ztunnel-config certificates` shows a ztunnel's certificates).
The other subcommands are named, and say they are not emulated.
"""

from __future__ import annotations

from harness.istioctl import cluster
from harness.istioctl.command import Command, Handler
from harness.istioctl.context import IstioctlContext, emit
from harness.istioctl.envoydump import EnvoyDump, secrets_summary, secrets_text
from harness.istioctl.errors import IstioctlError
from harness.istioctl.flags import INT, STRING, Flag, Parsed

DEFAULT_PROXY_ADMIN_PORT = 15000
DEFAULT_NAMESPACE = "default"  # the kubeconfig context's namespace
POD_ARGS = "[<type>/]<name>[.<namespace>]"

FLAGS = (
    Flag("output", "o", STRING, "short"),
    Flag("proxy-admin-port", kind=INT, default=DEFAULT_PROXY_ADMIN_PORT),
)


async def config_dump(ctx: IstioctlContext, parsed: Parsed) -> EnvoyDump:
    """The config dump of the pod the argument names (`setupPodConfigdumpWriter`)."""
    name, namespace = await cluster.infer_pod(ctx.api, parsed.args[0], parsed["namespace"] or DEFAULT_NAMESPACE)
    try:
        body = await cluster.pod_request(ctx.api, name, namespace, parsed["proxy-admin-port"], "config_dump")
    except IstioctlError as exc:
        raise IstioctlError(f"failed to execute command on {name}.{namespace} sidecar: {exc.message}") from exc
    return EnvoyDump.parse(body)


async def _secret(parsed: Parsed, ctx: IstioctlContext) -> int:
    if len(parsed.args) != 1:
        raise IstioctlError("secret requires pod name or --file parameter")
    dump = await config_dump(ctx, parsed)
    output = parsed["output"]
    if output == "short":
        emit(ctx.stdout, secrets_summary(dump.secrets()))
    elif output in ("json", "yaml"):
        try:
            secrets = dump.secrets()
        except IstioctlError as exc:
            raise IstioctlError(f"sidecar doesn't support secrets: {exc.message}") from exc
        emit(ctx.stdout, secrets_text(secrets, output))
    else:
        raise IstioctlError(f'output format "{output}" not supported')
    return 0


def _not_emulated(name: str) -> Handler:
    async def run(parsed: Parsed, ctx: IstioctlContext) -> int:
        raise IstioctlError(f'"istioctl proxy-config {name}" is not emulated yet')
    return run


def _envoy(name: str, aliases: tuple[str, ...], short: str) -> Command:
    return Command(name, short, _not_emulated(name), FLAGS, aliases, args=POD_ARGS)


COMMAND = Command(
    "proxy-config", "Retrieve information about proxy configuration from Envoy [kube only]", aliases=("pc",),
    long="A group of commands used to retrieve information about proxy configuration from the Envoy config dump",
    children=(
        _envoy("all", ("a",), "Retrieves all configuration for the Envoy in the specified pod"),
        _envoy("bootstrap", ("b",), "Retrieves bootstrap configuration for the Envoy in the specified pod"),
        _envoy("cluster", ("clusters", "c"), "Retrieves cluster configuration for the Envoy in the specified pod"),
        _envoy("ecds", ("ec",), "Retrieves typed extension configuration for the Envoy in the specified pod"),
        _envoy("endpoint", ("endpoints", "ep"), "Retrieves endpoint configuration for the Envoy in the specified pod"),
        _envoy("envoy-stats", ("es",), "Retrieves Envoy metrics in the specified pod"),
        _envoy("listener", ("listeners", "l"), "Retrieves listener configuration for the Envoy in the specified pod"),
        _envoy("log", ("o",), "Retrieves logging levels of the Envoy in the specified pod"),
        Command("rootca-compare", "Compare ROOTCA values for the two given pods", _not_emulated("rootca-compare"),
                aliases=("rc",), args="[pod/]<name-1>[.<namespace-1>] [pod/]<name-2>[.<namespace-2>]"),
        _envoy("route", ("routes", "r"), "Retrieves route configuration for the Envoy in the specified pod"),
        Command("secret", "Retrieves secret configuration for the Envoy in the specified pod", _secret, FLAGS,
                ("secrets", "s"), args=POD_ARGS,
                long="Retrieve information about secret configuration for the Envoy instance in the specified pod."),
    ))
