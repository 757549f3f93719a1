"""kubectl's JSONPath dialect."""

from __future__ import annotations

from typing import Any

import pytest

from harness.kubectl.jsonpath import JSONPath, JSONPathError, relaxed

PODS: dict[str, Any] = {"kind": "List", "items": [
    {"metadata": {"name": "httpbin", "labels": {"app": "httpbin", "app.kubernetes.io/name": "h"}},
     "spec": {"containers": [{"name": "httpbin", "ports": [{"containerPort": 8080}]}]},
     "status": {"phase": "Running", "podIP": "10.244.2.6",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]}},
    {"metadata": {"name": "sleep"},
     "spec": {"containers": [{"name": "sleep"}, {"name": "istio-proxy", "ports": [{"containerPort": 15090}]}]},
     "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}},
]}


@pytest.mark.parametrize("template, expected", [
    ("{.items[0].metadata.name}", "httpbin"),
    ("{.items[*].metadata.name}", "httpbin sleep"),
    ("{.items[*].status.podIP}", "10.244.2.6"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', "httpbin\tRunning\nsleep\tPending\n"),
    ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.items[?(@.status.phase!='Running')].metadata.name}", "sleep"),
    ("{.items[?(@.status.podIP)].metadata.name}", "httpbin"),
    ("{.items[*].spec.containers[?(@.ports[0].containerPort>10000)].name}", "istio-proxy"),
    ("{.items[-1].metadata.name}", "sleep"),
    ("{.items[0:1].metadata.name}", "httpbin"),
    ("{.items[1].spec.containers[*].name}", "sleep istio-proxy"),
    ("{.items[0,1].metadata.name}", "httpbin sleep"),
    ("{.items[0]['metadata']['name']}", "httpbin"),
    ("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", "h"),
    ("{..containerPort}", "8080 15090"),
    ("{.items[0].metadata.labels}", '{"app":"httpbin","app.kubernetes.io/name":"h"}'),
    ("{.items[1].status.conditions}", '[{"status":"False","type":"Ready"}]'),
    ("{.items[1:1].metadata.name}", ""),
    ("{.missing.field}", ""),
    ("name: {.items[0].metadata.name}\\n", "name: httpbin\\n"),
    ("{range .items[*]}[{range .spec.containers[*]}{.name},{end}]{end}", "[httpbin,][sleep,istio-proxy,]"),
    ("{.kind} {@.kind} {$.kind}", "List List List"),
])
def test_templates(template: str, expected: str) -> None:
    assert JSONPath(template).execute(PODS) == expected


def test_as_json() -> None:
    assert JSONPath("{.items[*].metadata.name}").execute(PODS, as_json=True) == '[\n    "httpbin",\n    "sleep"\n]\n'


@pytest.mark.parametrize("template, message", [
    ("{.items[5]}", "array index out of bounds: index 5, length 2"),
    ("{.kind[0]}", "string is not array or slice"),
    ("{.items[?(@.status.phase==1)]}", "incompatible types for comparison"),
    ("{end}", "not in range, nothing to end"),
])
def test_evaluation_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError, match=message.replace("[", r"\[")):
        JSONPath(template).execute(PODS)


@pytest.mark.parametrize("template", ["{.items[0]", "{.items[}", '{"unterminated}', "{.a[?(@.x==1]}"])
def test_parse_errors(template: str) -> None:
    with pytest.raises(JSONPathError, match="error parsing jsonpath"):
        JSONPath(template)


def test_missing_keys_can_be_errors() -> None:
    with pytest.raises(JSONPathError, match="missing is not found"):
        JSONPath("{.missing}", allow_missing_keys=False).execute(PODS)


def test_relaxed_expressions() -> None:
    assert relaxed(".metadata.name") == "{.metadata.name}"
    assert relaxed("metadata.name") == "{.metadata.name}"
    assert relaxed("{.status.phase}") == "{.status.phase}"
    with pytest.raises(JSONPathError):
        relaxed("{a}{b}")
