"""Pure parts of the kubelet side: images, pod IPs, readiness reasons, pod status patches."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from components.apiserver.patch import merge_patch
from harness import images, network, readiness
from harness.pod_worker import PodWorker


@pytest.mark.parametrize("image, repo", [
    ("docker.io/kennethreitz/httpbin", "kennethreitz/httpbin"),
    ("docker.io/mccutchen/go-httpbin:v2.15.0", "mccutchen/go-httpbin"),
    ("curlimages/curl", "curlimages/curl"),
    ("registry.k8s.io/coredns/coredns:v1.11.1", "coredns/coredns"),
    ("localhost:5000/busybox:1.36", "busybox"),
    ("busybox@sha256:abc", "busybox"),
])
def test_repository_strips_registry_tag_and_digest(image: str, repo: str) -> None:
    assert images.repository(image) == repo


def test_command_and_args_follow_kubernetes_rules() -> None:
    env = {"NODE_NAME": "worker", "AMBIENT_APISERVER": "172.18.0.2:6443"}
    assert images.argv_for({"name": "s", "image": "curlimages/curl", "command": ["/bin/sleep", "infinity"]}, env) == \
        ["/bin/sleep", "infinity"]
    assert images.argv_for({"name": "c", "image": "curlimages/curl", "args": ["-s", "x"]}, env) == ["curl", "-s", "x"]
    proxy = images.argv_for({"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.29.2"}, env)
    assert proxy[-4:] == ["--api", "172.18.0.2:6443", "--node", "worker"]
    assert images.argv_for({"name": "e", "image": "busybox", "command": ["echo", "$(NODE_NAME)", "$$(X)", "$(UNSET)"]},
                           env) == ["echo", "worker", "$(X)", "$(UNSET)"]


def test_httpbin_images_listen_where_their_samples_expect() -> None:
    assert images.argv_for({"name": "h", "image": "docker.io/kennethreitz/httpbin"}, {})[-1] == "80"
    assert images.argv_for({"name": "h", "image": "docker.io/mccutchen/go-httpbin:v2.15.0"}, {})[-1] == "8080"


def test_unknown_image_without_command_is_an_error_naming_it() -> None:
    with pytest.raises(images.UnknownImage, match='image "acme/app:1" of container "app"'):
        images.argv_for({"name": "app", "image": "acme/app:1"}, {})


def test_pod_ips_are_allocated_round_robin_and_released() -> None:
    node = network.NodeNet("worker", 1, "/proc/1/ns/net")
    first, second = node.allocate_ip(), node.allocate_ip()
    assert (first, second) == ("10.244.1.2", "10.244.1.3")
    node.release_ip(first)
    assert node.allocate_ip() == "10.244.1.4"  # not reused at once
    assert (node.ip, node.gateway, node.pod_cidr) == ("172.18.0.3", "10.244.1.1", "10.244.1.0/24")


def test_pod_ips_run_out_with_a_clear_error() -> None:
    node = network.NodeNet("w", 2, "/proc/1/ns/net")
    for _ in range(253):
        node.allocate_ip()
    with pytest.raises(RuntimeError, match="node w has no free pod IP left in 10.244.2.0/24"):
        node.allocate_ip()


def test_veth_names_fit_ifnamsiz_and_are_stable() -> None:
    name = network.host_veth_name("0c7d1f3e-uid")
    assert name == network.host_veth_name("0c7d1f3e-uid") and name.startswith("veth") and len(name) == 12


def _pod(phase: str, ready: str, **extra) -> dict:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}
    pod["status"].update(extra)
    return pod


def test_readiness_reasons_name_the_pod_and_the_cause() -> None:
    assert readiness.pod_problem(_pod("Running", "True")) is None
    assert readiness.pod_problem(_pod("Succeeded", "False")) is None
    assert readiness.pod_problem(_pod("Running", "False")) == "pod ns/p: Running, not ready"
    pulling = _pod("Pending", "False", containerStatuses=[
        {"name": "c", "state": {"waiting": {"reason": "ErrImagePull", "message": "unknown image"}}}])
    assert readiness.pod_problem(pulling) == "pod ns/p: container c: ErrImagePull: unknown image"
    unschedulable = _pod("Pending", "False")
    unschedulable["status"]["conditions"].append(
        {"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available"})
    assert readiness.pod_problem(unschedulable) == "pod ns/p: Pending: 0/3 nodes are available"


def test_workload_readiness() -> None:
    deploy = {"metadata": {"name": "d", "namespace": "ns", "generation": 1},
              "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "readyReplicas": 1}}
    assert readiness.workload_problem("Deployment", deploy) == "deployment ns/d: 1/2 replicas ready"
    deploy["status"]["readyReplicas"] = 2
    assert readiness.workload_problem("Deployment", deploy) is None


def test_a_cleared_sandbox_error_leaves_the_pod_status() -> None:
    kubelet = SimpleNamespace(run=SimpleNamespace(pod_dir=lambda namespace, name: Path("/nonexistent")))
    node = SimpleNamespace(net=SimpleNamespace(ip="172.18.0.3"))
    pod = {"metadata": {"uid": "uid-1", "name": "ztunnel-abcde", "namespace": "istio-system"},
           "spec": {"containers": [{"name": "istio-proxy"}]}}
    worker = PodWorker(kubelet, node, pod)  # type: ignore[arg-type]
    worker.sandbox_error = 'MountVolume.SetUp failed: configmap "istio-ca-root-cert" not found'
    stored = merge_patch(pod, {"status": worker.status()})
    assert stored["status"]["reason"] == "FailedCreatePodSandBox"
    assert stored["status"]["message"] == worker.sandbox_error
    worker.sandbox_error = ""
    stored = merge_patch(stored, {"status": worker.status()})
    assert "reason" not in stored["status"] and "message" not in stored["status"]
