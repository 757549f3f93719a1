"""Adding pods to and removing them from the mesh (`cni/pkg/nodeagent/net_linux.go`, `server.go`).

The agent keeps, per captured pod, the pod's netns open: that is the ZDS snapshot. Adding a pod:
find and hold its netns, install the in-pod rules, put its IPs in the probe ipset, send ztunnel
an Add and wait for the ack, then annotate the pod `ambient.istio.io/redirection: enabled`. If
only the Add fails the pod stays captured (a "partial add": it is in the snapshot a reconnecting
ztunnel gets) and is annotated, but the caller still sees the error. Operations are serialized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from components.cni import enrollment, inpod, podnetns
from components.cni.hostprobe import HostProbe
from components.cni.rules import Verdict
from components.cni.ztunnelserver import SnapshotEntry, ZdsFailure, ZtunnelServer
from components.common.apiclient import ApiClient, ApiError
from components.common.zds import WorkloadInfo, close_fds

log = logging.getLogger("ambient")


def labeled(message: str, **labels: str) -> str:
    """istio's `log.WithLabels(...)`: the message, a tab, then key=value pairs."""
    return message + "\t" + " ".join(f"{key}={value}" for key, value in labels.items())


class AddError(Exception):
    """Adding a pod failed; `partial` when only ztunnel's ack is missing (rules are in place)."""

    def __init__(self, message: str, partial: bool = False):
        super().__init__(message)
        self.partial = partial


@dataclass
class CapturedPod:
    uid: str
    namespace: str
    name: str
    service_account: str
    ips: list[str]
    netns_fd: int | None = None
    via_plugin: bool = False
    plugin_event_seen: bool = False

    @property
    def info(self) -> WorkloadInfo:
        return WorkloadInfo(self.name, self.namespace, self.service_account)

    def close(self) -> None:
        if self.netns_fd is not None:
            close_fds([self.netns_fd])
            self.netns_fd = None


