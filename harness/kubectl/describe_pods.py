"""`kubectl describe` layouts of pods and pod templates (containers, probes, environment,
mounts, volumes), as kubectl's describePod and DescribePodTemplate print them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.kubectl import timefmt
from harness.kubectl.describe_writer import (Writer, annotations_multiline, controller_of, describe_events,
                                             labels_multiline, meta_of)

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
    meta, spec, status = meta_of(pod), pod.get("spec") or {}, pod.get("status") or {}
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
    if controller_of(pod):
        w.write(0, f"Controlled By:\t{controller_of(pod)}\n")
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
