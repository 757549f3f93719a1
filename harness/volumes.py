"""Pod volumes, as the kubelet provides them.

Each volume is a directory under the pod's run directory (`pods/<ns>_<name>/volumes/<name>`),
filled before the containers start: emptyDir, configMap, secret, downwardAPI, projected (with
service-account tokens bound to the pod, refreshed before they expire) and hostPath, which maps
to the node's own directory in the run (`nodes/<node>/<path>`), so that pods of one node share
it as they would share the node's filesystem. The default service-account token is mounted at
/var/run/secrets/kubernetes.io/serviceaccount as Kubernetes does.

Mounting happens in the pod's private mount namespace. A mount point that does not exist on the
host is created inside an overlay of its nearest existing ancestor whose upper layer is in the run
directory: the host's filesystem is never written.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import trio

from components.common.apiclient import ApiError

if TYPE_CHECKING:
    from harness.pod_worker import PodWorker

log = logging.getLogger("kubelet")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TOKEN_SECONDS = 3607
MIN_TOKEN_SECONDS = 600
FIRST_FD = 10


class VolumeError(Exception):
    """A volume cannot be set up (a missing ConfigMap, an unsupported type); names the volume."""


@dataclass
class Mount:
    source: Path
    target: str
    read_only: bool


@dataclass
class TokenFile:
    """A projected service-account token to keep fresh."""

    path: Path
    audiences: list[str]
    seconds: int


class PodVolumes:
    def __init__(self, worker: "PodWorker"):
        self.worker = worker
        self.pod_dir = worker.kubelet.run.pod_dir(worker.namespace, worker.name)
        self.tokens: list[TokenFile] = []

    @property
    def api(self) -> Any:
        return self.worker.kubelet.api

    async def prepare(self) -> list[Mount]:
        """Fill every volume and return the mounts the containers ask for."""
        spec = self.worker.pod["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        sources: dict[str, Path] = {}
        for name, volume in volumes.items():
            sources[name] = await self._fill(name, volume)
        mounts: list[Mount] = []
        for container in spec.get("containers", []):
            for mount in container.get("volumeMounts") or []:
                name = mount["name"]
                if name not in sources:
                    raise VolumeError(f'container "{container["name"]}": volumeMount "{name}" names no volume of the pod')
                if "'" in mount["mountPath"] or "'" in mount.get("subPath", "") or not mount["mountPath"].startswith("/"):
                    raise VolumeError(f'container "{container["name"]}": mountPath {mount["mountPath"]!r} is not usable')
                source = sources[name] / mount["subPath"] if mount.get("subPath") else sources[name]
                mounts.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
        if spec.get("automountServiceAccountToken", True) and not any(
                m.target.rstrip("/") == SERVICE_ACCOUNT_DIR for m in mounts):
            mounts.append(Mount(await self._service_account_volume(), SERVICE_ACCOUNT_DIR, True))
        return _dedupe(mounts)

    async def _fill(self, name: str, volume: dict[str, Any]) -> Path:
        target = self.pod_dir / "volumes" / name
        if "hostPath" in volume:
            path = volume["hostPath"]["path"]
            host = self.worker.kubelet.run.node_root(self.worker.node.net.name) / path.lstrip("/")
            kind = volume["hostPath"].get("type", "")
            if kind in ("File", "FileOrCreate", "Socket", "CharDevice", "BlockDevice"):
                host.parent.mkdir(parents=True, exist_ok=True)
                if kind == "FileOrCreate":
                    host.touch(exist_ok=True)
            else:
                host.mkdir(parents=True, exist_ok=True)
            return host
        target.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return target
        if "configMap" in volume:
            await self._write_object_keys(target, "ConfigMap", volume["configMap"], name)
        elif "secret" in volume:
            await self._write_object_keys(target, "Secret", {**volume["secret"], "name": volume["secret"].get("secretName")}, name)
        elif "downwardAPI" in volume:
            self._write_downward(target, volume["downwardAPI"].get("items") or [])
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                await self._project(target, source, name)
        else:
            kind = next((k for k in volume if k != "name"), "?")
            raise VolumeError(f'volume "{name}": volume type {kind} is not supported by the emulator')
        return target

    async def _write_object_keys(self, target: Path, kind: str, ref: dict[str, Any], volume: str) -> None:
        try:
            obj = await self.api.get("v1", kind, self.worker.namespace, ref.get("name", ""))
        except ApiError as exc:
            if exc.code == 404 and ref.get("optional"):
                return
            raise VolumeError(f'volume "{volume}": {kind.lower()} "{ref.get("name")}" not found') from exc
        data = dict(obj.get("data") or {})
        decode = kind == "Secret"
        items = ref.get("items")
        pairs = [(i["key"], i.get("path", i["key"])) for i in items] if items else [(k, k) for k in data]
        for key, path in pairs:
            if key not in data:
                continue
            value = base64.b64decode(data[key]) if decode else str(data[key]).encode()
            _write(target / path, value)

    def _write_downward(self, target: Path, items: list[dict[str, Any]]) -> None:
        for item in items:
            if "fieldRef" in item:
                _write(target / item["path"], self.worker.field(item["fieldRef"]["fieldPath"]).encode())

    async def _project(self, target: Path, source: dict[str, Any], volume: str) -> None:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            audience = sat.get("audience")
            token = TokenFile(target / sat.get("path", "token"), [audience] if audience else [],
                              max(int(sat.get("expirationSeconds", DEFAULT_TOKEN_SECONDS)), MIN_TOKEN_SECONDS))
            await self._refresh(token)
            self.tokens.append(token)
        elif "configMap" in source:
            await self._write_object_keys(target, "ConfigMap", source["configMap"], volume)
        elif "secret" in source:
            await self._write_object_keys(target, "Secret", source["secret"], volume)
        elif "downwardAPI" in source:
            self._write_downward(target, source["downwardAPI"].get("items") or [])

    async def _service_account_volume(self) -> Path:
        target = self.pod_dir / "volumes" / "kube-api-access"
        target.mkdir(parents=True, exist_ok=True)
        token = TokenFile(target / "token", [], DEFAULT_TOKEN_SECONDS)
        await self._refresh(token)
        self.tokens.append(token)
        _write(target / "namespace", self.worker.namespace.encode())
        try:
            root = await self.api.get("v1", "ConfigMap", self.worker.namespace, "kube-root-ca.crt")
            _write(target / "ca.crt", (root.get("data") or {}).get("ca.crt", "").encode())
        except ApiError:
            _write(target / "ca.crt", b"")
        return target

    async def _refresh(self, token: TokenFile) -> None:
        meta, spec = self.worker.pod["metadata"], self.worker.pod["spec"]
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": token.audiences, "expirationSeconds": token.seconds,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]}}}
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{spec.get('serviceAccountName', 'default')}/token"
        try:
            answer = await self.api.call("POST", path, request)
        except ApiError as exc:
            raise VolumeError(f"service-account token for {self.worker.ref}: {exc}") from exc
        _write(token.path, answer["status"]["token"].encode())

    async def keep_tokens_fresh(self) -> None:
        """Renew projected tokens at 80% of their lifetime, as the kubelet does."""
        if not self.tokens:
            return
        while True:
            await trio.sleep(min(t.seconds for t in self.tokens) * 0.8)
            for token in self.tokens:
                try:
                    await self._refresh(token)
                except VolumeError as exc:
                    log.warning("%s", exc)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _dedupe(mounts: list[Mount]) -> list[Mount]:
    seen: dict[str, Mount] = {}
    for mount in mounts:
        seen.setdefault(str(PurePosixPath(mount.target)), mount)
    return sorted(seen.values(), key=lambda m: len(PurePosixPath(m.target).parts))


def _existing_ancestor(target: str) -> str:
    path = PurePosixPath(os.path.realpath(target) if os.path.lexists(target) else target)
    while not os.path.exists(path):
        path = path.parent
    return str(path)


def program_paths() -> list[Path]:
    """What the emulated containers run from (the project and its virtualenv): part of every
    container's "image", so a volume mounted over a parent (ztunnel's emptyDir on /tmp, when the
    project lives under /tmp) must not hide it."""
    candidates = [Path(__file__).resolve().parent.parent, Path(sys.prefix).resolve(),
                  Path(os.path.realpath(sys.executable)).parent]
    kept: list[Path] = []
    for path in sorted(set(candidates), key=lambda p: len(p.parts)):
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


def _hides(target: str, path: Path) -> bool:
    target_path = Path(target)
    return target_path == path or target_path in path.parents


OLD_ROOT = ".pod-old-root"


def mount_table(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[int, int, str]]:
    """(mount id, parent id, mount point) of every mount of this mount namespace, in order."""
    table = []
    for line in Path(mountinfo).read_text().splitlines():
        fields = line.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        table.append((int(fields[0]), int(fields[1]), point))
    return table


def _root_children(table: list[tuple[int, int, str]]) -> list[str]:
    """Mount points mounted directly on the root filesystem (their submounts come with an rbind)."""
    roots = {mount_id for mount_id, _, point in table if point == "/"}
    return [point for mount_id, parent, point in table if parent in roots and point != "/"]


def _on_root_filesystem(path: str, table: list[tuple[int, int, str]]) -> bool:
    return not any(point != "/" and (path == point or path.startswith(point.rstrip("/") + "/"))
                   for _, _, point in table)


def _root_overlay(scratch: Path, table: list[tuple[int, int, str]]) -> list[str]:
    """Lines that make the pod's root an overlay of the host's (upper layer under `scratch`), with
    every other mount bound back in place, and pivot into it: a mount point can then be created
    at the top level without writing the host. The old root stays at /OLD_ROOT until the end of
    the script, so that later overlays can keep their layers on the run directory's filesystem."""
    layer = scratch / "root"
    for part in ("upper", "work", "merged"):
        (layer / part).mkdir(parents=True, exist_ok=True)
    merged = layer / "merged"
    lines = [f"mount -t overlay overlay -o lowerdir=/,upperdir={layer}/upper,workdir={layer}/work '{merged}'"]
    lines += [f"mount --rbind '{point}' '{merged}{point}'" for point in _root_children(table)]
    lines += [f"mkdir -p '{merged}/{OLD_ROOT}'", f"cd '{merged}'", f"pivot_root . '{OLD_ROOT}'", "cd /"]
    return lines