async def _thread(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


class Dataplane:
    def __init__(self, api: ApiClient, ztunnel: ZtunnelServer, hostprobe: HostProbe):
        self.api = api
        self.ztunnel = ztunnel
        self.hostprobe = hostprobe
        self.pods: dict[str, CapturedPod] = {}
        self.lock = trio.Lock()

    def snapshot(self) -> list[SnapshotEntry]:
        return [SnapshotEntry(p.uid, p.info, p.netns_fd) for p in self.pods.values()]

    def probe_ips(self) -> dict[str, str]:
        return {ip: pod.uid for pod in self.pods.values() for ip in pod.ips}

    async def _hold_netns(self, entry: CapturedPod, netns_path: str | None) -> None:
        if netns_path is not None:
            if entry.netns_fd is not None and podnetns.same_netns(entry.netns_fd, netns_path):
                return
            fd = podnetns.open_netns(netns_path)
        else:
            if entry.netns_fd is not None:
                return
            path = await _thread(podnetns.find, entry.uid, entry.ips)
            if path is None:
                raise AddError("failed to add pod to ztunnel: can't find netns for pod, "
                               "this is ok if this is a newly created pod (pod not found)")
            fd = podnetns.open_netns(path)
        entry.close()
        entry.netns_fd = fd

    async def add_pod_to_mesh(self, pod: dict[str, Any], ips: list[str], netns_path: str | None = None, *,
                              via_plugin: bool = False, notify_ztunnel: bool = True) -> None:
        """Capture `pod`; raises AddError. `netns_path` comes from the CNI plugin, else /proc is searched."""
        async with self.lock:
            meta = pod["metadata"]
            uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
            log.info("in pod mode - adding pod %s/%s to ztunnel", namespace, name)
            created = uid not in self.pods
            entry = self.pods.setdefault(uid, CapturedPod(uid, namespace, name, enrollment.service_account(pod), ips))
            entry.ips = list(ips)
            try:
                await self._capture(entry, netns_path)
            except AddError as exc:
                log.error("%s", exc)
                if created and not enrollment.is_annotated(pod):
                    # never captured: leave it out of snapshots (a captured one stays, to keep its proxy)
                    self.pods.pop(uid, None)
                    entry.close()
                raise
            entry.via_plugin = entry.via_plugin or via_plugin
            failure = None
            if notify_ztunnel:
                assert entry.netns_fd is not None
                try:
                    await self.ztunnel.pod_added(uid, entry.info, entry.netns_fd)
                except ZdsFailure as exc:
                    failure = AddError(f"failed to add pod to ztunnel: partial add error: {exc}", partial=True)
                    log.error("%s", failure)
            await self._annotate(pod, enrollment.REDIRECTION_ENABLED)
            if failure is not None:
                raise failure

    async def _capture(self, entry: CapturedPod, netns_path: str | None) -> None:
        try:
            await self._hold_netns(entry, netns_path)
        except OSError as exc:
            raise AddError(f"failed to add pod to ztunnel: failed to open netns of pod: {exc}") from exc
        assert entry.netns_fd is not None
        try:
            await _thread(inpod.create_rules, podnetns.fd_path(entry.netns_fd))
        except Exception as exc:  # iptc, netlink and OS errors alike: the pod is not captured
            log.error("failed to update POD inpod: %s/%s %s", entry.namespace, entry.name, exc)
            raise AddError(f"failed to add pod to ztunnel: {exc}") from exc
        try:
            for ip in entry.ips:
                await _thread(self.hostprobe.add, ip, entry.uid)
        except Exception as exc:
            log.error("failed to add pod to ipset: %s/%s %s", entry.namespace, entry.name, exc)
            raise AddError(f"failed to add pod to ztunnel: {exc}") from exc

    async def remove_pod_from_mesh(self, pod: dict[str, Any]) -> None:
        """The pod runs on but left the mesh: remove its rules, tell ztunnel, drop the annotation."""
        async with self.lock:
            meta = pod["metadata"]
            uid = meta["uid"]
            labels = {"ns": meta["namespace"], "name": meta["name"]}
            entry = self.pods.pop(uid, None)
            ips = entry.ips if entry else enrollment.pod_ips(pod)
            try:
                path = (podnetns.fd_path(entry.netns_fd) if entry and entry.netns_fd is not None
                        else await _thread(podnetns.find, uid, ips))
                if path is None:
                    log.warning(labeled("failed to find pod netns", **labels))
                else:
                    try:
                        await _thread(inpod.delete_rules, path)
                    except Exception as exc:  # keep going: ztunnel must still hear of it (#53829)
                        log.error(labeled(f"failed to delete inpod rules {exc}", **labels))
                await self._forget_ips(uid, ips)
                log.info(labeled("in pod mode - removing pod from ztunnel", **labels))
                try:
                    await self.ztunnel.pod_deleted(uid)
                except ZdsFailure as exc:
                    log.error(labeled(f"failed to delete pod from ztunnel: {exc}", **labels))
                await self._annotate(pod, None)
            finally:
                if entry:
                    entry.close()

    async def del_pod_from_mesh(self, entry: CapturedPod) -> None:
        """The pod is gone (deleted or finished): its rules die with its netns; tell ztunnel."""
        async with self.lock:
            labels = {"ns": entry.namespace, "name": entry.name}
            if self.pods.get(entry.uid) is entry:
                del self.pods[entry.uid]
            entry.close()
            await self._forget_ips(entry.uid, entry.ips)
            log.info(labeled("in pod mode - deleting pod from ztunnel", **labels))
            try:
                await self.ztunnel.pod_deleted(entry.uid)
            except ZdsFailure as exc:
                log.error(labeled(f"failed to delete pod from ztunnel: {exc}", **labels))

    async def _forget_ips(self, uid: str, ips: list[str]) -> None:
        for ip in ips:
            try:
                await _thread(self.hostprobe.remove, ip, uid)
            except Exception as exc:
                log.error("failed to remove pod %s from host ipset, error was: %s", uid, exc)

    async def _annotate(self, pod: dict[str, Any], value: str | None) -> None:
        """Set (or with None remove) the redirection annotation; always sent, the cached pod may lag."""
        meta = pod["metadata"]
        try:
            await self.api.patch("v1", "Pod", meta["namespace"], meta["name"],
                                 {"metadata": {"annotations": {enrollment.REDIRECTION: value}}})
        except ApiError as exc:
            if exc.code != 404:
                log.error("failed to annotate pod enrollment: %s", exc)

    async def check_host_rules(self) -> None:
        """Re-assert the node's probe SNAT rule and ipset if something removed them (#60607)."""
        async with self.lock:
            try:
                verdict = await _thread(self.hostprobe.check_rules)
                if verdict is not Verdict.COMPATIBLE:
                    log.warning("host probe SNAT rules are missing or changed, restoring them")
                    await _thread(self.hostprobe.ensure_rules)
                await _thread(self.hostprobe.sync, self.probe_ips())
            except Exception as exc:
                log.error("failed to reconcile host probe rules: %s", exc)

    def close(self) -> None:
        for entry in self.pods.values():
            entry.close()
