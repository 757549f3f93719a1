"""istiod's waypoint controller: a Gateway of class `istio-waypoint` becomes a ServiceAccount, a
Deployment and a Service named after it, owned by it (deleting the Gateway lets the apiserver's
garbage collector remove them), and the Gateway's status says so.

The older form of seed 001 (class `istio-mesh`, the proxy running as the service account named by
the `istio.io/service-account` annotation) is deployed the same way, with that service account and
the `Ready` condition the early ambient releases wrote.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from components.common.apiclient import ApiClient, ApiError
from components.istiod.status import rfc3339_now
from components.istiod.translate.waypoints import proxy_name
from components.istiod.translate.model import (
    GATEWAY_MANAGED, GATEWAY_NAME, HBONE_PORT, LEGACY_WAYPOINT_CLASS, MESH_CONTROLLER,
    SERVICE_ACCOUNT_ANNOTATION, WAYPOINT_CLASS,
)

Obj = dict[str, Any]

log = logging.getLogger("istiod.gateway")

PROXY_IMAGE = "docker.io/istio/proxyv2:1.24.0"
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
RETRY_DELAY = 1.0
# The proxy's CA token (audience istio-ca) and the mesh root, as istiod's waypoint template mounts them.
PROXY_VOLUMES = [
    {"name": "istio-token", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
    {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
]


def _owner(gateway: Obj) -> Obj:
    meta = gateway["metadata"]
    return {"apiVersion": gateway.get("apiVersion", GATEWAY_API_VERSION), "kind": "Gateway",
            "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def service_account_of(gateway: Obj) -> str:
    """The proxy's service account: the Gateway's name, or the annotated one for `istio-mesh`."""
    meta = gateway["metadata"]
    if gateway.get("spec", {}).get("gatewayClassName") == LEGACY_WAYPOINT_CLASS:
        return (meta.get("annotations") or {}).get(SERVICE_ACCOUNT_ANNOTATION) or meta["name"]
    return meta["name"]


def desired_objects(gateway: Obj) -> list[Obj]:
    """What istiod's deployment controller renders for one waypoint Gateway."""
    meta = gateway["metadata"]
    gateway_name, namespace, name = meta["name"], meta["namespace"], proxy_name(gateway)
    account = service_account_of(gateway)
    labels = {GATEWAY_MANAGED: MESH_CONTROLLER, GATEWAY_NAME: gateway_name, "istio.io/gateway-name": gateway_name}
    owned = {"namespace": namespace, "labels": labels, "ownerReferences": [_owner(gateway)]}
    pod_labels = {**labels, "istio.io/dataplane-mode": "none", "networking.istio.io/tunnel": "http",
                  "sidecar.istio.io/inject": "false", "service.istio.io/canonical-name": name,
                  "service.istio.io/canonical-revision": "latest"}
    container = {
        "name": "istio-proxy", "image": PROXY_IMAGE,
        "args": ["proxy", "waypoint", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--serviceCluster", f"{name}.$(POD_NAMESPACE)", "--proxyLogLevel", "warning",
                 "--proxyComponentLogLevel", "misc:error", "--log_output_level", "default:info"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "ISTIO_META_SERVICE_ACCOUNT", "value": account},
                {"name": "GATEWAY_NAME", "value": gateway_name},
                {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
                {"name": "TRUST_DOMAIN", "value": "cluster.local"},
                {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
                {"name": "XDS_ADDRESS", "value": "istiod.istio-system.svc:15010"}],
        "volumeMounts": [{"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
                         {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"}],
        "ports": [{"name": "metrics", "containerPort": 15020, "protocol": "TCP"},
                  {"name": "status-port", "containerPort": 15021, "protocol": "TCP"},
                  {"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
    }
    objects: list[Obj] = []
    if account == name:
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, **owned}})
    objects.append({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, **owned},
        "spec": {"replicas": 1, "selector": {"matchLabels": {GATEWAY_NAME: gateway_name}},
                 "template": {"metadata": {"labels": pod_labels},
                              "spec": {"serviceAccountName": account, "terminationGracePeriodSeconds": 2,
                                       "containers": [container], "volumes": PROXY_VOLUMES}}}})
    objects.append({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, **owned},
        "spec": {"type": "ClusterIP", "selector": {GATEWAY_NAME: gateway_name},
                 "ports": [{"name": "status-port", "port": 15021, "protocol": "TCP", "appProtocol": "tcp"},
                           {"name": "mesh", "port": HBONE_PORT, "protocol": "TCP", "appProtocol": "all"}]}})
    return objects


def desired_status(gateway: Obj, cluster_ip: str) -> Obj:
    """The Gateway's status once its Service exists: istiod's conditions and the Service's address."""
    meta = gateway["metadata"]
    name, namespace = proxy_name(gateway), meta["namespace"]
    generation = meta.get("generation", 1)

    def condition(kind: str, message: str) -> Obj:
        return {"type": kind, "status": "True", "reason": kind, "message": message,
                "observedGeneration": generation}

    conditions = [condition("Accepted", "Resource accepted"),
                  condition("Programmed", f"Resource programmed, assigned to service(s) "
                                          f"{name}.{namespace}.svc.cluster.local:{HBONE_PORT}")]
    if gateway.get("spec", {}).get("gatewayClassName") == LEGACY_WAYPOINT_CLASS:
        conditions.append(condition("Ready", f'Deployed waypoint proxy to "{namespace}" namespace for '
                                             f'"{service_account_of(gateway)}" service account'))
    return {"conditions": conditions, "addresses": [{"type": "IPAddress", "value": cluster_ip}]}


def _comparable(status: Obj) -> Obj:
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                     for c in status.get("conditions") or []]}


