"""The daemonset controller: one pod per eligible node.

A node is eligible when it matches the pod template's node selector and affinity and the pod
tolerates its NoSchedule and NoExecute taints. Pods are named `<daemonset>-<suffix>`, bound to
their node directly, and replaced (old one gone first) when the template changes.
"""

from __future__ import annotations

import logging
from typing import Any, Hashable, Iterable

from components.apiserver import meta, resources
from components.apiserver.controllers import pods as podutil
from components.apiserver.controllers.base import Controller
from components.apiserver.controllers.placement import daemon_node_eligible
from components.apiserver.store import Event

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"


class DaemonSetController(Controller):
    name = "daemonset-controller"

    def resync(self) -> Iterable[Hashable]:
        return [(meta.namespace_of(d), meta.name_of(d)) for d in self.store.list(resources.key(resources.DAEMONSET))]

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.group_kind == resources.key(resources.DAEMONSET):
            return [(event.namespace, meta.name_of(event.obj))]
        if event.group_kind == resources.key(resources.NODE):
            return self.resync()
        if event.group_kind == resources.key(resources.POD):
            return [(event.namespace, ref.get("name")) for ref in event.obj["metadata"].get("ownerReferences") or []
                    if ref.get("kind") == "DaemonSet" and ref.get("controller")]
        return []

    def reconcile(self, key: Hashable) -> None:
        namespace, name = key  # type: ignore[misc]
        daemon_set = self.store.get(resources.key(resources.DAEMONSET), namespace, name)
        if daemon_set is None or meta.is_terminating(daemon_set):
            return
        template = (daemon_set.get("spec") or {}).get("template") or {}
        template_spec = template.get("spec") or {}
        current_hash = podutil.template_hash(template)
        nodes = {meta.name_of(n): n for n in self.store.list(resources.key(resources.NODE))}
        eligible = {n for n, node in nodes.items() if daemon_node_eligible(template_spec, node)}
        by_node: dict[str, list[Obj]] = {}
        for pod in podutil.owned_pods(self.store, daemon_set):
            if not meta.is_pod_terminal(pod):
                by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
        for node_name, pods in by_node.items():
            active = [p for p in pods if not meta.is_terminating(p)]
            if node_name not in eligible:
                self._delete(active)
                continue
            stale = [p for p in active if meta.labels_of(p).get(HASH_LABEL) != current_hash]
            keep = [p for p in active if p not in stale]
            self._delete(stale + keep[1:])
        for node_name in sorted(eligible):
            if not by_node.get(node_name):
                self._create(daemon_set, node_name, current_hash)
        self._update_status(daemon_set, eligible, current_hash)

    def _create(self, daemon_set: Obj, node_name: str, template_hash: str) -> None:
        pod = podutil.from_template(daemon_set, f"{meta.name_of(daemon_set)}-", {
            HASH_LABEL: template_hash, GENERATION_LABEL: str(daemon_set["metadata"].get("generation", 1))})
        pod["spec"]["nodeName"] = node_name
        created = self.registry.create(resources.POD, meta.namespace_of(daemon_set), pod)
        log.info("Created pod %s/%s for daemonset %s on node %s", meta.namespace_of(created), meta.name_of(created),
                 meta.name_of(daemon_set), node_name)

    def _delete(self, pods: list[Obj]) -> None:
        for pod in pods:
            self.registry.delete(resources.POD, meta.namespace_of(pod), meta.name_of(pod))
            log.info("Deleted pod %s/%s", meta.namespace_of(pod), meta.name_of(pod))

    def _update_status(self, daemon_set: Obj, eligible: set[str], template_hash: str) -> None:
        daemon_set = self.store.get(resources.key(resources.DAEMONSET), meta.namespace_of(daemon_set),
                                    meta.name_of(daemon_set)) or daemon_set
        active = [p for p in podutil.owned_pods(self.store, daemon_set) if podutil.is_active(p)]
        scheduled = {p["spec"].get("nodeName") for p in active}
        on_eligible = [p for p in active if p["spec"].get("nodeName") in eligible]
        ready = sum(1 for p in on_eligible if meta.is_pod_ready(p))
        updated = sum(1 for p in on_eligible if meta.labels_of(p).get(HASH_LABEL) == template_hash)
        status: Obj = {"currentNumberScheduled": len(scheduled & eligible),
                       "numberMisscheduled": len(scheduled - eligible),
                       "desiredNumberScheduled": len(eligible), "numberReady": ready,
                       "observedGeneration": daemon_set["metadata"].get("generation", 1)}
        optional = {"updatedNumberScheduled": updated, "numberAvailable": ready,
                    "numberUnavailable": len(eligible) - ready}
        status.update({k: v for k, v in optional.items() if v})
        if status != (daemon_set.get("status") or {}):
            self.registry.update_status({**daemon_set, "status": status})
