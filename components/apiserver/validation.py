"""Semantic validation of the built-in kinds: the 422 Invalid errors kube-apiserver answers for
manifests that decode but make no sense (missing names and images, selectors that do not match
their template, ports out of range), with Kubernetes' field paths and messages."""

from __future__ import annotations

import re
from typing import Any, Callable

from components.apiserver import selectors
from components.apiserver.errors import FieldError, GoLiteral

Obj = dict[str, Any]
Errors = list[FieldError]

DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                 "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                 "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
               "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
QUALIFIED_NAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                  "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                  "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
PORT_RANGE = "must be between 1 and 65535, inclusive"

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAME_PART_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")


def dns1123_label(value: str) -> list[str]:
    problems = [] if _LABEL_RE.match(value) else [DNS1123_LABEL]
    return problems + (["must be no more than 63 characters"] if len(value) > 63 else [])


def dns1123_subdomain(value: str) -> list[str]:
    problems = [] if _SUBDOMAIN_RE.match(value) else [DNS1123_SUBDOMAIN]
    return problems + (["must be no more than 253 characters"] if len(value) > 253 else [])


def dns1035_label(value: str) -> list[str]:
    problems = [] if _DNS1035_RE.match(value) else [DNS1035_LABEL]
    return problems + (["must be no more than 63 characters"] if len(value) > 63 else [])


