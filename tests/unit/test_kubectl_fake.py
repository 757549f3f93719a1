"""An in-memory ApiClient for the kubectl tests, and tests that it keeps the apiserver's rules.

It answers as the apiserver does where kubectl relies on it: NotFound, AlreadyExists, Conflict on
a stale resourceVersion, no new resourceVersion for an update that changes nothing, graceful pod
deletion (deletionTimestamp first), label and field selectors, and watches from a
resourceVersion. The other kubectl test modules import it.
"""

from __future__ import annotations

import copy
import io
import itertools
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl import KubectlContext, run
from harness.kubectl.merge import merge_patch

def stamp(seconds_ago: float = 0.0) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _resource(kind: kinds.Kind) -> str:
    return kind.plural + (f".{kind.group}" if kind.group else "")


def _error(code: int, reason: str, message: str) -> ApiError:
    return ApiError({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
                     "message": message})


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def labels_match(selector: str | None, labels: dict[str, str]) -> bool:
    for requirement in _split_selector(selector or ""):
        set_based = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", requirement)
        if set_based:
            key, op, values = set_based.group(1), set_based.group(2), {v.strip() for v in set_based.group(3).split(",")}
            if (labels.get(key) in values) != (op == "in") or (op == "in" and key not in labels):
                return False
        elif "!=" in requirement:
            key, value = requirement.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in requirement:
            key, value = re.split(r"==?", requirement, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif requirement.startswith("!"):
            if requirement[1:] in labels:
                return False
        elif requirement not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def fields_match(selector: str | None, obj: dict[str, Any]) -> bool:
    for requirement in _split_selector(selector or ""):
        if "!=" in requirement:
            path, value = requirement.split("!=", 1)
            if _field(obj, path) == value:
                return False
        else:
            path, value = re.split(r"==?", requirement, maxsplit=1)
            if _field(obj, path) != value:
                return False
    return True


class FakeApi(ApiClient):
    """The apiserver's storage and watch semantics, in memory."""

    def __init__(self) -> None:
        super().__init__("unix:/nonexistent/fake/apiserver.sock")
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.version = 100
        self.log: list[tuple[int, str, dict[str, Any]]] = []
        self.changed = trio.Event()
        self.uids = itertools.count(1)
        self.calls: list[tuple[str, str, str]] = []  # (method, kind, name) of every request

    # -- storage --------------------------------------------------------------------------------

    def _key(self, kind: kinds.Kind, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return kind.group, kind.kind, (namespace or "") if kind.namespaced else "", name

    def _record(self, event: str, obj: dict[str, Any]) -> None:
        self.log.append((int(obj["metadata"]["resourceVersion"]), event, copy.deepcopy(obj)))
        self.changed.set()
        self.changed = trio.Event()

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def put(self, obj: dict[str, Any], *, age: float = 60.0) -> dict[str, Any]:
        """Store an object as the cluster's controllers would have made it (no admission checks)."""
        obj = copy.deepcopy(obj)
        kind = kinds.for_object(obj["apiVersion"], obj["kind"])
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self.uids)}")
        meta.setdefault("creationTimestamp", stamp(age))
        key = self._key(kind, meta.get("namespace"), meta["name"])
        event = "MODIFIED" if key in self.objects else "ADDED"
        self._bump(obj)
        self.objects[key] = obj
        self._record(event, obj)
        return copy.deepcopy(obj)

    def remove(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """What the kubelet does once a deleted pod's containers are gone."""
        key = self._key(kinds.for_object(api_version, kind), namespace, name)
        obj = self.objects.pop(key)
        self._bump(obj)
        self._record("DELETED", obj)

    def stored(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get(self._key(kinds.for_object(api_version, kind), namespace, name)))

    def _existing(self, kind: kinds.Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get(self._key(kind, namespace, name))
        if obj is None:
            raise _error(404, "NotFound", f'{_resource(kind)} "{name}" not found')
        return obj

    # -- the ApiClient interface ----------------------------------------------------------------

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        self.calls.append(("GET", kind, name))
        return copy.deepcopy(self._existing(kinds.for_object(api_version, kind), namespace, name))

    async def list(self, api_version: str, kind: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        found = kinds.for_object(api_version, kind)

        def in_scope(key: tuple[str, str, str, str]) -> bool:
            return not namespace or not found.namespaced or key[2] == namespace

        items = [copy.deepcopy(obj) for key, obj in sorted(self.objects.items())
                 if key[:2] == (found.group, found.kind) and in_scope(key)
                 and labels_match(label_selector, obj["metadata"].get("labels") or {})
                 and fields_match(field_selector, obj)]
        return {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {"resourceVersion": str(self.version)},
                "items": items}

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        kind = kinds.for_object(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        self.calls.append(("POST", kind.kind, meta.get("name", "")))
        if kind.namespaced:
            if not meta.get("namespace"):
                raise _error(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                                "sent on the request")
            if self._key(kinds.lookup("namespaces"), None, meta["namespace"]) not in self.objects:
                raise _error(404, "NotFound", f'namespaces "{meta["namespace"]}" not found')
        if self._key(kind, meta.get("namespace"), meta["name"]) in self.objects:
            raise _error(409, "AlreadyExists", f'{_resource(kind)} "{meta["name"]}" already exists')
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("resourceVersion", None)
        obj["metadata"]["generation"] = 1
        if kind.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        if kind.kind == "Service":
            obj.setdefault("spec", {}).setdefault("clusterIP", "10.96.0.42")
            for port in obj["spec"].get("ports") or []:
                port.setdefault("protocol", "TCP")
        return self.put(obj, age=0)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        kind = kinds.for_object(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        self.calls.append(("PUT", kind.kind, meta["name"]))
        current = self._existing(kind, meta.get("namespace"), meta["name"])
        if meta.get("resourceVersion") and meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict", f'Operation cannot be fulfilled on {_resource(kind)} "{meta["name"]}": the '
                                          "object has been modified; please apply your changes to the latest version "
                                          "and try again")
        return self._update(current, obj)

    def _update(self, current: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        updated = copy.deepcopy(obj)
        for field in ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp"):
            if field in current["metadata"]:
                updated["metadata"][field] = current["metadata"][field]
        if "status" in current:
            updated["status"] = current["status"]
        if updated == current:
            return copy.deepcopy(current)
        if updated.get("spec") != current.get("spec"):
            updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        kind = kinds.for_object(updated["apiVersion"], updated["kind"])
        self.objects[self._key(kind, updated["metadata"].get("namespace"), updated["metadata"]["name"])] = updated
        self._bump(updated)
        self._record("MODIFIED", updated)
        return copy.deepcopy(updated)

    async def patch(self, api_version: str, kind: str, namespace: str | None, name: str,
                    patch: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        self.calls.append(("PATCH", kind, name))
        current = self._existing(kinds.for_object(api_version, kind), namespace, name)
        return self._update(current, merge_patch(current, patch))

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        found = kinds.for_object(api_version, kind)
        self.calls.append(("DELETE", kind, name))
        current = self._existing(found, namespace, name)
        graceful = found.kind == "Pod" and (current.get("spec") or {}).get("nodeName") and grace_period_seconds != 0
        if graceful:
            if not current["metadata"].get("deletionTimestamp"):
                current["metadata"]["deletionTimestamp"] = stamp()
                current["metadata"]["deletionGracePeriodSeconds"] = grace_period_seconds or 30
                self._bump(current)
                self._record("MODIFIED", current)
            return copy.deepcopy(current)
        self.remove(api_version, kind, namespace, name)
        return copy.deepcopy(current)

    @asynccontextmanager
    async def watch(self, api_version: str, kind: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        found = kinds.for_object(api_version, kind)
        since = int(resource_version or self.version)

        def matches(obj: dict[str, Any]) -> bool:
            return (kinds.for_object(obj["apiVersion"], obj["kind"]) == found
                    and (not namespace or obj["metadata"].get("namespace") == namespace)
                    and labels_match(label_selector, obj["metadata"].get("labels") or {})
                    and fields_match(field_selector, obj))

        async def events() -> AsyncIterator[dict[str, Any]]:
            position = since
            while True:
                fresh = [(rv, t, o) for rv, t, o in self.log if rv > position]
                for rv, event_type, obj in fresh:
                    position = rv
                    if matches(obj):
                        yield {"type": event_type, "object": copy.deepcopy(obj)}
                if not fresh:
                    await self.changed.wait()

        yield events()


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cluster:
    """A FakeApi with the hooks a KubectlContext needs (log files under `tmp`, recorded execs)."""

    def __init__(self, tmp: Path):
        self.api = FakeApi()
        self.tmp = tmp
        self.execs: list[tuple[str, str, list[str], bool, bool]] = []
        self.exec_code = 0
        self.api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"},
                      "status": {"phase": "Active"}}, age=3 * 86400)

    def log_path(self, pod: dict[str, Any], container: str) -> Path:
        meta = pod["metadata"]
        return self.tmp / "logs" / f"{meta['namespace']}_{meta['name']}_{meta.get('uid')}" / f"{container}.log"

    def write_log(self, pod: dict[str, Any], container: str, text: str) -> None:
        path = self.log_path(pod, container)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(text)

    async def exec_in_pod(self, pod: dict[str, Any], container: str, argv: list[str], stdin: bool, tty: bool) -> int:
        self.execs.append((pod["metadata"]["name"], container, argv, stdin, tty))
        return self.exec_code

    async def kubectl(self, *argv: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        ctx = KubectlContext(api=self.api, stdin=io.BytesIO(stdin.encode()), stdout=out, stderr=err,
                             exec_in_pod=self.exec_in_pod, container_log_path=self.log_path, cwd=self.tmp)
        code = await run(list(argv), ctx)
        return Result(code, out.getvalue(), err.getvalue())

    # -- objects as the controllers and the kubelet would report them ---------------------------

    def namespace(self, name: str, **labels: str) -> dict[str, Any]:
        return self.api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels},
                             "status": {"phase": "Active"}})

    def pod(self, name: str, namespace: str = "default", *, containers: tuple[str, ...] = ("app",),
            labels: dict[str, str] | None = None, node: str = "worker", ip: str = "10.244.1.5",
            phase: str = "Running", ready: bool = True, age: float = 60.0, **extra: Any) -> dict[str, Any]:
        state: dict[str, Any] = ({"running": {"startedAt": stamp(age)}} if phase == "Running"
                                 else {"waiting": {"reason": "ContainerCreating"}})
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, **extra.pop("meta", {})},
               "spec": {"nodeName": node, "containers": [{"name": c, "image": f"{c}:1"} for c in containers],
                        **extra.pop("spec", {})},
               "status": {"phase": phase, "hostIP": "172.18.0.3",
                          "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                          "containerStatuses": [{"name": c, "ready": ready, "restartCount": 0, "state": state}
                                                for c in containers]}}
        if phase == "Running":
            pod["status"]["podIP"] = ip
        return self.api.put(pod, age=age)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


