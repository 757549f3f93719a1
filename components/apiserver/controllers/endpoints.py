"""The endpoints controller: an Endpoints object per Service with a selector, listing the
addresses of the pods it selects (ready ones in `addresses`, the others in `notReadyAddresses`)
and the ports they serve, with named targetPorts resolved per pod."""

from __future__ import annotations

import json
from typing import Any, Hashable, Iterable

from components.apiserver import meta, resources
from components.apiserver.controllers.base import Controller
from components.apiserver.store import Event

Obj = dict[str, Any]


def _target_port(service_port: Obj, pod: Obj) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == service_port.get("protocol", "TCP"):
                return port.get("containerPort")
    return None


def _address(pod: Obj) -> Obj:
    address: Obj = {"ip": pod["status"]["podIP"]}
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        address["nodeName"] = node_name
    address["targetRef"] = {"kind": "Pod", "namespace": meta.namespace_of(pod), "name": meta.name_of(pod),
                            "uid": pod["metadata"]["uid"]}
    return address


def subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets of a Service: pods grouped by the ports they resolve to."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    groups: dict[str, Obj] = {}
    for pod in pods:
        labels = meta.labels_of(pod)
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        if meta.is_terminating(pod) or meta.is_pod_terminal(pod) or not (pod.get("status") or {}).get("podIP"):
            continue
        ports = []
        for service_port in spec.get("ports") or []:
            number = _target_port(service_port, pod)
            if number is None:
                continue
            port: Obj = {"name": service_port["name"]} if service_port.get("name") else {}
            port.update(port=number, protocol=service_port.get("protocol", "TCP"))
            if service_port.get("appProtocol"):
                port["appProtocol"] = service_port["appProtocol"]
            ports.append(port)
        if spec.get("ports") and not ports:
            continue
        group = groups.setdefault(json.dumps(ports, sort_keys=True), {"ready": [], "notReady": [], "ports": ports})
        ready = meta.is_pod_ready(pod) or spec.get("publishNotReadyAddresses")
        group["ready" if ready else "notReady"].append(_address(pod))
    result = []
    for key in sorted(groups):
        group = groups[key]
        subset: Obj = {}
        if group["ready"]:
            subset["addresses"] = sorted(group["ready"], key=lambda a: a["ip"])
        if group["notReady"]:
            subset["notReadyAddresses"] = sorted(group["notReady"], key=lambda a: a["ip"])
        if group["ports"]:
            subset["ports"] = group["ports"]
        result.append(subset)
    return result


class EndpointsController(Controller):
    name = "endpoints-controller"

    def resync(self) -> Iterable[Hashable]:
        return [(meta.namespace_of(s), meta.name_of(s)) for s in self.store.list(resources.key(resources.SERVICE))]

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.group_kind == resources.key(resources.SERVICE):
            return [(event.namespace, meta.name_of(event.obj))]
        if event.group_kind == resources.key(resources.ENDPOINTS):
            # Restore endpoints someone changed; endpoints without a Service are not ours.
            name = meta.name_of(event.obj)
            service = self.store.get(resources.key(resources.SERVICE), event.namespace, name)
            return [(event.namespace, name)] if service is not None else []
        if event.group_kind == resources.key(resources.POD):
            return [(event.namespace, meta.name_of(s))
                    for s in self.store.list(resources.key(resources.SERVICE), event.namespace)]
        return []

    def reconcile(self, key: Hashable) -> None:
        namespace, name = key  # type: ignore[misc]
        service = self.store.get(resources.key(resources.SERVICE), namespace, name)
        existing = self.store.get(resources.key(resources.ENDPOINTS), namespace, name)
        if service is None:
            if existing is not None:
                self.registry.delete(resources.ENDPOINTS, namespace, name)
            return
        if not (service.get("spec") or {}).get("selector"):
            return
        desired = subsets(service, self.store.list(resources.key(resources.POD), namespace))
        labels = meta.labels_of(service)
        if existing is None:
            endpoints: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                              "metadata": {"name": name, "namespace": namespace, "labels": labels}}
            if desired:
                endpoints["subsets"] = desired
            self.registry.create(resources.ENDPOINTS, namespace, endpoints)
            return
        if (existing.get("subsets") or []) == desired and meta.labels_of(existing) == labels:
            return
        updated = {**existing, "metadata": {**existing["metadata"], "labels": labels}}
        updated.pop("subsets", None)
        if desired:
            updated["subsets"] = desired
        self.registry.update(resources.ENDPOINTS, namespace, name, updated)
