"""Reading -f sources: YAML streams, JSON, lists, errors as kubectl reports them, and the merges
that apply and patch compute."""

from __future__ import annotations

import pytest

from harness.kubectl import manifests, merge
from harness.kubectl.errors import KubectlError


def names(items: list[manifests.Item]) -> list[str]:
    return [item.obj["metadata"]["name"] for item in items]


def test_yaml_stream_with_separators_comments_and_empty_documents() -> None:
    text = (b"# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
            b"data:\n  when: 2024-03-17\n  port: 80\n--- # next\n---\n"
            b"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n")
    items, errors = manifests.parse(text, "x.yaml")
    assert (names(items), errors) == (["a", "b"], [])
    assert items[0].obj["data"] == {"when": "2024-03-17", "port": 80}
    assert items[0].source == "x.yaml"


def test_json_stream() -> None:
    items, errors = manifests.parse(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}\n'
                                    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}', "STDIN")
    assert (names(items), errors) == (["a", "b"], [])


def test_a_broken_document_stops_its_source_after_the_good_ones() -> None:
    text = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n"
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: [x\n---\n"
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    items, errors = manifests.parse(text, "x.yaml")
    assert names(items) == ["a"]
    assert [e.message for e in errors] == ["error parsing x.yaml: error converting YAML to JSON: yaml: line 6: "
                                           "did not find expected ',' or ']'"]


def test_validation_errors() -> None:
    _, errors = manifests.parse(b"metadata:\n  name: a\n", "x.yaml")
    assert errors[0].message == ('error validating "x.yaml": error validating data: [apiVersion not set, kind not '
                                 "set]; if you choose to ignore these errors, turn validation off with "
                                 "--validate=false")
    _, errors = manifests.parse(b"- a\n- b\n", "x.yaml")
    assert errors[0].message == ('unable to decode "x.yaml": json: cannot unmarshal array into Go value of type '
                                 "map[string]interface {}")
    with pytest.raises(KubectlError, match="invalid Yaml document separator: nope"):
        manifests.split_documents("a: 1\n---nope\n")


def test_three_way_merge_keeps_undeclared_fields_and_merges_containers_by_name() -> None:
    original = {"spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "app", "image": "a:1", "env": [{"name": "OLD", "value": "x"}]}]}}}}
    modified = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}
    current = {"metadata": {"uid": "u"}, "spec": {"replicas": 1, "revisionHistoryLimit": 10, "template": {"spec": {
        "containers": [{"name": "app", "image": "a:1", "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "OLD", "value": "x"}]},
                       {"name": "istio-proxy", "image": "proxy"}]}}}}
    merged = merge.three_way(original, modified, current)
    assert merged == {"metadata": {"uid": "u"}, "spec": {"replicas": 2, "revisionHistoryLimit": 10, "template": {
        "spec": {"containers": [{"name": "app", "image": "a:2", "imagePullPolicy": "IfNotPresent"},
                                {"name": "istio-proxy", "image": "proxy"}]}}}}


def test_strategic_merge_patch_directives() -> None:
    current = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}],
                        "tolerations": [{"key": "x"}], "nodeSelector": {"k": "v"}}}
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "c", "image": "3"}],
                      "tolerations": [{"key": "y"}], "nodeSelector": None}}
    assert merge.strategic_merge(current, patch) == {"spec": {
        "containers": [{"name": "a", "image": "1"}, {"name": "c", "image": "3"}], "tolerations": [{"key": "y"}]}}


def test_json_and_merge_patches() -> None:
    doc = {"spec": {"ports": [{"port": 80}], "selector": {"app": "a"}}}
    patched = merge.json_patch(doc, [{"op": "add", "path": "/spec/ports/-", "value": {"port": 443}},
                                     {"op": "remove", "path": "/spec/selector/app"},
                                     {"op": "test", "path": "/spec/ports/0/port", "value": 80}])
    assert patched == {"spec": {"ports": [{"port": 80}, {"port": 443}], "selector": {}}}
    with pytest.raises(KubectlError, match="test failed"):
        merge.json_patch(doc, [{"op": "test", "path": "/spec/ports/0/port", "value": 81}])
    assert merge.merge_patch(doc, {"spec": {"selector": None, "type": "NodePort"}}) == {
        "spec": {"ports": [{"port": 80}], "type": "NodePort"}}
