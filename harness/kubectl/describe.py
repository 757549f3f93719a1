"""`kubectl describe`: kubectl's layouts for pods, services, deployments, nodes and namespaces,
and its generic describer (every field, in sorted order) for other kinds.

Each line is written at an indentation level with tab-separated cells and the whole text is
laid out with a tabwriter, so consecutive `Key:\\tvalue` lines align as in kubectl.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl import flags, merge, resources, tables, timefmt
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag
from harness.kubectl.tabwriter import describe_writer

FLAGS = (
    Flag("selector", "l", flags.STRING, ""),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("show-events", kind=flags.BOOL, default=True),
)

MAX_ANNOTATION_LEN = 140


class Writer:
    """kubectl's PrefixWriter: two spaces per level, then the tab-separated text."""

    def __init__(self) -> None:
        self.tab = describe_writer()
        self.text = ""

    def write(self, level: int, text: str) -> None:
        self.tab.write("  " * level + text)

    def flush(self) -> None:
        self.text += self.tab.flush()

    def result(self) -> str:
        self.flush()
        return self.text


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def labels_multiline(w: Writer, title: str, labels: dict[str, str] | None, level: int = 0) -> None:
    w.write(level, f"{title}:\t")
    if not labels:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(sorted(labels)):
        if i:
            w.write(level, "\t")
        w.write(0, f"{key}={labels[key]}\n")


