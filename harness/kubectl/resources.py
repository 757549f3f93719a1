"""Resource arguments (`pods`, `deploy,svc NAME`, `pod/NAME`, `all`) and fetching what they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl.errors import KubectlError

# What `kubectl get all` expands to, in kubectl's order, among the kinds this cluster serves.
ALL = ("pods", "services", "daemonsets", "deployments", "replicasets")

NO_RESOURCES = ("You must provide one or more resources by argument or filename.\nExample resource specifications "
                "include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")


def lookup(name: str) -> kinds.Kind:
    found = kinds.lookup(name)
    if found is None:
        raise KubectlError(f'the server doesn\'t have a resource type "{name}"')
    return found


def namespace_of(kind: kinds.Kind, namespace: str | None) -> str | None:
    return namespace if kind.namespaced else None


@dataclass
class Selection:
    """What resource arguments name: per kind, the names given (none: every object)."""
    requests: list[tuple[kinds.Kind, list[str]]] = field(default_factory=list)
    single: bool = False        # exactly one object was named (kubectl prints it, not a List)
    by_name: bool = False       # names were given

    @property
    def several_kinds(self) -> bool:
        return len({k for k, _ in self.requests}) > 1


def _kinds_of(types: str) -> list[kinds.Kind]:
    found: list[kinds.Kind] = []
    for name in types.split(","):
        if not name:
            continue
        for kind in ([lookup(n) for n in ALL] if name == "all" else [lookup(name)]):
            if kind not in found:
                found.append(kind)
    return found


def select(args: list[str]) -> Selection:
    """Parse `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...` as kubectl's resource builder does."""
    if not args:
        return Selection()
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise KubectlError("there is no need to specify a resource type as a separate argument when passing "
                               "arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' "
                               "instead of 'kubectl get resource resource/<resource_name>'")
        selection = Selection(by_name=True)
        for arg in args:
            type_name, _, name = arg.partition("/")
            if not name:
                raise KubectlError("arguments in resource/name form must have a single resource and name")
            kind = lookup(type_name)
            for existing, names in selection.requests:
                if existing == kind:
                    names.append(name)
                    break
            else:
                selection.requests.append((kind, [name]))
        selection.single = len(args) == 1
        return selection
    kinds_found = _kinds_of(args[0])
    names = args[1:]
    return Selection([(k, list(names)) for k in kinds_found], single=len(names) == 1 and len(kinds_found) == 1
                     and "," not in args[0] and args[0] != "all", by_name=bool(names))


def split_type_name(arg: str, default_kind: str = "pods") -> tuple[kinds.Kind, str]:
    """`NAME` (a pod, or `default_kind`) or `TYPE/NAME`."""
    if "/" in arg:
        type_name, _, name = arg.partition("/")
        return lookup(type_name), name
    return lookup(default_kind), arg


async def list_items(api: ApiClient, kind: kinds.Kind, namespace: str | None, *,
                     label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
    listing = await api.list(kind.api_version, kind.kind, namespace_of(kind, namespace),
                             label_selector=label_selector or None, field_selector=field_selector or None)
    return list(listing.get("items") or [])


async def get_or_error(api: ApiClient, kind: kinds.Kind, namespace: str | None, name: str
                       ) -> tuple[dict[str, Any] | None, ApiError | None]:
    try:
        return await api.get(kind.api_version, kind.kind, namespace_of(kind, namespace), name), None
    except ApiError as exc:
        return None, exc