def port_name(value: str) -> list[str]:
    """An IANA service name, as a named container port or targetPort must be."""
    problems = []
    if len(value) > 15:
        problems.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS_RE.match(value):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        problems.append("must contain at least one letter (a-z)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def _qualified_name(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and (not prefix or dns1123_subdomain(prefix)):
        problems += ["prefix part " + p for p in dns1123_subdomain(prefix) or ["must be non-empty"]]
    if not _NAME_PART_RE.match(name):
        problems.append(QUALIFIED_NAME)
    if len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    return problems


def _labels(labels: dict[str, str] | None, field: str) -> Errors:
    errors = []
    for key, value in (labels or {}).items():
        errors += [FieldError("Invalid", field, key, p) for p in _qualified_name(key)]
        if value and not _NAME_PART_RE.match(value):
            errors.append(FieldError("Invalid", field, value, LABEL_VALUE))
        if len(value) > 63:
            errors.append(FieldError("Invalid", field, value, "must be no more than 63 characters"))
    return errors


def _supported(value: Any, field: str, supported: list[str]) -> Errors:
    if value in (None, "") or value in supported:
        return []
    return [FieldError("NotSupported", field, value, supported=sorted(supported))]


def _port(value: Any, field: str, required: bool = True) -> Errors:
    if not value:
        return [FieldError("Required", field)] if required else []
    if not 1 <= value <= 65535:
        return [FieldError("Invalid", field, value, PORT_RANGE)]
    return []


def object_meta(meta: Obj, name_rule: Callable[[str], list[str]]) -> Errors:
    name = meta.get("name") or ""
    if not name:
        return [FieldError("Required", "metadata.name", detail="name or generateName is required")]
    errors = [FieldError("Invalid", "metadata.name", name, p) for p in name_rule(name)]
    errors += _labels(meta.get("labels"), "metadata.labels")
    return errors


# -- pods -----------------------------------------------------------------------------------------

def _containers(containers: list[Obj], field: str, volumes: set[str], seen: set[str]) -> Errors:
    errors: Errors = []
    for index, container in enumerate(containers):
        at = f"{field}[{index}]"
        name = container.get("name") or ""
        if not name:
            errors.append(FieldError("Required", f"{at}.name"))
        elif name in seen:
            errors.append(FieldError("Duplicate", f"{at}.name", name))
        else:
            errors += [FieldError("Invalid", f"{at}.name", name, p) for p in dns1123_label(name)]
        seen.add(name)
        if not container.get("image"):
            errors.append(FieldError("Required", f"{at}.image"))
        errors += _supported(container.get("imagePullPolicy"), f"{at}.imagePullPolicy",
                             ["Always", "IfNotPresent", "Never"])
        for port_index, port in enumerate(container.get("ports") or []):
            port_at = f"{at}.ports[{port_index}]"
            errors += _port(port.get("containerPort"), f"{port_at}.containerPort")
            if port.get("name"):
                errors += [FieldError("Invalid", f"{port_at}.name", port["name"], p) for p in port_name(port["name"])]
            errors += _supported(port.get("protocol"), f"{port_at}.protocol", ["SCTP", "TCP", "UDP"])
        for mount_index, mount in enumerate(container.get("volumeMounts") or []):
            mount_at = f"{at}.volumeMounts[{mount_index}]"
            if not mount.get("name"):
                errors.append(FieldError("Required", f"{mount_at}.name"))
            elif mount["name"] not in volumes:
                errors.append(FieldError("NotFound", f"{mount_at}.name", mount["name"]))
            if not mount.get("mountPath"):
                errors.append(FieldError("Required", f"{mount_at}.mountPath"))
    return errors


def pod_spec(spec: Obj, field: str) -> Errors:
    errors: Errors = []
    volumes: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name") or ""
        if not name:
            errors.append(FieldError("Required", f"{field}.volumes[{index}].name"))
        elif name in volumes:
            errors.append(FieldError("Duplicate", f"{field}.volumes[{index}].name", name))
        volumes.add(name)
    if not spec.get("containers"):
        errors.append(FieldError("Required", f"{field}.containers"))
    seen: set[str] = set()
    errors += _containers(spec.get("containers") or [], f"{field}.containers", volumes, seen)
    errors += _containers(spec.get("initContainers") or [], f"{field}.initContainers", volumes, seen)
    errors += _supported(spec.get("restartPolicy"), f"{field}.restartPolicy", ["Always", "OnFailure", "Never"])
    errors += _supported(spec.get("dnsPolicy"), f"{field}.dnsPolicy",
                         ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"])
    for index, toleration in enumerate(spec.get("tolerations") or []):
        at = f"{field}.tolerations[{index}]"
        errors += _supported(toleration.get("operator"), f"{at}.operator", ["Equal", "Exists"])
        errors += _supported(toleration.get("effect"), f"{at}.effect", ["NoExecute", "NoSchedule", "PreferNoSchedule"])
    return errors


def pod(obj: Obj) -> Errors:
    return object_meta(obj.get("metadata", {}), dns1123_subdomain) + pod_spec(obj.get("spec") or {}, "spec")


# -- workloads ------------------------------------------------------------------------------------

def _workload(obj: Obj, kind: str) -> Errors:
    spec = obj.get("spec") or {}
    errors = object_meta(obj.get("metadata", {}), dns1123_subdomain)
    selector = spec.get("selector")
    if selector is None:
        errors.append(FieldError("Required", "spec.selector"))
    elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errors.append(FieldError("Invalid", "spec.selector", GoLiteral(
            "v1.LabelSelector{MatchLabels:map[string]string(nil), "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"),
            f"empty selector is invalid for {kind}"))
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels")
    if not selectors.selector_matches(selector, template_labels or {}):
        errors.append(FieldError("Invalid", "spec.template.metadata.labels", template_labels,
                                 "`selector` does not match template `labels`"))
    errors += _labels(template_labels, "spec.template.metadata.labels")
    template_spec = template.get("spec") or {}
    errors += pod_spec(template_spec, "spec.template.spec")
    if template_spec.get("restartPolicy") not in (None, "Always"):
        errors.append(FieldError("NotSupported", "spec.template.spec.restartPolicy", template_spec["restartPolicy"],
                                 supported=["Always"]))
    return errors


def deployment(obj: Obj) -> Errors:
    spec = obj.get("spec") or {}
    errors = _workload(obj, "deployment")
    replicas = spec.get("replicas")
    if replicas is not None and replicas < 0:
        errors.append(FieldError("Invalid", "spec.replicas", replicas, "must be greater than or equal to 0"))
    errors += _supported((spec.get("strategy") or {}).get("type"), "spec.strategy.type", ["Recreate", "RollingUpdate"])
    return errors


def daemon_set(obj: Obj) -> Errors:
    strategy = ((obj.get("spec") or {}).get("updateStrategy") or {}).get("type")
    return _workload(obj, "daemonset") + _supported(strategy, "spec.updateStrategy.type", ["OnDelete", "RollingUpdate"])


# -- services -------------------------------------------------------------------------------------

def service(obj: Obj) -> Errors:
    spec = obj.get("spec") or {}
    errors = object_meta(obj.get("metadata", {}), dns1035_label)
    kind = spec.get("type") or "ClusterIP"
    errors += _supported(kind, "spec.type", ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    errors += _supported(spec.get("sessionAffinity"), "spec.sessionAffinity", ["ClientIP", "None"])
    if kind == "ExternalName" and not spec.get("externalName"):
        errors.append(FieldError("Required", "spec.externalName"))
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        errors.append(FieldError("Required", "spec.ports"))
    names: set[str] = set()
    for index, port in enumerate(ports):
        at = f"spec.ports[{index}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errors.append(FieldError("Required", f"{at}.name"))
        elif name in names:
            errors.append(FieldError("Duplicate", f"{at}.name", name))
        elif name:
            errors += [FieldError("Invalid", f"{at}.name", name, p) for p in dns1123_label(name)]
        names.add(name)
        errors += _port(port.get("port"), f"{at}.port")
        errors += _supported(port.get("protocol"), f"{at}.protocol", ["SCTP", "TCP", "UDP"])
        target = port.get("targetPort")
        if isinstance(target, int):
            errors += _port(target, f"{at}.targetPort", required=False)
        elif target:
            errors += [FieldError("Invalid", f"{at}.targetPort", target, p) for p in port_name(target)]
    return errors


# -- everything else ------------------------------------------------------------------------------

def node(obj: Obj) -> Errors:
    errors = object_meta(obj.get("metadata", {}), dns1123_subdomain)
    for index, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        if not taint.get("key"):
            errors.append(FieldError("Required", f"spec.taints[{index}].key"))
        errors += _supported(taint.get("effect") or None, f"spec.taints[{index}].effect",
                             ["NoExecute", "NoSchedule", "PreferNoSchedule"])
        if not taint.get("effect"):
            errors.append(FieldError("Required", f"spec.taints[{index}].effect"))
    return errors


def namespace(obj: Obj) -> Errors:
    return object_meta(obj.get("metadata", {}), dns1123_label)


def generic(obj: Obj) -> Errors:
    return object_meta(obj.get("metadata", {}), dns1123_subdomain)


VALIDATORS: dict[tuple[str, str], Callable[[Obj], Errors]] = {
    ("", "Pod"): pod, ("", "Service"): service, ("", "Node"): node, ("", "Namespace"): namespace,
    ("apps", "Deployment"): deployment, ("apps", "DaemonSet"): daemon_set,
}


def validate(group_kind: tuple[str, str], obj: Obj) -> Errors:
    """Field errors of an object about to be stored (after defaulting)."""
    return VALIDATORS.get(group_kind, generic)(obj)
