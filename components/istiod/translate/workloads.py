"""Pods as ztunnel Workloads (istiod's `podWorkloadBuilder`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Mapping

from components.istiod.translate.enrollment import tunnel_protocol
from components.istiod.translate.model import (
    WORKLOAD_NAME, Index, Obj, labels_of, metadata, name_of, namespace_of, spec_of,
)
from components.istiod.translate.waypoints import Waypoints, workload_waypoint

CANONICAL_NAME_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
_CRONJOB_JOB = re.compile(r"(.+)-[0-9]{8,10}")


def pod_ips(pod: Obj) -> list[str]:
    """`status.podIPs`, else `status.podIP`; nothing if any is not an IP address."""
    status = pod.get("status") or {}
    ips = [entry.get("ip", "") for entry in status.get("podIPs") or []] or [status.get("podIP", "")]
    try:
        return [str(ipaddress.ip_address(ip)) for ip in ips if ip]
    except ValueError:
        return []


def is_workload(pod: Obj) -> bool:
    """A pod is a workload once it has an IP (even while Pending, e.g. running init containers)
    and until it terminates (Succeeded or Failed). hostNetwork pods are workloads too, with
    networkMode HostNetwork, as istiod sends them: ztunnel can then name them as sources."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and bool(pod_ips(pod))


def workload_uid(cluster_id: str, pod: Obj) -> str:
    return f"{cluster_id}//Pod/{namespace_of(pod)}/{name_of(pod)}"


def workload_name(pod: Obj) -> str:
    """The name of what runs the pod (`GetWorkloadMetaFromPod`): for a generated pod, its
    controller, with a ReplicaSet's `-<pod-template-hash>` (the Deployment) or a CronJob Job's
    `-<timestamp>` stripped; the label `service.istio.io/workload-name` overrides; else the pod."""
    labels = labels_of(pod)
    if WORKLOAD_NAME in labels:
        return labels[WORKLOAD_NAME]
    meta = metadata(pod)
    if not meta.get("generateName"):
        return name_of(pod)
    controller = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
    if controller is None:
        return name_of(pod)
    owner, kind = controller.get("name", ""), controller.get("kind")
    for hash_label in ("pod-template-hash", "rollouts-pod-template-hash"):
        template_hash = labels.get(hash_label, "")
        if kind == "ReplicaSet" and template_hash and owner.endswith(template_hash):
            return owner.removesuffix("-" + template_hash)
    if kind == "ReplicationController" and labels.get("deploymentconfig"):
        return labels["deploymentconfig"]
    job = _CRONJOB_JOB.fullmatch(owner) if kind == "Job" else None
    return (job.group(1) if job else owner) or name_of(pod)


def canonical_service(labels: Mapping[str, str], name: str) -> tuple[str, str]:
    """(canonical name, canonical revision) from the first label present, else the workload
    name and `latest`."""
    canonical_name = next((labels[k] for k in CANONICAL_NAME_LABELS if k in labels), name)
    revision = next((labels[k] for k in CANONICAL_REVISION_LABELS if k in labels), "latest")
    return canonical_name, revision


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def build_workload(pod: Obj, index: Index, waypoints: Waypoints, authorization_policies: list[str],
                   services: list[str]) -> Obj:
    """The Workload of a pod (see `is_workload`), given the policies and services (`ns/hostname`)
    it belongs to.

    Fields ztunnel would default are spelled out (trustDomain and serviceAccount, which local
    config does not default). workloadType is always `pod`: istiod sends WorkloadType POD for every
    pod "for backwards compatibility", so ztunnel's baggage reads `k8s.pod.name=<workloadName>`.
    """
    snapshot = index.snapshot
    spec = spec_of(pod)
    ns = namespace_of(pod)
    name = workload_name(pod)
    canonical_name, canonical_revision = canonical_service(labels_of(pod), name)
    protocol, native_tunnel = tunnel_protocol(pod, index.namespace_labels(ns))
    healthy = is_ready(pod) and not metadata(pod).get("deletionTimestamp")
    workload: Obj = {
        "uid": workload_uid(snapshot.cluster_id, pod),
        "name": name_of(pod),
        "namespace": ns,
        "workloadIps": pod_ips(pod),
        "serviceAccount": spec.get("serviceAccountName") or "default",
        "trustDomain": snapshot.trust_domain,
        "node": spec.get("nodeName", ""),
        "protocol": protocol,
        "networkMode": "HostNetwork" if spec.get("hostNetwork") else "Standard",
        "workloadName": name,
        "workloadType": "pod",
        "canonicalName": canonical_name,
        "canonicalRevision": canonical_revision,
        "clusterId": snapshot.cluster_id,
        "status": "Healthy" if healthy else "Unhealthy",
        "authorizationPolicies": authorization_policies,
        "services": services,
    }
    if snapshot.network:
        workload["network"] = snapshot.network
    if native_tunnel:
        workload["nativeTunnel"] = True
    waypoint = workload_waypoint(pod, index, waypoints)
    if waypoint is not None:
        workload["waypoint"] = dict(waypoint.address)
    return workload
