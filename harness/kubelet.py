"""The kubelet of every node: watches pods bound to the run's nodes and runs them.

One `PodWorker` per pod (by uid). A pod marked for deletion is torn down and then deleted for
good; a pod that disappears from the API (force deletion, namespace removal) is torn down too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from components.common.apiclient import ApiClient
from harness import network, procs
from harness.pod_worker import PodWorker
from harness.sandbox import RunDir

log = logging.getLogger("kubelet")

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


@dataclass
class NodeRuntime:
    """A node as the kubelet sees it: its network and the pause process holding its netns."""

    net: network.NodeNet
    pause: procs.Pause


class Kubelet:
    def __init__(self, run: RunDir, api: ApiClient, nodes: dict[str, NodeRuntime], apiserver_endpoint: str):
        self.run = run
        self.api = api
        self.nodes = nodes
        self.apiserver_endpoint = apiserver_endpoint
        self.workers: dict[str, PodWorker] = {}
        self._nursery: trio.Nursery | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; on cancellation every pod's processes are stopped."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            started = False
            async for event, obj in self.api.reflect("v1", "Pod"):
                if event == "SYNC":
                    self._sync(obj["items"])
                    if not started:
                        task_status.started()
                        started = True
                elif event == "DELETED":
                    self._forget(obj["metadata"]["uid"])
                else:
                    self._observe(obj)

    def _sync(self, pods: list[dict[str, Any]]) -> None:
        present = {p["metadata"]["uid"] for p in pods}
        for uid in list(self.workers):
            if uid not in present:
                self._forget(uid)
        for pod in pods:
            self._observe(pod)

    def _observe(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        node = self.nodes.get(spec.get("nodeName", ""))
        if node is None or MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            return
        uid = meta["uid"]
        worker = self.workers.get(uid)
        if meta.get("deletionTimestamp"):
            if worker is None:
                worker = self._start(node, pod)
            worker.pod = pod
            worker.terminate()
            return
        if worker is None and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            self._start(node, pod)
        elif worker is not None:
            worker.pod = pod

    def _start(self, node: NodeRuntime, pod: dict[str, Any]) -> PodWorker:
        assert self._nursery is not None
        worker = PodWorker(self, node, pod)
        self.workers[worker.uid] = worker

        async def run() -> None:
            try:
                await worker.run()
            finally:
                self.workers.pop(worker.uid, None)

        self._nursery.start_soon(run)
        return worker

    def _forget(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.cancel_scope.cancel()