def with_times(desired: Obj, current: Obj, stamp: str) -> Obj:
    """`desired` with each condition's lastTransitionTime kept while its status is unchanged."""
    old = {c.get("type"): c for c in current.get("conditions") or []}
    conditions = []
    for c in desired["conditions"]:
        before = old.get(c["type"])
        same = before is not None and before.get("status") == c["status"] and before.get("lastTransitionTime")
        conditions.append({**c, "lastTransitionTime": before["lastTransitionTime"] if same and before else stamp})
    return {**current, **desired, "conditions": conditions}


def is_waypoint(gateway: Obj) -> bool:
    return (gateway.get("spec") or {}).get("gatewayClassName") in (WAYPOINT_CLASS, LEGACY_WAYPOINT_CLASS)


class WaypointController:
    """Reconciles every waypoint Gateway on each Gateway event (and retries failed ones)."""

    def __init__(self, api: ApiClient, clock: Callable[[], str] = rfc3339_now) -> None:
        self.api = api
        self.clock = clock

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            async for event, obj in self.api.reflect(GATEWAY_API_VERSION, "Gateway"):
                if event == "DELETED":
                    continue
                gateways = (obj.get("items") or []) if event == "SYNC" else [obj]
                for gateway in gateways:
                    if is_waypoint(gateway) and not await self.reconcile(gateway):
                        nursery.start_soon(self._retry_later, gateway)

    async def _retry_later(self, gateway: Obj) -> None:
        await trio.sleep(RETRY_DELAY)
        meta = gateway["metadata"]
        try:
            current = await self.api.get(GATEWAY_API_VERSION, "Gateway", meta["namespace"], meta["name"])
        except ApiError:
            return
        if is_waypoint(current) and not await self.reconcile(current):
            await self._retry_later(current)

    async def reconcile(self, gateway: Obj) -> bool:
        """Create or update the Gateway's objects and write its status; False if that failed."""
        meta = gateway["metadata"]
        try:
            cluster_ip = ""
            for obj in desired_objects(gateway):
                written = await self._ensure(obj)
                if obj["kind"] == "Service":
                    cluster_ip = written.get("spec", {}).get("clusterIP", "")
            current = gateway.get("status") or {}
            desired = desired_status(gateway, cluster_ip)
            if _comparable({**current, **desired}) != _comparable(current):
                await self.api.patch(GATEWAY_API_VERSION, "Gateway", meta["namespace"], meta["name"],
                                     {"status": with_times(desired, current, self.clock())},
                                     subresource="status")
                log.info("gateway %s/%s: deployed waypoint (address %s)", meta["namespace"], meta["name"],
                         cluster_ip)
        except ApiError as exc:
            if exc.code == 404:
                return True
            log.warning("failed to deploy waypoint %s/%s: %s", meta["namespace"], meta["name"], exc)
            return False
        return True

    async def _ensure(self, obj: Obj) -> Obj:
        """Create `obj`, or merge its labels, owners and spec into the existing one (a Service
        keeps its ClusterIP)."""
        meta = obj["metadata"]
        try:
            current = await self.api.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            return await self.api.create(obj)
        patch = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        wanted = {"metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]}, **patch}
        current_meta = current.get("metadata") or {}
        if (all(current_meta.get("labels", {}).get(k) == v for k, v in meta["labels"].items())
                and current_meta.get("ownerReferences") == meta["ownerReferences"]
                and all(_contains(current.get(k), v) for k, v in patch.items())):
            return current
        return await self.api.patch(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], wanted)


def _contains(current: Any, wanted: Any) -> bool:
    """Whether a merge patch of `wanted` would leave `current` unchanged."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(_contains(current.get(k), v) for k, v in wanted.items())
    return current == wanted
