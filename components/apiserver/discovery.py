"""Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`) and `/version`,
all derived from the kinds table."""

from __future__ import annotations

from typing import Any

from components.apiserver import resources
from components.common import kinds

Obj = dict[str, Any]

VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0",
           "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a", "gitTreeState": "clean",
           "buildDate": "2024-04-17T17:27:03Z", "goVersion": "go1.22.2", "compiler": "gc", "platform": "linux/amd64"}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for kind in kinds.all_served():
        versions = groups.setdefault(kind.group, [])
        if kind.version not in versions:
            versions.append(kind.version)
    return groups


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> Obj:
    groups = [_group(name, versions) for name, versions in _group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> Obj | None:
    versions = _group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_resource_list(api_version: str) -> Obj | None:
    served = [k for k in kinds.all_served() if k.api_version == api_version]
    if not served:
        return None
    entries = []
    for kind in served:
        virtual = resources.key(kind) in resources.VIRTUAL
        entry: Obj = {"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                      "kind": kind.kind, "verbs": ["create"] if virtual else VERBS}
        if kind.short_names:
            entry["shortNames"] = list(kind.short_names)
        entries.append(entry)
        if resources.has_status(resources.key(kind)) and not virtual:
            entries.append({"name": f"{kind.plural}/status", "singularName": "", "namespaced": kind.namespaced,
                            "kind": kind.kind, "verbs": ["get", "patch", "update"]})
        if resources.key(kind) == resources.key(resources.SERVICE_ACCOUNT):
            entries.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                            "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": entries}
