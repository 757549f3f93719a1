"""The scheduler: binds pending pods to nodes.

Filters as kube-scheduler does (unschedulable nodes, taints, node selector and affinity,
inter-pod affinity and anti-affinity) and scores by spreading: the fitting node with the fewest
pods wins, ties by name. A pod that fits nowhere gets `PodScheduled=False` with kube-scheduler's
message and a FailedScheduling event, and is retried whenever pods or nodes change.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Hashable, Iterable

from components.apiserver import meta, resources
from components.apiserver.controllers import events
from components.apiserver.controllers.base import Controller
from components.apiserver.controllers.placement import Cluster
from components.apiserver.store import Event

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"
KEY = "pending-pods"


def unschedulable_message(total: int, failures: list[tuple[str, bool]]) -> str:
    """kube-scheduler's FitError message, preemption summary included."""
    if total == 0:
        return "no nodes available to schedule pods"
    reasons = collections.Counter(reason for reason, _ in failures)
    preemption = collections.Counter("No preemption victims found for incoming pod" if helpful
                                     else "Preemption is not helpful for scheduling" for _, helpful in failures)
    listed = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    summary = ", ".join(sorted(f"{n} {r}" for r, n in preemption.items()))
    return f"0/{total} nodes are available: {listed}. preemption: 0/{total} nodes are available: {summary}."


class Scheduler(Controller):
    name = "scheduler"

    def resync(self) -> Iterable[Hashable]:
        return [KEY]

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.group_kind in (resources.key(resources.POD), resources.key(resources.NODE)):
            return [KEY]
        return []

    def reconcile(self, key: Hashable) -> None:
        pods = self.store.list(resources.key(resources.POD))
        cluster = Cluster(self.store.list(resources.key(resources.NODE)), pods,
                          self.store.list(resources.key(resources.NAMESPACE)))

        def waiting(pod: Obj) -> bool:
            spec = pod.get("spec") or {}
            return not meta.is_terminating(pod) and not meta.is_pod_terminal(pod) and \
                spec.get("nodeName") not in cluster.nodes and \
                (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME

        pending = sorted((p for p in pods if waiting(p)), key=lambda p: (
            p["metadata"].get("creationTimestamp", ""), int(p["metadata"]["resourceVersion"])))
        for pod in pending:
            node_name = pod["spec"].get("nodeName")
            if node_name:
                self._unschedulable(pod, f'node "{node_name}" not found')
            else:
                self._schedule(pod, cluster)

    def _schedule(self, pod: Obj, cluster: Cluster) -> None:
        failures = []
        fitting = []
        for name in sorted(cluster.nodes):
            misfit = cluster.misfit(pod, cluster.nodes[name])
            if misfit is None:
                fitting.append(name)
            else:
                failures.append(misfit)
        if not fitting:
            self._unschedulable(pod, unschedulable_message(len(cluster.nodes), failures))
            return
        chosen = min(fitting, key=lambda n: (cluster.pod_count(n), n))
        bound = self.registry.bind(pod, chosen)
        cluster.add(bound)
        ref = f"{meta.namespace_of(pod)}/{meta.name_of(pod)}"
        log.info("Successfully assigned %s to %s", ref, chosen)
        events.record(self.registry, bound, "Normal", "Scheduled", f"Successfully assigned {ref} to {chosen}",
                      SCHEDULER_NAME)

    def _unschedulable(self, pod: Obj, message: str) -> None:
        current = meta.condition(pod, "PodScheduled")
        if current is not None and current.get("status") == "False" and current.get("message") == message:
            return
        status = dict(pod.get("status") or {})
        status["conditions"] = meta.set_condition(status.get("conditions") or [], {
            "type": "PodScheduled", "status": "False", "lastProbeTime": None, "reason": "Unschedulable",
            "message": message}, meta.now())
        updated = self.registry.update_status({**pod, "status": status})
        log.info("Unable to schedule pod %s/%s: %s", meta.namespace_of(pod), meta.name_of(pod), message)
        events.record(self.registry, updated, "Warning", "FailedScheduling", message, SCHEDULER_NAME)
