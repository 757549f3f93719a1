"""Which nodes a pod may run on: node selectors and affinity, taints and tolerations, and
inter-pod (anti-)affinity, with the scheduler's reasons when a node does not fit."""

from __future__ import annotations

from typing import Any

from components.apiserver import meta, selectors

Obj = dict[str, Any]

HOSTNAME = "kubernetes.io/hostname"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(spec: Obj, node: Obj, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> Obj | None:
    """The first taint of the node with one of `effects` that the pod does not tolerate."""
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _term_matches_node(term: Obj, node: Obj) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = meta.labels_of(node)
    return all(selectors.expression_matches(e, labels) for e in expressions) and \
        all(selectors.expression_matches(f, {"metadata.name": meta.name_of(node)}) for f in fields)


def node_affinity_matches(spec: Obj, node: Obj) -> bool:
    """nodeSelector and required node affinity."""
    labels = meta.labels_of(node)
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(_term_matches_node(t, node) for t in required.get("nodeSelectorTerms") or [])


def topology_value(node: Obj, key: str) -> str | None:
    value = meta.labels_of(node).get(key)
    if value is None and key == HOSTNAME:
        return meta.name_of(node)
    return value


def _required_terms(pod: Obj, kind: str) -> list[Obj]:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    return (affinity.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []


def _term_selects(term: Obj, owner: Obj, other: Obj, namespaces: dict[str, Obj]) -> bool:
    """Whether `other` is one of the pods a (anti-)affinity term of `owner` is about."""
    other_ns = meta.namespace_of(other)
    names = term.get("namespaces") or []
    ns_selector = term.get("namespaceSelector")
    if names or ns_selector is not None:
        in_names = other_ns in names
        in_selected = ns_selector is not None and selectors.selector_matches(
            ns_selector, meta.labels_of(namespaces.get(other_ns, {})))
        if not in_names and not in_selected:
            return False
    elif other_ns != meta.namespace_of(owner):
        return False
    return selectors.selector_matches(term.get("labelSelector"), meta.labels_of(other))


class Cluster:
    """What the scheduler knows about while placing pods: nodes and the pods bound to them."""

    def __init__(self, nodes: list[Obj], pods: list[Obj], namespaces: list[Obj]):
        self.nodes = {meta.name_of(n): n for n in nodes}
        self.namespaces = {meta.name_of(n): n for n in namespaces}
        self.bound = [p for p in pods if (p.get("spec") or {}).get("nodeName") and not meta.is_pod_terminal(p)]

    def add(self, pod: Obj) -> None:
        self.bound.append(pod)

    def pod_count(self, node_name: str) -> int:
        return sum(1 for p in self.bound if p["spec"]["nodeName"] == node_name)

    def _same_domain(self, pod: Obj, node: Obj, key: str) -> bool:
        mine = topology_value(node, key)
        other = self.nodes.get(pod["spec"]["nodeName"])
        return mine is not None and other is not None and topology_value(other, key) == mine

    def _inter_pod(self, pod: Obj, node: Obj) -> str | None:
        for other in self.bound:
            for term in _required_terms(other, "podAntiAffinity"):
                if _term_selects(term, other, pod, self.namespaces) and \
                        self._same_domain(other, node, term.get("topologyKey", "")):
                    return "node(s) didn't satisfy existing pods anti-affinity rules"
        for term in _required_terms(pod, "podAntiAffinity"):
            key = term.get("topologyKey", "")
            if any(_term_selects(term, pod, o, self.namespaces) and self._same_domain(o, node, key)
                   for o in self.bound):
                return "node(s) didn't match pod anti-affinity rules"
        for term in _required_terms(pod, "podAffinity"):
            key = term.get("topologyKey", "")
            matching = [o for o in self.bound if _term_selects(term, pod, o, self.namespaces)]
            if matching:
                if not any(self._same_domain(o, node, key) for o in matching):
                    return "node(s) didn't match pod affinity rules"
            elif not _term_selects(term, pod, pod, self.namespaces) or topology_value(node, key) is None:
                return "node(s) didn't match pod affinity rules"
        return None

    def misfit(self, pod: Obj, node: Obj) -> tuple[str, bool] | None:
        """Why the pod cannot go to the node (and whether preemption could help), or None if it fits."""
        spec = pod.get("spec") or {}
        if (node.get("spec") or {}).get("unschedulable") and \
                not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in spec.get("tolerations") or []):
            return "node(s) were unschedulable", False
        taint = untolerated_taint(spec, node)
        if taint is not None:
            return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}", False
        if not node_affinity_matches(spec, node):
            return "node(s) didn't match Pod's node affinity/selector", False
        reason = self._inter_pod(pod, node)
        return (reason, True) if reason else None


def daemon_node_eligible(spec: Obj, node: Obj) -> bool:
    """Whether a DaemonSet runs a pod on a node (unschedulable nodes included, as in Kubernetes)."""
    return node_affinity_matches(spec, node) and untolerated_taint(spec, node) is None
