"""Watches this node's pods and all namespaces and keeps the dataplane in line with them.

Level-triggered: every event queues a pod UID, and a single worker compares what the pod should
be (`enrollment.evaluate`) with what the dataplane holds. At startup, after both lists, pods that
should be captured are re-captured before anything is sent to ztunnel (rules are reconciled, not
re-created: a restarted agent finds "compatible residues"), so the first snapshot is complete.
Pods whose capture fails for a reason other than ztunnel are retried with back-off.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from components.cni import enrollment
from components.cni.dataplane import AddError, Dataplane
from components.cni.enrollment import Capture
from components.common.apiclient import ApiClient

log = logging.getLogger("ambient")

RETRY_MIN = 0.5
RETRY_MAX = 5.0
RETRY_TICK = 0.2
POD_WAIT = 0.02


def _uid(obj: dict[str, Any]) -> str:
    return obj["metadata"]["uid"]


def _mode(namespace: dict[str, Any] | None) -> str | None:
    return ((namespace or {}).get("metadata", {}).get("labels") or {}).get(enrollment.DATAPLANE_MODE)


class Controller:
    def __init__(self, api: ApiClient, node: str, dataplane: Dataplane, system_namespace: str = "istio-system"):
        self.api = api
        self.node = node
        self.dataplane = dataplane
        self.system_namespace = system_namespace
        self.pods: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.synced = trio.Event()
        self._listed = {"pods": trio.Event(), "namespaces": trio.Event()}
        self._send, self._receive = trio.open_memory_channel[str](math.inf)
        self._queued: set[str] = set()
        self._retry: dict[str, tuple[float, float]] = {}  # uid -> (due, delay)
        self._warned_no_ip: set[str] = set()

    def enqueue(self, uid: str) -> None:
        if uid not in self._queued:
            self._queued.add(uid)
            self._send.send_nowait(uid)

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        for pod in self.pods.values():
            meta = pod["metadata"]
            if meta["namespace"] == namespace and meta["name"] == name:
                return pod
        return None

    async def wait_for_pod(self, namespace: str, name: str, uid: str = "", timeout: float = 2.0) -> dict[str, Any] | None:
        """The cached pod (with `uid`, if given), waiting a little for the watch to catch up."""
        with trio.move_on_after(timeout):
            await self.synced.wait()
            while True:
                pod = self.find_pod(namespace, name)
                if pod is not None and (not uid or _uid(pod) == uid):
                    return pod
                await trio.sleep(POD_WAIT)
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reflect_pods)
            nursery.start_soon(self._reflect_namespaces)
            for listed in self._listed.values():
                await listed.wait()
            await self._startup()
            self.synced.set()
            task_status.started()
            nursery.start_soon(self._retry_loop)
            async for uid in self._receive:
                self._queued.discard(uid)
                await self.reconcile(uid)

    # -- caches ---------------------------------------------------------------------------

    async def _reflect_pods(self) -> None:
        async for kind, obj in self.api.reflect("v1", "Pod", field_selector=f"spec.nodeName={self.node}"):
            if kind == "SYNC":
                listed = {_uid(pod): pod for pod in obj.get("items") or []}
                changed = set(self.pods) | set(listed)
                self.pods = listed
                if self._listed["pods"].is_set():
                    for uid in changed:
                        self.enqueue(uid)
                self._listed["pods"].set()
                continue
            if kind == "DELETED":
                self.pods.pop(_uid(obj), None)
            else:
                self.pods[_uid(obj)] = obj
            self.enqueue(_uid(obj))

    async def _reflect_namespaces(self) -> None:
        async for kind, obj in self.api.reflect("v1", "Namespace"):
            if kind == "SYNC":
                listed = {ns["metadata"]["name"]: ns for ns in obj.get("items") or []}
                previous, self.namespaces = self.namespaces, listed
                for name, namespace in listed.items():
                    if name not in previous or _mode(previous[name]) != _mode(namespace):
                        self._namespace_changed(namespace)
                self._listed["namespaces"].set()
            elif kind == "DELETED":
                self.namespaces.pop(obj["metadata"]["name"], None)
            else:
                previous = self.namespaces.get(obj["metadata"]["name"])
                self.namespaces[obj["metadata"]["name"]] = obj
                if previous is None or _mode(previous) != _mode(obj):
                    self._namespace_changed(obj)

    def _namespace_changed(self, namespace: dict[str, Any]) -> None:
        name = namespace["metadata"]["name"]
        if enrollment.namespace_ambient(namespace):
            log.info("Namespace %s is enabled in ambient mesh", name)
        else:
            log.info("Namespace %s is disabled from ambient mesh", name)
        for uid, pod in self.pods.items():
            if pod["metadata"]["namespace"] == name:
                self.enqueue(uid)

    # -- decisions ------------------------------------------------------------------------

    def _capture(self, pod: dict[str, Any]) -> Capture:
        return enrollment.evaluate(pod, self.namespaces.get(pod["metadata"]["namespace"]), self.system_namespace)

    async def _startup(self) -> None:
        """Re-capture what should be captured before ztunnel gets its first snapshot."""
        for uid, pod in list(self.pods.items()):
            if self._capture(pod) is Capture.ENROLL:
                try:
                    await self.dataplane.add_pod_to_mesh(pod, enrollment.pod_ips(pod), notify_ztunnel=False)
                except AddError:
                    self._schedule_retry(uid)
            else:
                self.enqueue(uid)
        await self.dataplane.check_host_rules()

    def _schedule_retry(self, uid: str) -> None:
        _, delay = self._retry.get(uid, (0.0, RETRY_MIN / 2))
        delay = min(delay * 2, RETRY_MAX)
        self._retry[uid] = (trio.current_time() + delay, delay)

    def _forget(self, uid: str) -> None:
        self._retry.pop(uid, None)
        self._warned_no_ip.discard(uid)

    async def _retry_loop(self) -> None:
        while True:
            await trio.sleep(RETRY_TICK)
            now = trio.current_time()
            for uid, (due, _) in list(self._retry.items()):
                if due <= now:
                    self.enqueue(uid)

    async def reconcile(self, uid: str) -> None:
        pod = self.pods.get(uid)
        entry = self.dataplane.pods.get(uid)
        if pod is None:
            self._forget(uid)
            if entry is not None:
                await self.dataplane.del_pod_from_mesh(entry)
            return
        capture = self._capture(pod)
        name = pod["metadata"]["name"]
        if capture in (Capture.ENROLL, Capture.NO_IP) and entry is not None and entry.netns_fd is not None:
            self._forget(uid)
            if entry.via_plugin and enrollment.is_annotated(pod) and not entry.plugin_event_seen:
                entry.plugin_event_seen = True
                log.info("Pod %s update event skipped, added/labeled by CNI plugin", name)
            return
        if capture is Capture.ENROLL:
            self._warned_no_ip.discard(uid)
            try:
                await self.dataplane.add_pod_to_mesh(pod, enrollment.pod_ips(pod))
            except AddError as exc:
                if not exc.partial:
                    self._schedule_retry(uid)
                    return
            self._retry.pop(uid, None)
        elif capture is Capture.NO_IP:
            if uid not in self._warned_no_ip:
                self._warned_no_ip.add(uid)
                log.warning("pod %s does not appear to have any assigned IPs, not capturing", name)
        else:
            self._forget(uid)
            if capture is Capture.TERMINAL and entry is not None:
                await self.dataplane.del_pod_from_mesh(entry)
            elif capture is Capture.OUT and (entry is not None or enrollment.is_annotated(pod)):
                await self.dataplane.remove_pod_from_mesh(pod)