async def test_create_twice_is_already_exists(cluster: Cluster) -> None:
    obj = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep", "namespace": "default"}}
    await cluster.api.create(obj)
    with pytest.raises(ApiError) as caught:
        await cluster.api.create(obj)
    assert caught.value.reason == "AlreadyExists"
    assert str(caught.value) == 'serviceaccounts "sleep" already exists'


async def test_missing_objects_and_namespaces_are_not_found(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as caught:
        await cluster.api.get("apps/v1", "Deployment", "default", "nope")
    assert (caught.value.code, str(caught.value)) == (404, 'deployments.apps "nope" not found')
    with pytest.raises(ApiError) as caught:
        await cluster.api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "foo"}})
    assert str(caught.value) == 'namespaces "foo" not found'


async def test_stale_resource_version_conflicts_and_noop_keeps_version(cluster: Cluster) -> None:
    created = await cluster.api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}})
    same = await cluster.api.replace(created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = copy.deepcopy(created)
    changed["data"]["a"] = "2"
    await cluster.api.replace(changed)
    with pytest.raises(ApiError) as caught:
        await cluster.api.replace(changed)
    assert caught.value.reason == "Conflict"


async def test_pod_deletion_is_graceful_and_watchable(cluster: Cluster) -> None:
    cluster.pod("p")
    async with cluster.api.watch("v1", "Pod", "default") as events:
        deleted = await cluster.api.delete("v1", "Pod", "default", "p")
        assert deleted["metadata"]["deletionTimestamp"]
        assert (await events.__anext__())["type"] == "MODIFIED"
        cluster.api.remove("v1", "Pod", "default", "p")
        assert (await events.__anext__())["type"] == "DELETED"


def test_selectors() -> None:
    assert labels_match("app=a,tier in (x, y),!gone", {"app": "a", "tier": "y"})
    assert not labels_match("app!=a", {"app": "a"})
    assert fields_match("spec.nodeName=w1", {"spec": {"nodeName": "w1"}})
    assert not fields_match("metadata.name=x", {"metadata": {"name": "y"}})
