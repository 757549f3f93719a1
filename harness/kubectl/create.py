"""`kubectl create -f`, `create namespace|serviceaccount|deployment NAME`."""

from __future__ import annotations

import re
from typing import Any

from components.common import kinds
from components.common.apiclient import ApiError
from harness.kubectl import apply, flags, manifests
from harness.kubectl.context import KubectlContext
from harness.kubectl.errors import KubectlError, SourcedApiError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("filename", "f", flags.STRINGS),
    Flag("recursive", "R", flags.BOOL),
    Flag("output", "o", flags.STRING, ""),
    Flag("dry-run", kind=flags.STRING, default="none"),
    Flag("save-config", kind=flags.BOOL),
    Flag("validate", kind=flags.STRING, default="strict"),
    Flag("image", kind=flags.STRINGS),
    Flag("replicas", "r", flags.INT, 1),
    Flag("port", kind=flags.INT, default=-1),
)

GENERATORS = {"namespace": "namespace", "ns": "namespace", "serviceaccount": "serviceaccount",
              "sa": "serviceaccount", "deployment": "deployment", "deploy": "deployment"}


def _container_name(image: str) -> str:
    """kubectl's container name for an image: the last path element without tag or digest."""
    name = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "container"


def generate(what: str, name: str, parsed: flags.Parsed) -> dict[str, Any]:
    """The object `kubectl create <what> NAME` builds."""
    if what == "namespace":
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}, "status": {}}
    if what == "serviceaccount":
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    images = parsed["image"]
    if not images:
        raise KubectlError('required flag(s) "image" not set')
    containers: list[dict[str, Any]] = [{"image": image, "name": _container_name(image), "resources": {}}
                                        for image in images]
    if parsed.dash:
        if len(images) > 1:
            raise KubectlError("cannot specify multiple --image options and command")
        containers[0]["command"] = list(parsed.dash)
    if parsed["port"] >= 0:
        containers[0]["ports"] = [{"containerPort": parsed["port"]}]
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"labels": labels, "name": name},
            "spec": {"replicas": parsed["replicas"], "selector": {"matchLabels": labels}, "strategy": {},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}},
            "status": {}}


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    suffix = apply.dry_run_suffix(parsed["dry-run"])
    writer = apply.ObjectWriter(ctx, parsed["output"], suffix)
    args = parsed.before_dash
    if parsed["filename"]:
        if args:
            raise KubectlError(f"Unexpected args: {args}\nSee 'kubectl create -h' for help and examples")
        items, read_errors = await manifests.read(parsed["filename"], ctx, parsed["recursive"])
        sources = [(item, item.source) for item in items]
        errors: list[BaseException] = list(read_errors)
        if not items and not errors:
            raise KubectlError("no objects passed to create")
    elif args:
        what = GENERATORS.get(args[0])
        if what is None:
            raise KubectlError(f"Unexpected args: {args}\nSee 'kubectl create -h' for help and examples")
        if len(args) != 2:
            raise KubectlError(f"exactly one NAME is required, got {len(args) - 1}\n"
                               f"See 'kubectl create {args[0]} -h' for help and examples")
        sources = [(manifests.Item("", generate(what, args[1], parsed)), "")]
        errors = []
    else:
        raise KubectlError("must specify one of -f and -k")
    for item, source in sources:
        kind = kinds.served(item.obj["apiVersion"], item.obj["kind"])
        if kind is None:
            errors.append(manifests.mapping_error(item))
            continue
        try:
            obj = apply.place(item, kind, parsed)
            if parsed["save-config"]:
                obj = apply.with_last_applied(obj)
            created = obj if suffix else await ctx.api.create(obj)
        except ApiError as exc:
            errors.append(SourcedApiError(exc, f'error when creating "{source}": ') if source else exc)
            continue
        except KubectlError as exc:
            errors.append(exc)
            continue
        writer.write(kind, created, "created")
    return report(errors, ctx.stderr, ctx.api.address)
