"""Containers: exit codes in pod status, restarts, logs, and images that cannot run (needs root)."""

from __future__ import annotations

import pytest
import trio

from harness.cluster import Cluster

pytestmark = pytest.mark.e2e

NS = "containers-test"

PODS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: fails, namespace: {NS}}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo about to fail; echo oops >&2; exit 3"]
---
apiVersion: v1
kind: Pod
metadata: {{name: crashes, namespace: {NS}}}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo crashing; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {{name: two, namespace: {NS}}}
spec:
  containers:
  - name: first
    image: busybox
    command: ["sh", "-c", "echo from-first; exec sleep 3600"]
  - name: second
    image: busybox
    command: ["sh", "-c", "echo from-second; exec sleep 3600"]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {NS}}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Pod
metadata: {{name: volumes, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: ambient-worker}}
  containers:
  - name: main
    image: busybox
    command: [sleep, infinity]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/emulator-test/config}}
    - {{name: tok, mountPath: /var/run/secrets/tokens}}
    - {{name: node, mountPath: /var/run/emulator-test}}
    - {{name: info, mountPath: /etc/podinfo, readOnly: true}}
  volumes:
  - {{name: cfg, configMap: {{name: settings}}}}
  - name: tok
    projected:
      sources:
      - serviceAccountToken: {{audience: istio-ca, expirationSeconds: 43200, path: istio-token}}
  - {{name: node, hostPath: {{path: /var/run/emulator-test, type: DirectoryOrCreate}}}}
  - name: info
    downwardAPI:
      items:
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: mystery, namespace: {NS}}}
spec:
  containers:
  - name: main
    image: example.com/mystery:1.0
"""


async def _pod_when(cluster: Cluster, name: str, predicate, timeout: float = 30.0) -> dict:
    with trio.fail_after(timeout):
        async for event, obj in cluster.api.reflect("v1", "Pod", NS, field_selector=f"metadata.name={name}"):
            items = obj["items"] if event == "SYNC" else [obj]
            for pod in items:
                if predicate(pod):
                    return pod
    raise AssertionError("unreachable")


def _state(pod: dict, container: str = "main") -> dict:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status["name"] == container:
            return status
    return {}


@pytest.fixture(scope="module")
def pods(default_cluster: Cluster):
    """The pods above, applied once for this module's tests and deleted (and waited for) after."""
    trio.run(default_cluster.apply, PODS)
    try:
        yield default_cluster
    finally:
        trio.run(default_cluster.kubectl, "delete", "namespace", NS, "--timeout=60s")


async def test_container_exit_is_reported_with_its_code_and_logs(pods: Cluster) -> None:
    pod = await _pod_when(pods, "fails", lambda p: p.get("status", {}).get("phase") == "Failed")
    terminated = _state(pod)["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    logs = await pods.kubectl("logs", "fails", "-n", NS)
    assert logs.exit_code == 0
    assert "about to fail" in logs.stdout and "oops" in logs.stdout


async def test_crashing_container_is_restarted_with_back_off(pods: Cluster) -> None:
    pod = await _pod_when(pods, "crashes", lambda p: _state(p).get("restartCount", 0) >= 2)
    assert pod["status"]["phase"] == "Running"
    listing = (await pods.kubectl("get", "pod", "crashes", "-n", NS)).stdout
    assert "CrashLoopBackOff" in listing or "Error" in listing or "Running" in listing
    logs = (await pods.kubectl("logs", "crashes", "-n", NS)).stdout
    assert "crashing" in logs


async def test_each_container_has_its_own_log(pods: Cluster) -> None:
    await _pod_when(pods, "two", lambda p: all(s.get("ready") for s in p.get("status", {}).get("containerStatuses") or [{}]))
    first = (await pods.kubectl("logs", "two", "-c", "first", "-n", NS)).stdout
    second = (await pods.kubectl("logs", "two", "-c", "second", "-n", NS)).stdout
    assert first.strip() == "from-first" and second.strip() == "from-second"


async def test_unknown_image_is_a_clear_pod_error(pods: Cluster) -> None:
    pod = await _pod_when(pods, "mystery", lambda p: "waiting" in _state(p).get("state", {})
                          and _state(p)["state"]["waiting"].get("reason") == "ErrImagePull")
    message = _state(pod)["state"]["waiting"]["message"]
    assert 'image "example.com/mystery:1.0" of container "main" is not one the emulator knows' in message
    listing = (await pods.kubectl("get", "pod", "mystery", "-n", NS)).stdout
    assert "ErrImagePull" in listing


async def test_volumes_are_mounted_without_touching_the_host(pods: Cluster) -> None:
    import base64
    import json
    import os

    await _pod_when(pods, "volumes", lambda p: p.get("status", {}).get("phase") == "Running")
    script = ("cat /etc/emulator-test/config/greeting; echo; cat /var/run/secrets/tokens/istio-token; echo; "
              "cat /etc/podinfo/name; echo; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
              "echo shared > /var/run/emulator-test/file; touch /etc/podinfo/x 2>&1 || true")
    result = await pods.exec("volumes", "sh", "-c", script, namespace=NS)
    greeting, token, name, namespace, denied = result.stdout.splitlines()[:5]
    assert (greeting, name, namespace) == ("hello", "volumes", NS)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == ["istio-ca"] and claims["kubernetes.io"]["pod"]["name"] == "volumes"
    assert "Read-only file system" in denied
    shared = pods.run.node_root("ambient-worker") / "var/run/emulator-test/file"
    assert shared.read_text() == "shared\n"
    assert not os.path.exists("/etc/emulator-test") and not os.path.exists("/run/emulator-test")