def mount_script(mounts: list[Mount], scratch: Path, table: list[tuple[int, int, str]] | None = None) -> list[str]:
    """Bash lines for the pause process that mount `mounts` inside the pod's mount namespace.

    Mount points missing on the host are made inside an overlay of their nearest existing
    ancestor, upper layer under `scratch` (in the run directory); when that ancestor is `/`
    itself, the pod's whole root becomes an overlay (see `_root_overlay`). Every source is opened
    before any overlay is mounted and bound from /proc/self/fd: after an overlay of /run, a path
    into the run directory would otherwise name the overlay's copy, not the shared original.
    `table` is the mount table the pod starts from (this process's, by default).
    """
    lines = [f"exec {FIRST_FD + i}<'{mount.source}'" for i, mount in enumerate(mounts)]
    targets = [os.path.realpath(m.target) if os.path.islink(m.target) else m.target for m in mounts]
    missing = {t: os.path.realpath(_existing_ancestor(t)) for t in targets if not os.path.exists(t)}
    root_overlaid = "/" in missing.values()
    layers_prefix = ""
    if root_overlaid:
        table = mount_table() if table is None else table
        lines += _root_overlay(scratch, table)
        layers_prefix = f"/{OLD_ROOT}"
    overlaid: list[str] = []
    for i, (mount, target) in enumerate(zip(mounts, targets)):
        ancestor = missing.get(target)
        writable_root = root_overlaid and table is not None and _on_root_filesystem(str(ancestor), table)
        if ancestor is not None and not writable_root and not any(
                ancestor == o or ancestor.startswith(o.rstrip("/") + "/") for o in overlaid):
            layer = scratch / ancestor.strip("/").replace("/", "_")
            (layer / "upper").mkdir(parents=True, exist_ok=True)
            (layer / "work").mkdir(parents=True, exist_ok=True)
            lines.append(f"mount -t overlay overlay -o lowerdir={ancestor},upperdir={layers_prefix}{layer}/upper,"
                         f"workdir={layers_prefix}{layer}/work {ancestor}")
            overlaid.append(ancestor)
        if mount.source.is_dir():
            lines.append(f"mkdir -p '{target}'")
        else:
            lines.append(f"mkdir -p \"$(dirname '{target}')\" && touch '{target}'")
        lines.append(f"mount --no-canonicalize --bind /proc/self/fd/{FIRST_FD + i} '{target}'")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro '{target}'")
    keep = [path for path in program_paths() if any(_hides(m.target, path) for m in mounts)]
    base = FIRST_FD + len(mounts)
    lines[len(mounts):len(mounts)] = [f"exec {base + i}<'{path}'" for i, path in enumerate(keep)]
    for i, path in enumerate(keep):
        lines += [f"mkdir -p '{path}'", f"mount --no-canonicalize --bind /proc/self/fd/{base + i} '{path}'"]
    lines += [f"exec {FIRST_FD + i}<&-" for i in range(len(mounts) + len(keep))]
    if root_overlaid:
        lines += [f"umount -l '/{OLD_ROOT}'", f"rmdir '/{OLD_ROOT}'"]
    return lines
