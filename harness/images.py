"""Container images mapped to the programs that stand in for them.

A container runs its `command` (+ `args`) when it has one, whatever the image: that is how Istio's
sleep and curl samples run `/bin/sleep infinity` with real curl beside it. Without a command the
image's entrypoint is used; images not listed here have none, which is an error naming the image.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

PYTHON = sys.executable


class UnknownImage(Exception):
    """The image has no built-in program and the container gives no command."""


@dataclass(frozen=True)
class Image:
    pattern: str                      # matched against the image reference without registry/tag
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


def _component(module: str, *args: str) -> tuple[str, ...]:
    return (PYTHON, "-m", module, *args)


IMAGES: tuple[Image, ...] = (
    # Istio's samples/httpbin: kennethreitz's image serves on 80, go-httpbin on 8080.
    Image(r"kennethreitz/httpbin", _component("components.apps.httpbin", "--port", "80")),
    Image(r"(mccutchen/go-httpbin|istio/httpbin)", _component("components.apps.httpbin", "--port", "8080")),
    # Client images: their real entrypoints (samples give them a command: sleep infinity).
    Image(r"curlimages/curl", ("curl",)),
    Image(r"(governmentpaas/curl-ssl|istio/curl|nicolaka/netshoot|istio/base)", ("sh",)),
    Image(r"(library/)?(busybox|alpine|debian|ubuntu)", ("sh",)),
    # Istio's samples/bookinfo (docker.io/istio/... or registry.istio.io/release/...): reviews' version,
    # ratings switch and star colour are baked into each image, as upstream's Dockerfile ARGs do.
    Image(r"(istio|release)/examples-bookinfo-productpage-v1", _component("components.apps.bookinfo_productpage")),
    Image(r"(istio|release)/examples-bookinfo-details-v1", _component("components.apps.bookinfo_details")),
    Image(r"(istio|release)/examples-bookinfo-ratings-v1", _component("components.apps.bookinfo_ratings")),
    Image(r"(istio|release)/examples-bookinfo-reviews-v1", _component(
        "components.apps.bookinfo_reviews", "--service-version", "v1")),
    Image(r"(istio|release)/examples-bookinfo-reviews-v2", _component(
        "components.apps.bookinfo_reviews", "--service-version", "v2", "--enable-ratings", "--star-color", "black")),
    Image(r"(istio|release)/examples-bookinfo-reviews-v3", _component(
        "components.apps.bookinfo_reviews", "--service-version", "v3", "--enable-ratings", "--star-color", "red")),
    Image(r"ambient/tcp-echo", _component("components.apps.echo", "--port", "9000")),
    Image(r"ambient/loadgen", _component("components.apps.loadgen", "serve", "--port", "9000")),
    # Istio: istiod (pilot image) embeds its CA; here the CA is its own process that istiod starts.
    Image(r"(istio|istio-release)/pilot", _component(
        "components.istiod", "--api", "$(AMBIENT_APISERVER)", "--root-namespace", "$(POD_NAMESPACE)",
        "--ca-command", f"{PYTHON} -m components.ca --api $(AMBIENT_APISERVER) --listen 0.0.0.0:15012 "
                        "--trusted-node-accounts $(CA_TRUSTED_NODE_ACCOUNTS) --root-namespace $(POD_NAMESPACE)")),
    Image(r"(istio|istio-release)/install-cni", _component(
        "components.cni", "--api", "$(AMBIENT_APISERVER)", "--node", "$(NODE_NAME)",
        "--zds-socket", "/var/run/ztunnel/ztunnel.sock", "--plugin-socket", "/var/run/istio-cni/pluginevent.sock",
        "--cni-conf-dir", "/etc/cni/net.d")),
    Image(r"(istio|istio-release)/ztunnel", _component("components.ztunnel")),
    # proxyv2 runs `pilot-agent proxy waypoint|router ...` (args from the Deployment).
    Image(r"(istio|istio-release)/proxyv2", _component("components.waypoint")),
    # Cluster add-ons.
    Image(r"kube-proxy", _component("components.kube_proxy", "--api", "$(AMBIENT_APISERVER)",
                                    "--node", "$(NODE_NAME)")),
    Image(r"coredns/coredns", _component("components.dns", "--api", "$(AMBIENT_APISERVER)",
                                         "--listen", "0.0.0.0:53")),
)


def repository(image: str) -> str:
    """`docker.io/kennethreitz/httpbin:latest` -> `kennethreitz/httpbin`."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        name = ref
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)


def find(image: str) -> Image | None:
    repo = repository(image)
    for candidate in IMAGES:
        if re.fullmatch(candidate.pattern, repo):
            return candidate
    return None


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in command, args and env values (`$$` escapes)."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(sub, value)


def argv_for(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The argv a container runs, per Kubernetes' command/args rules over the image's entrypoint."""
    command = container.get("command")
    args = container.get("args")
    image_ref = container.get("image", "")
    if command:
        argv = list(command) + list(args or [])
    else:
        image = find(image_ref)
        if image is None:
            raise UnknownImage(
                f'image "{image_ref}" of container "{container.get("name")}" is not one the emulator knows, '
                f"and the container has no command to run instead")
        argv = list(image.entrypoint) + list(args if args is not None else image.cmd)
    return [expand(str(a), env) for a in argv]