def annotations_multiline(w: Writer, title: str, annotations: dict[str, str] | None, level: int = 0) -> None:
    w.write(level, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k != merge.LAST_APPLIED)
    if not keys:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(level, "\t")
        value = annotations[key].rstrip("\n")
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for line in value.split("\n"):
                short = line if len(line) <= MAX_ANNOTATION_LEN - 2 else line[:MAX_ANNOTATION_LEN - 2] + "..."
                w.write(level, f"\t{short}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def describe_events(w: Writer, events: list[dict[str, Any]] | None, now: datetime) -> None:
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    ordered = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for event in ordered:
        first = (timefmt.since(event.get("eventTime"), now) if event.get("eventTime")
                 else timefmt.since(event.get("firstTimestamp"), now))
        series, count = event.get("series"), int(event.get("count") or 0)
        if series:
            interval = f"{timefmt.since(series.get('lastObservedTime'), now)} (x{series.get('count')} over {first})"
        elif count > 1:
            interval = f"{timefmt.since(event.get('lastTimestamp'), now)} (x{count} over {first})"
        else:
            interval = first
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        w.write(1, f"{event.get('type', '')}\t{event.get('reason', '')}\t{interval}\t{source}\t"
                   f"{(event.get('message') or '').strip()}\n")


async def find_events(api: ApiClient, kind: kinds.Kind, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = _meta(obj)
    listing = await api.list("v1", "Event", meta.get("namespace") if kind.namespaced else None)
    found = []
    for event in listing.get("items") or []:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != kind.kind or involved.get("name") != meta.get("name"):
            continue
        if involved.get("uid") and meta.get("uid") and involved["uid"] != meta["uid"]:
            continue
        found.append(event)
    return found


def _controller(obj: dict[str, Any]) -> str:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


# -- pods and pod templates ---------------------------------------------------------------------

def _ports(ports: list[dict[str, Any]], field: str) -> str:
    return ",".join(f"{p.get(field, 0)}/{p.get('protocol') or 'TCP'}" for p in ports)


def _probe(probe: dict[str, Any]) -> str:
    if "httpGet" in probe:
        get = probe["httpGet"]
        scheme = (get.get("scheme") or "HTTP").lower()
        action = f"http-get {scheme}://{get.get('host', '')}:{get.get('port')}{get.get('path', '')}"
    elif "tcpSocket" in probe:
        action = f"tcp-socket {probe['tcpSocket'].get('host', '')}:{probe['tcpSocket'].get('port')}"
    elif "exec" in probe:
        action = "exec [" + " ".join((probe["exec"] or {}).get("command") or []) + "]"
    elif "grpc" in probe:
        action = f"grpc <pod>:{probe['grpc'].get('port')} {probe['grpc'].get('service', '')}"
    else:
        action = "unknown"
    return (f"{action} delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 1)}s "
            f"period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)} "
            f"#failure={probe.get('failureThreshold', 3)}")


def _state(w: Writer, title: str, state: dict[str, Any]) -> None:
    if "running" in state:
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{timefmt.rfc1123(state['running'].get('startedAt'))}\n")
    elif "terminated" in state:
        term = state["terminated"]
        w.write(2, f"{title}:\tTerminated\n")
        if term.get("reason"):
            w.write(3, f"Reason:\t{term['reason']}\n")
        if term.get("message"):
            w.write(3, f"Message:\t{term['message']}\n")
        w.write(3, f"Exit Code:\t{term.get('exitCode', 0)}\n")
        if term.get("signal"):
            w.write(3, f"Signal:\t{term['signal']}\n")
        w.write(3, f"Started:\t{timefmt.rfc1123(term.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{timefmt.rfc1123(term.get('finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")
        if (state.get("waiting") or {}).get("reason"):
            w.write(3, f"Reason:\t{state['waiting']['reason']}\n")


def _env_value(item: dict[str, Any]) -> str:
    source = item.get("valueFrom") or {}
    if "fieldRef" in source:
        ref = source["fieldRef"]
        return f" ({ref.get('apiVersion', 'v1')}:{ref.get('fieldPath', '')})"
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return f"<set to the key '{ref.get('key')}' in secret '{ref.get('name')}'>"
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return f"<set to the key '{ref.get('key')}' of config map '{ref.get('name')}'>"
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        return f"{ref.get('resource')}"
    return ""


def describe_containers(w: Writer, label: str, containers: list[dict[str, Any]],
                        statuses: list[dict[str, Any]] | None, space: str = "") -> None:
    if not containers:
        w.write(0, f"{space}{label}:\t<none>\n")
        return
    w.write(0, f"{space}{label}:\n")
    by_name = {s.get("name"): s for s in statuses or []}
    for container in containers:
        status = by_name.get(container.get("name"))
        w.write(1, f"{' ' if space else ''}{container.get('name', '')}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{status.get('containerID', '')}\n")
        w.write(2, f"Image:\t{container.get('image', '')}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{status.get('imageID', '')}\n")
        ports = container.get("ports") or []
        port_text, host_text = _ports(ports, "containerPort"), _ports(ports, "hostPort")
        w.write(2, f"{'Ports' if ',' in port_text else 'Port'}:\t{port_text or '<none>'}\n")
        w.write(2, f"{'Host Ports' if ',' in host_text else 'Host Port'}:\t{host_text or '<none>'}\n")
        for title, field in (("Command", "command"), ("Args", "args")):
            if container.get(field):
                w.write(2, f"{title}:\n")
                for arg in container[field]:
                    for line in str(arg).split("\n"):
                        w.write(3, f"{line}\n")
        if status is not None:
            _state(w, "State", status.get("state") or {})
            if (status.get("lastState") or {}).get("terminated"):
                _state(w, "Last State", status["lastState"])
            w.write(2, f"Ready:\t{'True' if status.get('ready') else 'False'}\n")
            w.write(2, f"Restart Count:\t{status.get('restartCount', 0)}\n")
        for title in ("limits", "requests"):
            values = (container.get("resources") or {}).get(title) or {}
            if values:
                w.write(2, f"{title.capitalize()}:\n")
                for key in sorted(values):
                    w.write(3, f"{key}:\t{values[key]}\n")
        for title, field in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"),
                             ("Startup", "startupProbe")):
            if container.get(field):
                w.write(2, f"{title}:\t{_probe(container[field])}\n")
        env = container.get("env") or []
        w.write(2, "Environment:" + ("" if env else "\t<none>") + "\n")
        for item in env:
            if "valueFrom" in item:
                w.write(3, f"{item.get('name')}:\t{_env_value(item)}\n")
                continue
            for i, line in enumerate(str(item.get("value", "")).split("\n")):
                w.write(3, f"{item.get('name')}:\t{line}\n" if i == 0 else f"\t{line}\n")
        mounts = sorted(container.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
        w.write(2, "Mounts:" + ("" if mounts else "\t<none>") + "\n")
        for mount in mounts:
            options = ["ro" if mount.get("readOnly") else "rw"]
            if mount.get("subPath"):
                options.append(f'path="{mount["subPath"]}"')
            w.write(3, f"{mount.get('mountPath')} from {mount.get('name')} ({','.join(options)})\n")


def describe_volumes(w: Writer, volumes: list[dict[str, Any]], space: str = "") -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for volume in volumes:
        w.write(1, f"{' ' if space else ''}{volume.get('name')}:\n")
        if "emptyDir" in volume:
            empty = volume["emptyDir"] or {}
            w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            w.write(2, f"Medium:\t{empty.get('medium', '')}\n")
            w.write(2, f"SizeLimit:\t{empty.get('sizeLimit', '<unset>')}\n")
        elif "hostPath" in volume:
            host = volume["hostPath"] or {}
            w.write(2, "Type:\tHostPath (bare host directory volume)\n")
            w.write(2, f"Path:\t{host.get('path', '')}\n")
            w.write(2, f"HostPathType:\t{host.get('type', '')}\n")
        elif "configMap" in volume:
            source = volume["configMap"] or {}
            w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            w.write(2, f"Name:\t{source.get('name', '')}\n")
            w.write(2, f"Optional:\t{'true' if source.get('optional') else 'false'}\n")
        elif "secret" in volume:
            source = volume["secret"] or {}
            w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
            w.write(2, f"SecretName:\t{source.get('secretName', '')}\n")
            w.write(2, f"Optional:\t{'true' if source.get('optional') else 'false'}\n")
        elif "projected" in volume:
            w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
            for source in (volume["projected"] or {}).get("sources") or []:
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    w.write(2, f"TokenExpirationSeconds:\t{token.get('expirationSeconds', 3607)}\n")
                elif "configMap" in source:
                    w.write(2, f"ConfigMapName:\t{source['configMap'].get('name', '')}\n")
                elif "downwardAPI" in source:
                    w.write(2, "DownwardAPI:\ttrue\n")
        else:
            w.write(2, f"Type:\t{next(iter(k for k in volume if k != 'name'), '<unknown>')}\n")


def _tolerations(w: Writer, tolerations: list[dict[str, Any]]) -> None:
    w.write(0, "Tolerations:\t")
    if not tolerations:
        w.write(0, "<none>\n")
        return
    for i, tol in enumerate(tolerations):
        if i:
            w.write(0, "\t")
        text = tol.get("key", "")
        if tol.get("value"):
            text += f"={tol['value']}"
        if tol.get("effect"):
            text += f":{tol['effect']}"
        if tol.get("operator") == "Exists" and not tol.get("value"):
            text += " op=Exists"
        if tol.get("tolerationSeconds") is not None:
            text += f" for {tol['tolerationSeconds']}s"
        w.write(0, text + "\n")


def describe_pod(pod: dict[str, Any], events: list[dict[str, Any]] | None, now: datetime) -> str:
    w = Writer()
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("priority") is not None:
        w.write(0, f"Priority:\t{spec['priority']}\n")
    if spec.get("priorityClassName"):
        w.write(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    if spec.get("serviceAccountName"):
        w.write(0, f"Service Account:\t{spec['serviceAccountName']}\n")
    node = spec.get("nodeName")
    w.write(0, f"Node:\t{node + '/' + status.get('hostIP', '') if node else '<none>'}\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{timefmt.rfc1123(status['startTime'])}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    phase = status.get("phase", "")
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {timefmt.since(meta['deletionTimestamp'], now)})\n")
        w.write(0, f"Termination Grace Period:\t{meta.get('deletionGracePeriodSeconds', 30)}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    if status.get("reason"):
        w.write(0, f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        w.write(0, f"Message:\t{status['message']}\n")
    w.write(0, f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else [])
    if ips:
        w.write(0, "IPs:\n")
        for ip in ips:
            w.write(1, f"IP:\t{ip.get('ip', '')}\n")
    else:
        w.write(0, "IPs:\t<none>\n")
    if _controller(pod):
        w.write(0, f"Controlled By:\t{_controller(pod)}\n")
    if status.get("nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", spec["initContainers"], status.get("initContainerStatuses"))
    describe_containers(w, "Containers", spec.get("containers") or [], status.get("containerStatuses"))
    if status.get("conditions"):
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for cond in status["conditions"]:
            w.write(1, f"{cond.get('type', '')} \t{cond.get('status', '')} \n")
    describe_volumes(w, spec.get("volumes") or [])
    w.write(0, f"QoS Class:\t{status.get('qosClass') or 'BestEffort'}\n")
    labels_multiline(w, "Node-Selectors", spec.get("nodeSelector"))
    _tolerations(w, spec.get("tolerations") or [])
    describe_events(w, events, now)
    return w.result()


def describe_pod_template(w: Writer, template: dict[str, Any]) -> None:
    w.write(0, "Pod Template:\n")
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    labels_multiline(w, "  Labels", meta.get("labels"))
    if meta.get("annotations"):
        annotations_multiline(w, "  Annotations", meta["annotations"])
    if spec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", spec["initContainers"], None, "  ")
    describe_containers(w, "Containers", spec.get("containers") or [], None, "  ")
    describe_volumes(w, spec.get("volumes") or [], "  ")


# -- services, deployments, nodes, namespaces ---------------------------------------------------

def describe_service(svc: dict[str, Any], endpoints: dict[str, Any] | None, events: list[dict[str, Any]] | None,
                     now: datetime) -> str:
    w = Writer()
    meta, spec = _meta(svc), svc.get("spec") or {}
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
    return ", ".join(f"{_meta(rs).get('name')} ({(rs.get('status') or {}).get('replicas', 0)}/"
                     f"{(rs.get('spec') or {}).get('replicas', 1)} replicas created)" for rs in sets)


def _template_without_hash(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != "pod-template-hash"}
    meta["labels"] = labels
    return {**template, "metadata": meta}


def describe_deployment(deploy: dict[str, Any], owned: list[dict[str, Any]],
                        events: list[dict[str, Any]] | None, now: datetime) -> str:
    w = Writer()
    meta, spec, status = _meta(deploy), deploy.get("spec") or {}, deploy.get("status") or {}
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
    meta, spec, status = _meta(node), node.get("spec") or {}, node.get("status") or {}
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
        w.write(1, f"{_meta(pod).get('namespace', '')}\t{_meta(pod).get('name', '')}\t0 (0%)\t0 (0%)\t0 (0%)\t"
                   f"0 (0%)\t{timefmt.since(_meta(pod).get('creationTimestamp'), now)}\n")
    describe_events(w, events, now)
    return w.result()


def describe_namespace(ns: dict[str, Any]) -> str:
    w = Writer()
    meta = _meta(ns)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Status:\t{(ns.get('status') or {}).get('phase') or 'Active'}\n")
    w.write(0, "\nNo resource quota.\n")
    w.write(0, "\nNo LimitRange resource.\n")
    return w.result()


def smart_label(field: str) -> str:
    """kubectl's smartLabelFor: `apiVersion` -> `API Version`."""
    if any(not (ch.isalpha() or ch == "-") for ch in field):
        return field
    runs = re.findall(r"[a-z]+|[A-Z]+|[0-9]+|[^a-zA-Z0-9]+", field)
    for i in range(len(runs) - 1):
        if runs[i].isupper() and runs[i + 1].islower():
            runs[i + 1] = runs[i][-1] + runs[i + 1]
            runs[i] = runs[i][:-1]
    parts = [run for run in runs if run]
    acronyms = {"API", "URL", "UID", "OSB", "GUID"}
    return " ".join(p.upper() if p.upper() in acronyms else p[:1].upper() + p[1:] for p in parts if p != "_")


def _unstructured(w: Writer, level: int, content: dict[str, Any], prefix: str, skip: set[str]) -> None:
    for field in sorted(content):
        value = content[field]
        path = f"{prefix}.{field}"
        if path in skip:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(field)}:\n")
            _unstructured(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(field)}:\n")
            for child in value:
                if isinstance(child, dict):
                    _unstructured(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{_go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(field)}:\t{_go_value(value)}\n")


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def describe_generic(obj: dict[str, Any], kind: kinds.Kind, events: list[dict[str, Any]] | None,
                     now: datetime) -> str:
    w = Writer()
    meta = _meta(obj)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    content = {"apiVersion": kind.api_version, "kind": kind.kind, **obj}
    _unstructured(w, 0, content, "", {".metadata.managedFields", ".metadata.name", ".metadata.namespace",
                                      ".metadata.labels", ".metadata.annotations"})
    describe_events(w, events, now)
    return w.result()


# -- the command --------------------------------------------------------------------------------

async def describe(ctx: KubectlContext, kind: kinds.Kind, obj: dict[str, Any], show_events: bool) -> str:
    now = timefmt.now()
    events = await find_events(ctx.api, kind, obj) if show_events else None
    meta = _meta(obj)
    if kind.kind == "Pod":
        return describe_pod(obj, events, now)
    if kind.kind == "Service":
        try:
            endpoints = await ctx.api.get("v1", "Endpoints", meta.get("namespace"), meta["name"])
        except ApiError:
            endpoints = None
        return describe_service(obj, endpoints, events, now)
    if kind.kind == "Deployment":
        selector = tables.selector_string((obj.get("spec") or {}).get("selector"))
        sets = await resources.list_items(ctx.api, resources.lookup("replicasets"), meta.get("namespace"),
                                          label_selector=selector)
        owned = [rs for rs in sets if any(ref.get("uid") == meta.get("uid")
                                          for ref in _meta(rs).get("ownerReferences") or [])]
        return describe_deployment(obj, owned, events, now)
    if kind.kind == "Node":
        node_pods = await resources.list_items(ctx.api, resources.lookup("pods"), None,
                                               field_selector=f"spec.nodeName={meta['name']}")
        return describe_node(obj, node_pods, events, now)
    if kind.kind == "Namespace":
        return describe_namespace(obj)
    return describe_generic(obj, kind, events, now)


async def _matching(ctx: KubectlContext, kind: kinds.Kind, namespace: str | None, name: str
                    ) -> tuple[list[dict[str, Any]], ApiError | None]:
    """The object of that name, or else (as kubectl does) those whose names start with it."""
    obj, error = await resources.get_or_error(ctx.api, kind, namespace, name)
    if obj is not None:
        return [obj], None
    if error.code != 404:
        return [], error
    prefixed = [o for o in await resources.list_items(ctx.api, kind, namespace)
                if _meta(o).get("name", "").startswith(name)]
    return prefixed, None if prefixed else error


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed.args:
        raise KubectlError('You must specify the type of resource to describe. Use "kubectl api-resources" for a '
                           "complete list of supported resources.")
    namespace = None if parsed["all-namespaces"] else parsed["namespace"]
    errors: list[BaseException] = []
    found: list[tuple[kinds.Kind, dict[str, Any]]] = []
    for kind, names in resources.select(parsed.args).requests:
        if names:
            for name in names:
                objects, error = await _matching(ctx, kind, namespace, name)
                if error is not None:
                    errors.append(error)
                found.extend((kind, o) for o in objects)
        else:
            found.extend((kind, o) for o in await resources.list_items(
                ctx.api, kind, namespace, label_selector=parsed["selector"]))
    texts = []
    for kind, obj in found:
        try:
            texts.append(await describe(ctx, kind, obj, parsed["show-events"]))
        except ApiError as exc:
            errors.append(exc)
    emit(ctx.stdout, "\n\n".join(texts))
    if not found and not errors:
        ctx.stderr.write(f"No resources found in {parsed['namespace']} namespace.\n")
    return report(errors, ctx.stderr, ctx.api.address)
