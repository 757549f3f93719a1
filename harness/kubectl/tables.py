"""The columns `kubectl get` prints for each kind, and how each cell is derived.

Built-in kinds follow kubectl's printers (k8s.io/kubernetes/pkg/printers/internalversion);
Istio and Gateway API kinds follow their CRDs' additionalPrinterColumns. Anything else prints
NAME and AGE. A cell of None prints empty, as a CRD column without a value does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from components.common import kinds
from harness.kubectl import jsonpath, timefmt

Cell = Callable[[dict[str, Any], datetime], "str | None"]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    wide: bool = False


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: dict[str, Any], _now: datetime) -> str:
    return _meta(obj).get("name", "")


def _age(obj: dict[str, Any], now: datetime) -> str:
    return timefmt.since(_meta(obj).get("creationTimestamp"), now)


NAME = Column("NAME", _name)
AGE = Column("AGE", _age)


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: `a=b,c=d` sorted by key, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: dict[str, Any] | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    if not selector:
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
        text = {"In": f"{key} in ({','.join(values)})", "NotIn": f"{key} notin ({','.join(values)})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key)
        requirements.append((key, text))
    return ",".join(text for _, text in sorted(requirements, key=lambda r: r[0]))


def _wide_selector(obj: dict[str, Any], _now: datetime) -> str:
    return selector_string((obj.get("spec") or {}).get("selector")) or "<none>"


def _containers_images(obj: dict[str, Any]) -> tuple[str, str]:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


WORKLOAD_WIDE = [
    Column("CONTAINERS", lambda o, n: _containers_images(o)[0], True),
    Column("IMAGES", lambda o, n: _containers_images(o)[1], True),
    Column("SELECTOR", _wide_selector, True),
]


# -- pods ---------------------------------------------------------------------------------------

def _terminated_reason(state: dict[str, Any], prefix: str = "") -> str:
    term = state["terminated"]
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _condition_true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def pod_row(pod: dict[str, Any], now: datetime) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS of a pod, derived as kubectl's printPod does."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    restartable = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(restartable)
    ready = restarts = restartable_restarts = 0
    last_restart = last_restartable_restart = None
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def finished(cs: dict[str, Any]) -> datetime | None:
        term = (cs.get("lastState") or {}).get("terminated")
        return timefmt.parse_time(term.get("finishedAt")) if term else None

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += cs.get("restartCount", 0)
        done = finished(cs)
        if done and (last_restart is None or done > last_restart):
            last_restart = done
        is_restartable = cs.get("name") in restartable
        if is_restartable:
            restartable_restarts += cs.get("restartCount", 0)
            if done and (last_restartable_restart is None or done > last_restartable_restart):
                last_restartable_restart = done
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode", 0) == 0:
            continue
        if is_restartable and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if "terminated" in state:
            reason = _terminated_reason(state, "Init:")
        elif "waiting" in state and state["waiting"].get("reason") and state["waiting"]["reason"] != "PodInitializing":
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(pod, "Initialized"):
        restarts, last_restart = restartable_restarts, last_restartable_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            done = finished(cs)
            if done and (last_restart is None or done > last_restart):
                last_restart = done
            state = cs.get("state") or {}
            if "waiting" in state and state["waiting"].get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state:
                reason = _terminated_reason(state)
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    deleting = bool(_meta(pod).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({timefmt.human_duration((now - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_text


def _pod_ip(pod: dict[str, Any], _now: datetime) -> str:
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    return (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"


def _readiness_gates(pod: dict[str, Any], _now: datetime) -> str:
    gates = (pod.get("spec") or {}).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


POD_COLUMNS = [
    NAME,
    Column("READY", lambda o, n: pod_row(o, n)[0]),
    Column("STATUS", lambda o, n: pod_row(o, n)[1]),
    Column("RESTARTS", lambda o, n: pod_row(o, n)[2]),
    AGE,
    Column("IP", _pod_ip, True),
    Column("NODE", lambda o, n: (o.get("spec") or {}).get("nodeName") or "<none>", True),
    Column("NOMINATED NODE", lambda o, n: (o.get("status") or {}).get("nominatedNodeName") or "<none>", True),
    Column("READINESS GATES", _readiness_gates, True),
]


# -- services, endpoints ------------------------------------------------------------------------

def _lb_ingress(svc: dict[str, Any], wide: bool) -> str:
    ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    text = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress if i.get("ip") or i.get("hostname"))
    if not wide and len(text) > 16:
        return text[:13] + "..."
    return text


def service_external_ip(svc: dict[str, Any], wide: bool = False) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        lb = _lb_ingress(svc, wide)
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_ports(svc: dict[str, Any]) -> str:
    pieces = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _cluster_ip(svc: dict[str, Any], _now: datetime) -> str:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return ips[0] if ips else "<none>"


SERVICE_COLUMNS = [
    NAME,
    Column("TYPE", lambda o, n: (o.get("spec") or {}).get("type") or "ClusterIP"),
    Column("CLUSTER-IP", _cluster_ip),
    Column("EXTERNAL-IP", lambda o, n: service_external_ip(o)),
    Column("PORT(S)", lambda o, n: service_ports(o)),
    AGE,
    Column("SELECTOR", lambda o, n: format_labels((o.get("spec") or {}).get("selector")), True),
]


def format_endpoints(endpoints: dict[str, Any], port_names: set[str] | None = None) -> str:
    """`10.244.1.5:8080,10.244.2.6:8080 + 2 more...`: ready addresses, at most three shown;
    `port_names` keeps only the ports of those names (as `describe service` does per port)."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count, limit, more = 0, 3, False
    for subset in subsets:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or []
        if not ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(address.get("ip", ""))
            continue
        for port in ports:
            if port_names is not None and port.get("name", "") not in port_names:
                continue
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                ip = address.get("ip", "")
                host = f"[{ip}]" if ":" in ip else ip
                shown.append(f"{host}:{port.get('port')}")
    text = ",".join(shown)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<none>"


