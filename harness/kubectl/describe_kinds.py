"""`kubectl describe` layouts of services, deployments, nodes and namespaces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.kubectl import tables, timefmt
from harness.kubectl.describe_pods import describe_pod_template
from harness.kubectl.describe_writer import Writer, annotations_multiline, describe_events, labels_multiline, meta_of

def describe_service(svc: dict[str, Any], endpoints: dict[str, Any] | None, events: list[dict[str, Any]] | None,
                     now: datetime) -> str:
    w = Writer()
    meta, spec = meta_of(svc), svc.get("spec") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{tables.format_labels(spec.get('selector'))}\n")
    w.write(0, f"Type:\t{spec.get('type') or 'ClusterIP'}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    w.write(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}\n")
    w.write(0, f"IP:\t{spec.get('clusterIP', '')}\n")
    w.write(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}\n")
    if spec.get("externalIPs"):
        w.write(0, f"External IPs:\t{','.join(spec['externalIPs'])}\n")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        w.write(0, f"LoadBalancer Ingress:\t{', '.join(i.get('ip') or i.get('hostname') or '' for i in ingress)}\n")
    if spec.get("type") == "ExternalName":
        w.write(0, f"External Name:\t{spec.get('externalName', '')}\n")
    for port in spec.get("ports") or []:
        name = port.get("name") or "<unset>"
        protocol = port.get("protocol") or "TCP"
        w.write(0, f"Port:\t{name}\t{port.get('port')}/{protocol}\n")
        w.write(0, f"TargetPort:\t{port.get('targetPort', port.get('port'))}/{protocol}\n")
        if port.get("nodePort"):
            w.write(0, f"NodePort:\t{name}\t{port['nodePort']}/{protocol}\n")
        w.write(0, f"Endpoints:\t{tables.format_endpoints(endpoints or {}, {port.get('name', '')})}\n")
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity') or 'None'}\n")
    if spec.get("externalTrafficPolicy"):
        w.write(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}\n")
    describe_events(w, events, now)
    return w.result()


def _replica_sets(sets: list[dict[str, Any]]) -> str:
    if not sets:
        return "<none>"
    return ", ".join(f"{meta_of(rs).get('name')} ({(rs.get('status') or {}).get('replicas', 0)}/"
                     f"{(rs.get('spec') or {}).get('replicas', 1)} replicas created)" for rs in sets)


def _template_without_hash(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != "pod-template-hash"}
    meta["labels"] = labels
    return {**template, "metadata": meta}


def describe_deployment(deploy: dict[str, Any], owned: list[dict[str, Any]],
                        events: list[dict[str, Any]] | None, now: datetime) -> str:
    w = Writer()
    meta, spec, status = meta_of(deploy), deploy.get("spec") or {}, deploy.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{timefmt.rfc1123(meta.get('creationTimestamp'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{tables.selector_string(spec.get('selector'))}\n")
    w.write(0, f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
               f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
               f"{status.get('unavailableReplicas', 0)} unavailable\n")
    strategy = spec.get("strategy") or {}
    w.write(0, f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}\n")
    w.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}\n")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        w.write(0, f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable', '25%')} max unavailable, "
                   f"{rolling.get('maxSurge', '25%')} max surge\n")
    describe_pod_template(w, spec.get("template") or {})
    if status.get("conditions"):
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for cond in status["conditions"]:
            w.write(1, f"{cond.get('type', '')} \t{cond.get('status', '')}\t{cond.get('reason', '')}\n")
    current = _template_without_hash(spec.get("template") or {})
    new = [rs for rs in owned if _template_without_hash((rs.get("spec") or {}).get("template") or {}) == current]
    old = [rs for rs in owned if rs not in new and (rs.get("spec") or {}).get("replicas", 0)]
    if owned:
        w.write(0, f"OldReplicaSets:\t{_replica_sets(old)}\n")
        w.write(0, f"NewReplicaSet:\t{_replica_sets(new[:1])}\n")
    describe_events(w, events, now)
    return w.result()


def describe_node(node: dict[str, Any], node_pods: list[dict[str, Any]], events: list[dict[str, Any]] | None,
                  now: datetime) -> str:
    w = Writer()
    meta, spec, status = meta_of(node), node.get("spec") or {}, node.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Roles:\t{tables.node_roles(node)}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{timefmt.rfc1123(meta.get('creationTimestamp'))}\n")
    taints = [f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
              for t in spec.get("taints") or []]
    w.write(0, "Taints:\t" + ("\n\t".join(taints) if taints else "<none>") + "\n")
    w.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for cond in conditions:
            w.write(1, f"{cond.get('type', '')} \t{cond.get('status', '')} \t"
                       f"{timefmt.rfc1123(cond.get('lastHeartbeatTime'))} \t"
                       f"{timefmt.rfc1123(cond.get('lastTransitionTime'))} \t{cond.get('reason', '')} \t"
                       f"{cond.get('message', '')}\n")
    w.write(0, "Addresses:\n")
    for address in status.get("addresses") or []:
        w.write(1, f"{address.get('type')}:\t{address.get('address')}\n")
    for title, field in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        values = status.get(field) or {}
        if values:
            w.write(0, f"{title}:\n")
            for key in sorted(values):
                w.write(1, f"{key}:\t{values[key]}\n")
    info = status.get("nodeInfo") or {}
    w.write(0, "System Info:\n")
    for title, field in (("Machine ID", "machineID"), ("System UUID", "systemUUID"), ("Boot ID", "bootID"),
                         ("Kernel Version", "kernelVersion"), ("OS Image", "osImage"),
                         ("Operating System", "operatingSystem"), ("Architecture", "architecture"),
                         ("Container Runtime Version", "containerRuntimeVersion"),
                         ("Kubelet Version", "kubeletVersion"), ("Kube-Proxy Version", "kubeProxyVersion")):
        w.write(1, f"{title}:\t{info.get(field, '')}\n")
    if spec.get("podCIDR"):
        w.write(0, f"PodCIDR:\t{spec['podCIDR']}\n")
        w.write(0, f"PodCIDRs:\t{','.join(spec.get('podCIDRs') or [spec['podCIDR']])}\n")
    if spec.get("providerID"):
        w.write(0, f"ProviderID:\t{spec['providerID']}\n")
    running = [p for p in node_pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    w.write(0, f"Non-terminated Pods:\t({len(running)} in total)\n")
    w.write(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---\n")
    for pod in running:
        w.write(1, f"{meta_of(pod).get('namespace', '')}\t{meta_of(pod).get('name', '')}\t0 (0%)\t0 (0%)\t0 (0%)\t"
                   f"0 (0%)\t{timefmt.since(meta_of(pod).get('creationTimestamp'), now)}\n")
    describe_events(w, events, now)
    return w.result()


def describe_namespace(ns: dict[str, Any]) -> str:
    w = Writer()
    meta = meta_of(ns)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Status:\t{(ns.get('status') or {}).get('phase') or 'Active'}\n")
    w.write(0, "\nNo resource quota.\n")
    w.write(0, "\nNo LimitRange resource.\n")
    return w.result()
