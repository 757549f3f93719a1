"""The deployment controller: keeps `spec.replicas` pods of the current template.

Pods are named `<deployment>-<pod-template-hash>-<suffix>` as Kubernetes' ReplicaSets name them,
carry the `pod-template-hash` label, and are owned by the Deployment. When the template changes,
pods of the new hash are created and those of older hashes are deleted once the new ones exist
(with the Recreate strategy, new pods wait until the old ones are gone).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Hashable, Iterable

from components.apiserver import meta, resources
from components.apiserver.controllers import pods as podutil
from components.apiserver.controllers.base import Controller
from components.apiserver.store import Event

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
STATUS_COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")


def _max_unavailable(deployment: Obj, replicas: int) -> int:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(replicas * int(value[:-1] or 0) / 100)
    return int(value)


def _removal_order(pod: Obj) -> tuple[bool, bool]:
    return bool(pod["spec"].get("nodeName")), meta.is_pod_ready(pod)


class DeploymentController(Controller):
    name = "deployment-controller"

    def resync(self) -> Iterable[Hashable]:
        return [(meta.namespace_of(d), meta.name_of(d))
                for d in self.store.list(resources.key(resources.DEPLOYMENT))]

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.group_kind == resources.key(resources.DEPLOYMENT):
            return [(event.namespace, meta.name_of(event.obj))]
        if event.group_kind == resources.key(resources.POD):
            return [(event.namespace, ref.get("name")) for ref in event.obj["metadata"].get("ownerReferences") or []
                    if ref.get("kind") == "Deployment" and ref.get("controller")]
        return []

    def reconcile(self, key: Hashable) -> None:
        namespace, name = key  # type: ignore[misc]
        deployment = self.store.get(resources.key(resources.DEPLOYMENT), namespace, name)
        if deployment is None or meta.is_terminating(deployment):
            return
        spec = deployment.get("spec") or {}
        wanted = spec.get("replicas", 1)
        current_hash = podutil.template_hash(spec.get("template") or {})
        owned = podutil.owned_pods(self.store, deployment)
        active = [p for p in owned if podutil.is_active(p)]
        current = [p for p in active if meta.labels_of(p).get(HASH_LABEL) == current_hash]
        old_active = [p for p in active if meta.labels_of(p).get(HASH_LABEL) != current_hash]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        old_left = any(meta.labels_of(p).get(HASH_LABEL) != current_hash for p in owned)
        if recreate and old_active:
            self._delete(old_active)
        elif len(current) < wanted and not (recreate and old_left):
            for _ in range(wanted - len(current)):
                current.append(self._create(deployment, current_hash))
        elif len(current) > wanted:
            by_preference = sorted(sorted(current, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True),
                                   key=_removal_order)
            self._delete(by_preference[:len(current) - wanted])
        if old_active and len(current) >= wanted:
            self._delete(old_active)
        self._update_status(deployment, current_hash)

    def _create(self, deployment: Obj, template_hash: str) -> Obj:
        pod = podutil.from_template(deployment, f"{meta.name_of(deployment)}-{template_hash}-",
                                    {HASH_LABEL: template_hash})
        created = self.registry.create(resources.POD, meta.namespace_of(deployment), pod)
        log.info("Created pod %s/%s for deployment %s", meta.namespace_of(created), meta.name_of(created),
                 meta.name_of(deployment))
        return created

    def _delete(self, pods: list[Obj]) -> None:
        for pod in pods:
            if self.store.get(resources.key(resources.POD), meta.namespace_of(pod), meta.name_of(pod)) is not None:
                self.registry.delete(resources.POD, meta.namespace_of(pod), meta.name_of(pod))
                log.info("Deleted pod %s/%s", meta.namespace_of(pod), meta.name_of(pod))

    def _update_status(self, deployment: Obj, template_hash: str) -> None:
        deployment = self.store.get(resources.key(resources.DEPLOYMENT), meta.namespace_of(deployment),
                                    meta.name_of(deployment)) or deployment
        spec = deployment.get("spec") or {}
        wanted = spec.get("replicas", 1)
        active = [p for p in podutil.owned_pods(self.store, deployment) if podutil.is_active(p)]
        updated = [p for p in active if meta.labels_of(p).get(HASH_LABEL) == template_hash]
        ready = sum(1 for p in active if meta.is_pod_ready(p))
        counts = {"replicas": len(active), "updatedReplicas": len(updated), "readyReplicas": ready,
                  "availableReplicas": ready, "unavailableReplicas": max(wanted - ready, 0)}
        old_status = deployment.get("status") or {}
        status: Obj = {"observedGeneration": deployment["metadata"].get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})
        stamp = meta.now()
        available = ready >= wanted - _max_unavailable(deployment, wanted)
        replica_set = f"{meta.name_of(deployment)}-{template_hash}"
        complete = len(updated) == wanted == len(active) and ready >= wanted
        conditions = meta.set_condition(old_status.get("conditions") or [], {
            "type": "Available", "status": "True" if available else "False",
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability." if available
            else "Deployment does not have minimum availability."}, stamp, "lastUpdateTime")
        conditions = meta.set_condition(conditions, {
            "type": "Progressing", "status": "True",
            "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            "message": f'ReplicaSet "{replica_set}" has successfully progressed.' if complete
            else f'ReplicaSet "{replica_set}" is progressing.'}, stamp, "lastUpdateTime")
        status["conditions"] = conditions
        if status != old_status:
            self.registry.update_status({**deployment, "status": status})