# -- nodes, namespaces --------------------------------------------------------------------------

def node_status(node: dict[str, Any]) -> str:
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    states = []
    if "Ready" in conditions:
        states.append("Ready" if conditions["Ready"].get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def node_roles(node: dict[str, Any]) -> str:
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def node_address(node: dict[str, Any], kind: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == kind:
            return address.get("address", "")
    return "<none>"


def _node_info(field: str) -> Cell:
    return lambda o, n: ((o.get("status") or {}).get("nodeInfo") or {}).get(field) or "<unknown>"


NODE_COLUMNS = [
    NAME,
    Column("STATUS", lambda o, n: node_status(o)),
    Column("ROLES", lambda o, n: node_roles(o)),
    AGE,
    Column("VERSION", lambda o, n: ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")),
    Column("INTERNAL-IP", lambda o, n: node_address(o, "InternalIP"), True),
    Column("EXTERNAL-IP", lambda o, n: node_address(o, "ExternalIP"), True),
    Column("OS-IMAGE", _node_info("osImage"), True),
    Column("KERNEL-VERSION", _node_info("kernelVersion"), True),
    Column("CONTAINER-RUNTIME", _node_info("containerRuntimeVersion"), True),
]


# -- workloads ----------------------------------------------------------------------------------

def _status(obj: dict[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def _spec_replicas(obj: dict[str, Any]) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


DEPLOYMENT_COLUMNS = [
    NAME,
    Column("READY", lambda o, n: f"{_status(o, 'readyReplicas')}/{_spec_replicas(o)}"),
    Column("UP-TO-DATE", lambda o, n: str(_status(o, "updatedReplicas"))),
    Column("AVAILABLE", lambda o, n: str(_status(o, "availableReplicas"))),
    AGE,
    *WORKLOAD_WIDE,
]

REPLICASET_COLUMNS = [
    NAME,
    Column("DESIRED", lambda o, n: str(_spec_replicas(o))),
    Column("CURRENT", lambda o, n: str(_status(o, "replicas"))),
    Column("READY", lambda o, n: str(_status(o, "readyReplicas"))),
    AGE,
    *WORKLOAD_WIDE,
]

DAEMONSET_COLUMNS = [
    NAME,
    Column("DESIRED", lambda o, n: str(_status(o, "desiredNumberScheduled"))),
    Column("CURRENT", lambda o, n: str(_status(o, "currentNumberScheduled"))),
    Column("READY", lambda o, n: str(_status(o, "numberReady"))),
    Column("UP-TO-DATE", lambda o, n: str(_status(o, "updatedNumberScheduled"))),
    Column("AVAILABLE", lambda o, n: str(_status(o, "numberAvailable"))),
    Column("NODE SELECTOR", lambda o, n: format_labels(
        (((o.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector"))),
    AGE,
    *WORKLOAD_WIDE,
]


# -- events -------------------------------------------------------------------------------------

def _event_times(event: dict[str, Any], now: datetime) -> tuple[str, str, int]:
    first = timefmt.since(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = timefmt.since(event.get("eventTime"), now)
    last = timefmt.since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = int(event.get("count") or 0)
    series = event.get("series")
    if series:
        last = timefmt.since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count > 1:
        last = f"{last} (x{count} over {first})"
    return first, last, count


def event_object(event: dict[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def _event_source(event: dict[str, Any]) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


EVENT_COLUMNS = [
    Column("LAST SEEN", lambda o, n: _event_times(o, n)[1]),
    Column("TYPE", lambda o, n: o.get("type", "")),
    Column("REASON", lambda o, n: o.get("reason", "")),
    Column("OBJECT", lambda o, n: event_object(o)),
    Column("SUBOBJECT", lambda o, n: (o.get("involvedObject") or {}).get("fieldPath", ""), True),
    Column("SOURCE", lambda o, n: _event_source(o), True),
    Column("MESSAGE", lambda o, n: (o.get("message") or "").strip()),
    Column("FIRST SEEN", lambda o, n: _event_times(o, n)[0], True),
    Column("COUNT", lambda o, n: str(_event_times(o, n)[2]), True),
    Column("NAME", _name, True),
]


# -- custom resources ---------------------------------------------------------------------------

def crd_column(header: str, path: str, kind: str = "string", wide: bool = False) -> Column:
    """An additionalPrinterColumn: the first value the JSONPath finds, blank without one."""
    template = jsonpath.JSONPath("{" + path + "}")

    def cell(obj: dict[str, Any], now: datetime) -> str | None:
        try:
            results = template.find_results(obj)
        except jsonpath.JSONPathError:
            return None
        if not results or not results[0]:
            return None
        value = results[0][0]
        if kind == "date":
            return timefmt.since(value, now) if isinstance(value, str) else None
        return jsonpath.format_results([value])

    return Column(header, cell, wide)


CRD_AGE = crd_column("AGE", ".metadata.creationTimestamp", "date")

COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Pod"): POD_COLUMNS,
    ("", "Service"): SERVICE_COLUMNS,
    ("", "Endpoints"): [NAME, Column("ENDPOINTS", lambda o, n: format_endpoints(o)), AGE],
    ("", "Namespace"): [NAME, Column("STATUS", lambda o, n: (o.get("status") or {}).get("phase") or "Active"), AGE],
    ("", "Node"): NODE_COLUMNS,
    ("", "ServiceAccount"): [NAME, Column("SECRETS", lambda o, n: str(len(o.get("secrets") or []))), AGE],
    ("", "ConfigMap"): [NAME, Column("DATA", lambda o, n: str(len(o.get("data") or {})
                                                              + len(o.get("binaryData") or {}))), AGE],
    ("", "Secret"): [NAME, Column("TYPE", lambda o, n: o.get("type") or "Opaque"),
                     Column("DATA", lambda o, n: str(len(o.get("data") or {}))), AGE],
    ("", "Event"): EVENT_COLUMNS,
    ("apps", "Deployment"): DEPLOYMENT_COLUMNS,
    ("apps", "ReplicaSet"): REPLICASET_COLUMNS,
    ("apps", "DaemonSet"): DAEMONSET_COLUMNS,
    ("security.istio.io", "AuthorizationPolicy"): [NAME, crd_column("ACTION", ".spec.action"), CRD_AGE],
    ("security.istio.io", "PeerAuthentication"): [NAME, crd_column("MODE", ".spec.mtls.mode"), CRD_AGE],
    ("networking.istio.io", "VirtualService"): [NAME, crd_column("GATEWAYS", ".spec.gateways"),
                                                crd_column("HOSTS", ".spec.hosts"), CRD_AGE],
    ("networking.istio.io", "DestinationRule"): [NAME, crd_column("HOST", ".spec.host"), CRD_AGE],
    ("gateway.networking.k8s.io", "Gateway"): [
        NAME, crd_column("CLASS", ".spec.gatewayClassName"), crd_column("ADDRESS", ".status.addresses[*].value"),
        crd_column("PROGRAMMED", '.status.conditions[?(@.type=="Programmed")].status'), CRD_AGE],
    ("gateway.networking.k8s.io", "HTTPRoute"): [NAME, crd_column("HOSTNAMES", ".spec.hostnames"), CRD_AGE],
    ("gateway.networking.k8s.io", "GatewayClass"): [
        NAME, crd_column("CONTROLLER", ".spec.controllerName"),
        crd_column("ACCEPTED", '.status.conditions[?(@.type=="Accepted")].status'), CRD_AGE,
        crd_column("DESCRIPTION", ".spec.description", wide=True)],
}


def columns_for(kind: kinds.Kind, wide: bool) -> list[Column]:
    return [c for c in COLUMNS.get((kind.group, kind.kind), [NAME, AGE]) if wide or not c.wide]
