"""Namespaces: the ones every cluster starts with, their `default` service accounts, the
`kubernetes` Service, and deletion (everything in a terminating namespace is deleted, then the
namespace itself)."""

from __future__ import annotations

import logging
from typing import Any, Hashable, Iterable

from components.apiserver import meta, resources
from components.apiserver.controllers.base import Controller
from components.apiserver.registry import Registry
from components.apiserver.store import Event
from components.common import kinds

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def ensure_default_service_account(registry: Registry, namespace: str) -> None:
    if registry.find(resources.SERVICE_ACCOUNT, namespace, "default") is None:
        registry.create(resources.SERVICE_ACCOUNT, namespace, {"metadata": {"name": "default"}})


def bootstrap(registry: Registry, apiserver_endpoint: str, cluster_ip: str) -> None:
    """Create what a new cluster has (idempotent, so it also runs after a restart)."""
    for name in SYSTEM_NAMESPACES:
        if registry.find(resources.NAMESPACE, "", name) is None:
            registry.create(resources.NAMESPACE, "", {"metadata": {"name": name}})
        ensure_default_service_account(registry, name)
    host, _, port = apiserver_endpoint.rpartition(":")
    if registry.find(resources.SERVICE, "default", "kubernetes") is None:
        registry.create(resources.SERVICE, "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": cluster_ip, "ports": [
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": int(port)}]}})
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kubernetes", "namespace": "default",
                              "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                 "subsets": [{"addresses": [{"ip": host.strip("[]")}],
                              "ports": [{"name": "https", "port": int(port), "protocol": "TCP"}]}]}
    existing = registry.find(resources.ENDPOINTS, "default", "kubernetes")
    if existing is None:
        registry.create(resources.ENDPOINTS, "default", endpoints)
    elif existing.get("subsets") != endpoints["subsets"]:
        registry.update(resources.ENDPOINTS, "default", "kubernetes", {**existing, "subsets": endpoints["subsets"]})


class NamespaceController(Controller):
    name = "namespace-controller"

    def resync(self) -> Iterable[Hashable]:
        return [meta.name_of(n) for n in self.store.list(resources.key(resources.NAMESPACE))]

    def keys_for(self, event: Event) -> Iterable[Hashable]:
        if event.group_kind == resources.key(resources.NAMESPACE):
            return [meta.name_of(event.obj)]
        namespace = event.namespace
        if not namespace:
            return []
        if event.group_kind == resources.key(resources.SERVICE_ACCOUNT) and event.type == "DELETED":
            return [namespace]
        ns = self.store.get(resources.key(resources.NAMESPACE), "", namespace)
        return [namespace] if ns is not None and meta.is_terminating(ns) else []

    def reconcile(self, key: Hashable) -> None:
        name = str(key)
        namespace = self.store.get(resources.key(resources.NAMESPACE), "", name)
        if namespace is None:
            return
        if not meta.is_terminating(namespace):
            ensure_default_service_account(self.registry, name)
            return
        for group_kind in self.store.group_kinds():
            for obj in self.store.list(group_kind, name):
                if not meta.is_terminating(obj):
                    kind = kinds.for_object(obj["apiVersion"], obj["kind"])
                    self.registry.delete(kind, name, meta.name_of(obj))
        if not any(self.store.list(gk, name) for gk in self.store.group_kinds()):
            self.registry.purge(resources.NAMESPACE, "", name)
            log.info("Namespace %s deleted", name)
