"""Publishes the root as the ConfigMap `istio-ca-root-cert` (key `root-cert.pem`) in every namespace,
as istiod's namespace controller does: created when a namespace appears, restored when someone
edits or deletes it. Like istiod it skips the Kubernetes system namespaces but kube-system (where
ztunnel may run), and terminating namespaces."""

from __future__ import annotations

import logging
from typing import Any

import trio

from components.common.apiclient import ApiClient, ApiError

log = logging.getLogger("namespacecontroller")

CONFIGMAP_NAME = "istio-ca-root-cert"
ROOT_CERT_KEY = "root-cert.pem"
LABELS = {"istio.io/config": "true"}
IGNORED_NAMESPACES = frozenset({"kube-public", "kube-node-lease", "local-path-storage"})


class RootCertPublisher:
    def __init__(self, api: ApiClient, root_pem: bytes, retry_delay: float = 0.5) -> None:
        self.api = api
        self.root_pem = root_pem.decode()
        self.retry_delay = retry_delay
        self._namespaces: dict[str, str] = {}       # name -> phase
        self._pending: set[str] = set()
        self._wakeup = trio.Event()

    def _enqueue(self, namespace: str) -> None:
        if namespace not in IGNORED_NAMESPACES:
            self._pending.add(namespace)
            self._wakeup.set()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_namespaces)
            nursery.start_soon(self._watch_configmaps)
            await self._reconcile_loop()

    async def _watch_namespaces(self) -> None:
        async for event_type, obj in self.api.reflect("v1", "Namespace"):
            if event_type == "SYNC":
                items = obj.get("items") or []
                self._namespaces = {ns["metadata"]["name"]: (ns.get("status") or {}).get("phase", "")
                                    for ns in items}
                for name in self._namespaces:
                    self._enqueue(name)
                continue
            name = obj["metadata"]["name"]
            if event_type == "DELETED":
                self._namespaces.pop(name, None)
                continue
            self._namespaces[name] = (obj.get("status") or {}).get("phase", "")
            self._enqueue(name)

    async def _watch_configmaps(self) -> None:
        async for event_type, obj in self.api.reflect("v1", "ConfigMap",
                                                      field_selector=f"metadata.name={CONFIGMAP_NAME}"):
            if event_type == "SYNC":
                for item in obj.get("items") or []:
                    self._enqueue(item["metadata"]["namespace"])
            else:
                self._enqueue(obj["metadata"]["namespace"])

    async def _reconcile_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            batch, self._pending = self._pending, set()
            failed = []
            for namespace in sorted(batch):
                try:
                    await self.reconcile(namespace)
                except ApiError as exc:
                    log.warning("failed to publish %s in namespace %s: %s", CONFIGMAP_NAME, namespace, exc)
                    failed.append(namespace)
            if failed:
                await trio.sleep(self.retry_delay)
                for namespace in failed:
                    self._enqueue(namespace)

    def _wanted(self, namespace: str) -> bool:
        phase = self._namespaces.get(namespace)
        return phase is not None and phase != "Terminating"

    async def reconcile(self, namespace: str) -> None:
        """Make the namespace's ConfigMap hold the root (istiod's InsertDataToConfigMap)."""
        if not self._wanted(namespace):
            return
        try:
            current = await self.api.get("v1", "ConfigMap", namespace, CONFIGMAP_NAME)
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self._create(namespace)
            return
        data = current.get("data") or {}
        labels = (current.get("metadata") or {}).get("labels") or {}
        if data.get(ROOT_CERT_KEY) == self.root_pem and all(labels.get(k) == v for k, v in LABELS.items()):
            return
        updated: dict[str, Any] = dict(current)
        updated["data"] = {**data, ROOT_CERT_KEY: self.root_pem}
        updated["metadata"] = {**current["metadata"], "labels": {**labels, **LABELS}}
        await self.api.replace(updated)
        log.info("updated %s in namespace %s", CONFIGMAP_NAME, namespace)

    async def _create(self, namespace: str) -> None:
        try:
            await self.api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": CONFIGMAP_NAME, "namespace": namespace,
                                                "labels": dict(LABELS)},
                                   "data": {ROOT_CERT_KEY: self.root_pem}})
        except ApiError as exc:
            if exc.code == 409:             # created meanwhile: the watch brings it back for a check
                return
            if not self._wanted(namespace):  # the namespace went away meanwhile
                return
            raise
