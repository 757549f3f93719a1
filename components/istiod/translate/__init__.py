"""The I/O-free core of istiod's ambient config: a snapshot of Kubernetes and Istio objects in,
ztunnel's config out (its local-config shapes: camelCase Workload, Service and Authorization),
the waypoints' `l7` section (see `l7`), plus the `ZtunnelAccepted` status istiod writes on each
AuthorizationPolicy.

Every list is sorted (workloads by uid, services by namespace and hostname, policies by namespace
and name, endpoints by workload uid), so equal snapshots give equal output and versions diff.
"""

from __future__ import annotations

from dataclasses import dataclass

from collections import defaultdict

from components.istiod.translate import authorization, l7, peerauthentication
from components.istiod.translate.model import Index, Obj, Snapshot, labels_of, name_of, namespace_of, spec_of
from components.istiod.translate.services import build_service, endpoint, pod_services
from components.istiod.translate.waypoints import collect_waypoints, legacy_service_waypoint
from components.istiod.translate.workloads import build_workload, is_workload

__all__ = ["Snapshot", "Translation", "build_config", "build_policy_status", "translate"]


@dataclass(frozen=True)
class Translation:
    config: Obj               # {"workloads": [...], "services": [...], "policies": [...], "l7": {...}}
    policy_status: list[Obj]  # [{"namespace", "name", "conditions": [ZtunnelAccepted]}] per policy


def translate(snapshot: Snapshot) -> Translation:
    """ztunnel's config and the policies' status conditions for one snapshot."""
    index = Index(snapshot)
    waypoints = collect_waypoints(index)
    root = snapshot.root_namespace
    converted = [c for c in (authorization.convert(p, root, snapshot.dry_run_policies)
                             for p in snapshot.authorization_policies) if c is not None]

    services: dict[tuple[str, str], Obj] = {}
    for service in snapshot.services:
        built = build_service(service, index, waypoints)
        if built is not None:
            services[(namespace_of(service), name_of(service))] = built

    workloads = []
    members: dict[tuple[str, str], list[l7.Member]] = defaultdict(list)
    legacy_pods: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for pod in snapshot.pods:
        if not is_workload(pod):
            continue
        ns = namespace_of(pod)
        labels = labels_of(pod)
        members_of_pod = pod_services(pod, index)
        legacy = waypoints.for_service_account(ns, spec_of(pod).get("serviceAccountName") or "default")
        selected = authorization.selected_policy_keys(converted, ns, labels, root)
        if legacy is not None:
            # Early ambient enforced a workload's selector policies at its waypoint, not at ztunnel.
            legacy_pods[(ns, legacy.name)].append(labels)
            selected = [key for key in selected if not key.startswith(f"{ns}/")]
        policy_keys = selected + peerauthentication.workload_policy_keys(snapshot.peer_authentications, ns, labels, root)
        hostnames = sorted(f"{ns}/{services[(ns, name_of(s))]['hostname']}" for s in members_of_pod)
        workload = build_workload(pod, index, waypoints, policy_keys, hostnames)
        for service in members_of_pod:
            services[(ns, name_of(service))]["endpoints"][workload["uid"]] = endpoint(workload, pod, service)
            members[(ns, name_of(service))].append(l7.Member(labels, workload["uid"]))
        workloads.append(workload)

    accounts = {w["uid"]: w["serviceAccount"] for w in workloads}
    for (ns, name), built in services.items():
        if "waypoint" not in built and built["endpoints"]:
            waypoint = legacy_service_waypoint(index.services[(ns, name)],
                                               {accounts[uid] for uid in built["endpoints"]}, waypoints)
            if waypoint is not None:
                built["waypoint"] = dict(waypoint.address)
    legacy_policies = {key: l7.selector_policies(index, key[0], pods) for key, pods in legacy_pods.items()}
    for built in services.values():
        built["endpoints"] = dict(sorted(built["endpoints"].items()))
    policies = [c.authorization for c in converted if c.authorization is not None]
    policies += peerauthentication.policies(snapshot.peer_authentications, root)
    config = {
        "workloads": sorted(workloads, key=lambda w: w["uid"]),
        "services": sorted(services.values(), key=lambda s: (s["namespace"], s["hostname"])),
        "policies": sorted(policies, key=lambda p: (p["namespace"], p["name"])),
        "l7": l7.build(index, waypoints, members, legacy_policies),
    }
    status = [{"namespace": c.namespace, "name": c.name, "conditions": [c.condition]}
              for c in sorted(converted, key=lambda c: (c.namespace, c.name))]
    return Translation(config, status)


def build_config(snapshot: Snapshot) -> Obj:
    """ztunnel's config: `{"workloads": [...], "services": [...], "policies": [...]}`."""
    return translate(snapshot).config


def build_policy_status(snapshot: Snapshot) -> list[Obj]:
    """The `ZtunnelAccepted` condition istiod would write on each AuthorizationPolicy it
    considers for ztunnel (none for waypoint policies, those with `targetRef(s)`)."""
    return translate(snapshot).policy_status
