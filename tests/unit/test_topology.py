"""Topology validation: every error names the file, the document and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import topology
from harness.topology import TopologyError

REPO = Path(__file__).resolve().parents[2]
HEAD = "kind: Cluster\nmetadata: {name: demo}\nnodes: [control-plane, worker]\n"


def parse(text: str) -> topology.Topology:
    return topology.parse(text, Path("t.yaml"))


def test_default_topology_is_seed_002s_cluster() -> None:
    topo = topology.load(REPO / "topologies" / "default.yaml")
    assert topo.name == "ambient"
    assert [n.name for n in topo.nodes] == ["ambient-control-plane", "ambient-worker", "ambient-worker2"]
    kinds = [(m.obj["kind"], m.obj["metadata"]["name"]) for m in topo.manifests]
    assert ("Deployment", "httpbin") in kinds and ("Deployment", "notsleep") in kinds
    assert topo.istio is None


def test_bookinfo_topology_is_seed_001s_cluster_with_the_samples_as_written() -> None:
    topo = topology.load(REPO / "topologies" / "bookinfo.yaml")
    assert (topo.name, topo.istio) == ("bookinfo", {"profile": "ambient", "ingressGateway": True})
    assert [n.name for n in topo.nodes] == ["ambient-control-plane", "ambient-worker", "ambient-worker2"]
    samples = [doc for name in ("bookinfo/platform/kube/bookinfo.yaml", "sleep/sleep.yaml", "sleep/notsleep.yaml")
               for doc in yaml.safe_load_all((REPO / "samples" / name).read_text()) if doc]
    assert [m.obj for m in topo.manifests] == samples
    assert not any(m.obj["kind"] == "Namespace" for m in topo.manifests)


def test_nodes_as_names_or_mappings_and_their_labels() -> None:
    topo = parse("kind: Cluster\nmetadata: {name: demo}\nnodes: [cp, {name: w, labels: {zone: a}}]\n")
    assert [n.name for n in topo.nodes] == ["cp", "w"]
    cp_labels = topology.node_labels(topo, topo.nodes[0])
    assert cp_labels["node-role.kubernetes.io/control-plane"] == ""
    w_labels = topology.node_labels(topo, topo.nodes[1])
    assert w_labels["zone"] == "a" and w_labels["kubernetes.io/hostname"] == "w"
    assert "node-role.kubernetes.io/control-plane" not in w_labels


@pytest.mark.parametrize("text, message", [
    ("nodes: [a]\n", "t.yaml: document 1: the first document must be `kind: Cluster`"),
    ("kind: Cluster\nmetadata: {name: Demo}\nnodes: [a]\n", "metadata.name: 'Demo' is not a valid cluster name"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: []\n", "nodes: a list of at least one node is required"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: [a, a]\n", "nodes[1].name: duplicate node 'a'"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: [{name: a, role: x}]\n", "nodes[0]: unknown field 'role'"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: [a]\nworkers: 3\n", "Cluster: unknown field 'workers'"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: [a]\nistio: {profile: minimal}\n", "istio.profile: must be one of ambient"),
    ("kind: Cluster\nmetadata: {name: d}\nnodes: [a\n", "t.yaml: invalid YAML at line"),
    ("", "empty topology"),
])
def test_cluster_document_errors(text: str, message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("manifest, message", [
    ("kind: Pod\nmetadata: {name: p}\n", "document 2: apiVersion: required"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "document 2: Pod: metadata.name: required"),
    ("apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n", 'document 2: Widget w: no matches for kind "Widget" in version "v1"'),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: nowhere, containers: [{name: c, image: busybox}]}\n",
     "document 2: Pod p: spec.nodeName: node 'nowhere' does not exist (nodes: control-plane, worker)"),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n"
     "      nodeSelector: {disk: ssd}\n      containers: [{name: c, image: busybox}]\n",
     "Deployment d: spec.template.spec.nodeSelector: no node has the labels {'disk': 'ssd'}"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec: {containers: [{name: c, image: acme/thing:2}]}\n",
     "Pod x/p: spec.containers[0].image: image 'acme/thing:2' is not one the emulator knows"),
])
def test_manifest_errors_name_document_object_and_field(manifest: str, message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        parse(HEAD + "---\n" + manifest)
    assert message in str(caught.value)


def test_duplicates_count_default_namespace_and_api_versions_as_one() -> None:
    text = (HEAD + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s}\n"
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s, namespace: default}\n")
    with pytest.raises(TopologyError, match="document 3: ServiceAccount default/s: duplicate name: document 2"):
        parse(text)
    text = (HEAD + "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
            "---\napiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n")
    with pytest.raises(TopologyError, match="duplicate name"):
        parse(text)


def test_same_name_in_other_namespaces_or_kinds_is_fine() -> None:
    text = (HEAD + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s, namespace: a}\n"
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s, namespace: b}\n"
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n")
    assert len(parse(text).manifests) == 3


def test_a_container_with_a_command_runs_whatever_its_image() -> None:
    text = HEAD + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: acme/x, command: [sleep, '5']}]}\n"
    assert parse(text).manifests[0].describe() == "Pod p"
