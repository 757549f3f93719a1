"""Which pods istio-cni captures: the decision table of `PodRedirectionEnabled` and the agent's states."""

from __future__ import annotations

from typing import Any

import pytest

from components.cni import enrollment
from components.cni.enrollment import Capture

AMBIENT = {"istio.io/dataplane-mode": "ambient"}
NONE = {"istio.io/dataplane-mode": "none"}


def ns(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "demo", "labels": labels or {}}}


def pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, ip: str | None = "10.244.1.5",
        phase: str = "Running", namespace: str = "demo", **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    return {"metadata": {"name": "p", "namespace": namespace, "uid": "u", "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app"}], **spec}, "status": status}


@pytest.mark.parametrize("namespace_labels, pod_kwargs, expected", [
    (AMBIENT, {}, Capture.ENROLL),  # namespace label
    ({}, {"labels": AMBIENT}, Capture.ENROLL),  # pod label
    ({}, {}, Capture.OUT),  # neither
    ({"istio.io/dataplane-mode": "other"}, {}, Capture.OUT),  # only "ambient" on the namespace counts
    (AMBIENT, {"labels": NONE}, Capture.OUT),  # the pod opts out
    (AMBIENT, {"labels": {"istio.io/dataplane-mode": "whatever"}}, Capture.ENROLL),  # only "none" opts out
    (AMBIENT, {"annotations": {"sidecar.istio.io/status": "{}"}}, Capture.OUT),  # has a sidecar
    ({}, {"labels": AMBIENT, "annotations": {"sidecar.istio.io/status": "{}"}}, Capture.OUT),
    (AMBIENT, {"hostNetwork": True}, Capture.OUT),  # no netns of its own
    (AMBIENT, {"ip": None}, Capture.NO_IP),  # wants capture, no IP yet
    (AMBIENT, {"phase": "Succeeded"}, Capture.TERMINAL),
    (AMBIENT, {"phase": "Failed"}, Capture.TERMINAL),
    ({}, {"phase": "Failed"}, Capture.TERMINAL),
    (AMBIENT, {"phase": "Pending"}, Capture.ENROLL),
    (AMBIENT, {"namespace": "istio-system", "labels": {"app": "ztunnel"}}, Capture.OUT),  # never ztunnel itself
    (AMBIENT, {"annotations": {"ambient.istio.io/redirection": "enabled"}}, Capture.ENROLL),
    ({}, {"annotations": {"ambient.istio.io/redirection": "enabled"}}, Capture.OUT),  # annotation is not a request
])
def test_decision_table(namespace_labels, pod_kwargs, expected):
    assert enrollment.evaluate(pod(**pod_kwargs), ns(namespace_labels)) is expected


def test_missing_namespace_leaves_the_pod_label():
    assert enrollment.evaluate(pod(labels=AMBIENT), None) is Capture.ENROLL
    assert enrollment.evaluate(pod(), None) is Capture.OUT


def test_pod_ips_prefer_pod_ips_then_pod_ip():
    assert enrollment.pod_ips(pod(ip="10.244.1.7")) == ["10.244.1.7"]
    assert enrollment.pod_ips({"status": {"podIP": "10.244.1.8"}}) == ["10.244.1.8"]
    assert enrollment.pod_ips({"status": {}}) == []


def test_service_account_and_annotation():
    assert enrollment.service_account(pod()) == "default"
    assert enrollment.service_account(pod(serviceAccountName="sleep")) == "sleep"
    assert enrollment.is_annotated(pod(annotations={"ambient.istio.io/redirection": "enabled"}))
    assert not enrollment.is_annotated(pod(annotations={"ambient.istio.io/redirection": "disabled"}))
