"""Topology files: a `kind: Cluster` document, then ordinary manifests applied in order.

Validation happens before anything is brought up, and every error names the file, the document
(1-based, as a person counts them) and the field. Field-level checks of the manifests themselves
are the apiserver's (strict decoding, as kubectl apply gets them); what is checked here is what
only the topology knows: its nodes, duplicates, kinds, and images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.common import kinds
from harness import images

CLUSTER_FIELDS = {"apiVersion", "kind", "metadata", "nodes", "istio"}
NODE_FIELDS = {"name", "labels"}
ISTIO_PROFILES = {"ambient"}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class TopologyError(Exception):
    """A topology file that cannot be brought up; the message names the file, document and field."""


@dataclass
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    document: int          # 1-based index in the file
    obj: dict[str, Any]

    def describe(self) -> str:
        meta = self.obj.get("metadata") or {}
        name = meta.get("name", "?")
        ns = meta.get("namespace")
        return f"{self.obj.get('kind', '?')} {ns + '/' if ns else ''}{name}"


@dataclass
class Topology:
    path: Path
    name: str
    nodes: list[NodeSpec]
    istio: dict[str, Any] | None
    manifests: list[Manifest]

    def where(self, manifest: Manifest) -> str:
        return f"{self.path}: document {manifest.document} ({manifest.describe()})"


def _err(path: Path, document: int, message: str) -> TopologyError:
    return TopologyError(f"{path}: document {document}: {message}")


def load(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read the topology file: {exc.strerror}") from exc
    return parse(text, path)


def parse(text: str, path: Path = Path("<topology>")) -> Topology:
    documents: list[tuple[int, Any]] = []
    try:
        for index, doc in enumerate(yaml.safe_load_all(text), start=1):
            if doc is not None:
                documents.append((index, doc))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError(f"{path}: invalid YAML{where}: {problem}") from exc
    if not documents:
        raise TopologyError(f"{path}: empty topology: the first document must be `kind: Cluster`")
    first_index, cluster = documents[0]
    name, nodes, istio = _parse_cluster(path, first_index, cluster)
    manifests = [_check_manifest(path, index, doc) for index, doc in documents[1:]]
    topology = Topology(path, name, nodes, istio, manifests)
    _check_duplicates(topology)
    _check_placement(topology)
    return topology


def _parse_cluster(path: Path, index: int, doc: Any) -> tuple[str, list[NodeSpec], dict[str, Any] | None]:
    if not isinstance(doc, dict) or doc.get("kind") != "Cluster":
        raise _err(path, index, "the first document must be `kind: Cluster` (the cluster's name and nodes)")
    unknown = sorted(set(doc) - CLUSTER_FIELDS)
    if unknown:
        raise _err(path, index, f"Cluster: unknown field {unknown[0]!r} (known: {', '.join(sorted(CLUSTER_FIELDS))})")
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not DNS_LABEL.fullmatch(name) or len(name) > 40:
        raise _err(path, index, f"Cluster: metadata.name: {name!r} is not a valid cluster name "
                                "(lowercase letters, digits and '-', at most 40 characters)")
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise _err(path, index, "Cluster: nodes: a list of at least one node is required (the first is the control plane)")
    nodes: list[NodeSpec] = []
    for i, raw in enumerate(raw_nodes):
        field_name = f"Cluster: nodes[{i}]"
        if isinstance(raw, str):
            node = NodeSpec(raw)
        elif isinstance(raw, dict):
            unknown = sorted(set(raw) - NODE_FIELDS)
            if unknown:
                raise _err(path, index, f"{field_name}: unknown field {unknown[0]!r} (known: labels, name)")
            labels = raw.get("labels") or {}
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise _err(path, index, f"{field_name}.labels: must map label names to strings")
            node = NodeSpec(str(raw.get("name", "")), {str(k): v for k, v in labels.items()})
        else:
            raise _err(path, index, f"{field_name}: a node is a name or {{name, labels}}")
        if not DNS_LABEL.fullmatch(node.name) or len(node.name) > 63:
            raise _err(path, index, f"{field_name}.name: {node.name!r} is not a valid node name")
        if any(n.name == node.name for n in nodes):
            raise _err(path, index, f"{field_name}.name: duplicate node {node.name!r}")
        nodes.append(node)
    if len(nodes) > 200:
        raise _err(path, index, "Cluster: nodes: at most 200 nodes (the pod CIDRs are 10.244.0-199.0/24)")
    istio = doc.get("istio")
    if istio is not None:
        if not isinstance(istio, dict) or istio.get("profile") not in ISTIO_PROFILES:
            raise _err(path, index, f"Cluster: istio.profile: must be one of {', '.join(sorted(ISTIO_PROFILES))}")
        unknown = set(istio) - {"profile", "ingressGateway"}
        if unknown:
            raise _err(path, index, f"Cluster: istio: unknown field {sorted(unknown)[0]!r} (known: profile, ingressGateway)")
        if not isinstance(istio.get("ingressGateway", False), bool):
            raise _err(path, index, "Cluster: istio.ingressGateway: must be true or false")
    return name, nodes, istio


def _check_manifest(path: Path, index: int, doc: Any) -> Manifest:
    if not isinstance(doc, dict):
        raise _err(path, index, "a manifest must be a mapping with apiVersion, kind and metadata")
    for required in ("apiVersion", "kind"):
        if not isinstance(doc.get(required), str) or not doc[required]:
            raise _err(path, index, f"{required}: required")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise _err(path, index, f"{doc['kind']}: metadata.name: required")
    if kinds.served(doc["apiVersion"], doc["kind"]) is None:
        raise _err(path, index, f'{doc["kind"]} {meta["name"]}: no matches for kind "{doc["kind"]}" '
                                f'in version "{doc["apiVersion"]}" (unknown kind)')
    return Manifest(index, doc)


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    kind = kinds.served(obj["apiVersion"], obj["kind"])
    assert kind is not None
    group, name = kinds.storage_key(obj["apiVersion"], obj["kind"])
    namespace = (obj["metadata"].get("namespace") or "default") if kind.namespaced else ""
    return group, name, namespace, obj["metadata"]["name"]


def _check_duplicates(topology: Topology) -> None:
    seen: dict[tuple[str, str, str, str], int] = {}
    for manifest in topology.manifests:
        key = _key(manifest.obj)
        if key in seen:
            raise _err(topology.path, manifest.document,
                       f"{manifest.describe()}: duplicate name: document {seen[key]} already defines it")
        seen[key] = manifest.document


def _pod_spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return "spec", spec
    if kind in ("Deployment", "DaemonSet", "ReplicaSet", "StatefulSet", "Job"):
        return "spec.template.spec", (spec.get("template") or {}).get("spec") or {}
    return None


def _check_placement(topology: Topology) -> None:
    """Pods pinned to nodes that do not exist, and containers whose image cannot run."""
    names = {n.name for n in topology.nodes}
    for manifest in topology.manifests:
        found = _pod_spec(manifest.obj)
        if found is None:
            continue
        prefix, spec = found
        where = f"{manifest.describe()}: {prefix}"
        node_name = spec.get("nodeName")
        if node_name and node_name not in names:
            raise _err(topology.path, manifest.document,
                       f"{where}.nodeName: node {node_name!r} does not exist (nodes: {', '.join(sorted(names))})")
        selector = spec.get("nodeSelector") or {}
        if selector and not any(_matches(selector, node_labels(topology, n)) for n in topology.nodes):
            raise _err(topology.path, manifest.document,
                       f"{where}.nodeSelector: no node has the labels {selector}")
        for i, container in enumerate(spec.get("containers") or []):
            if isinstance(container, dict) and not container.get("command") and images.find(container.get("image", "")) is None:
                raise _err(topology.path, manifest.document,
                           f"{where}.containers[{i}].image: image {container.get('image')!r} is not one the emulator "
                           "knows, and the container has no command to run instead")


def node_labels(topology: Topology, node: NodeSpec) -> dict[str, str]:
    """The labels a node carries: Kubernetes' well-known ones, then the topology's."""
    labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    if node is topology.nodes[0]:
        labels["node-role.kubernetes.io/control-plane"] = ""
    labels.update(node.labels)
    return labels



def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == str(v) for k, v in selector.items())
