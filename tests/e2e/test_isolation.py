"""The host is left as it was: after a crash (SIGKILL) plus `ambient clean`, and after bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from harness import sandbox
from harness.pytest_plugin import require_root
from tests.e2e import hoststate

pytestmark = pytest.mark.e2e

SMALL = """
kind: Cluster
metadata: {name: %(name)s}
nodes: [cp, worker]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: docker.io/mccutchen/go-httpbin, ports: [{containerPort: 8080}]}
"""


def ambient(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


async def test_sigkilled_harness_leaves_nothing_after_clean(tmp_path: Path) -> None:
    require_root()
    before = hoststate.snapshot()
    running = hoststate.live_runs()
    topology = tmp_path / "small.yaml"
    topology.write_text(SMALL % {"name": "e2e-crash"})
    run = sandbox.RunDir.for_cluster("e2e-crash")
    process = await trio.lowlevel.open_process(ambient("up", str(topology)), stderr=subprocess.PIPE)
    assert process.stderr is not None
    seen = b""
    with trio.move_on_after(60):
        while b"is ready" not in seen:
            chunk = await process.stderr.receive_some(4096)
            if not chunk:
                break
            seen += chunk
    if b"is ready" not in seen:
        process.kill()
        raise AssertionError(f"the cluster did not come up: {seen.decode()}")
    pidns = run.launch()["pidns"]
    assert run.alive()
    process.kill()  # SIGKILL: no cleanup code of the harness runs
    await process.wait()

    def run_pids() -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(proc / "ns" / "pid") == pidns:
                        pids.append(int(proc.name))
                except OSError:
                    pass
        return pids

    with trio.fail_after(10):
        while run_pids():
            await trio.sleep(0.05)
    assert run.path.exists(), "the run directory is what a crash leaves"
    result = subprocess.run(ambient("clean"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert not run.path.exists()
    assert not hoststate.differences(before, hoststate.snapshot())
    assert not hoststate.run_processes(ignore=running)


BAD_INPUTS = {
    "invalid YAML": ("kind: Cluster\nmetadata: {name: bad}\nnodes: [a\n", "invalid YAML"),
    "unknown kind": (
        "kind: Cluster\nmetadata: {name: bad}\nnodes: [a]\n---\napiVersion: example.com/v1\nkind: Widget\n"
        "metadata: {name: w}\n", 'document 2: Widget w: no matches for kind "Widget"'),
    "unknown field": (
        "kind: Cluster\nmetadata: {name: bad}\nnodes: [a]\n---\napiVersion: v1\nkind: Pod\n"
        "metadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sleep, '1'], imagee: x}\n",
        'document 2 (Pod p): Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].imagee"'),
    "duplicate name": (
        "kind: Cluster\nmetadata: {name: bad}\nnodes: [a]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "Namespace x: duplicate name: document 2"),
    "unknown image": (
        "kind: Cluster\nmetadata: {name: bad}\nnodes: [a]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec:\n  containers:\n  - {name: c, image: example.com/mystery:1.0}\n",
        "Pod p: spec.containers[0].image: image 'example.com/mystery:1.0' is not one the emulator knows"),
    "missing node": (
        "kind: Cluster\nmetadata: {name: bad}\nnodes: [a, b]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec:\n  nodeName: c\n  containers:\n  - {name: c, image: busybox, command: [sleep, '9']}\n",
        "Pod p: spec.nodeName: node 'c' does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_topology_is_refused_with_a_clear_error(case: str, tmp_path: Path) -> None:
    require_root()
    text, expected = BAD_INPUTS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before = hoststate.snapshot()
    running = hoststate.live_runs()
    result = subprocess.run(ambient("up", str(path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr
    assert str(path) in result.stderr
    assert not hoststate.differences(before, hoststate.snapshot())
    assert not hoststate.run_processes(ignore=running)


def test_commands_without_root_say_so() -> None:
    if os.geteuid() == 0:
        pytest.skip("checks the message a non-root user gets; this run is root")
    result = subprocess.run(ambient("up", "topologies/default.yaml"), capture_output=True, text=True)
    assert result.returncode == 1 and "needs root" in result.stderr


def test_second_cluster_with_the_same_name_is_refused(default_cluster, tmp_path: Path) -> None:
    require_root()
    path = tmp_path / "same.yaml"
    path.write_text("kind: Cluster\nmetadata: {name: e2e-default}\nnodes: [a]\n")
    result = subprocess.run(ambient("up", str(path)), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cluster e2e-default is already running" in result.stderr



def test_bring_up_failure_reports_the_failing_container_log(tmp_path: Path) -> None:
    require_root()
    path = tmp_path / "crash.yaml"
    path.write_text("kind: Cluster\nmetadata: {name: e2e-crashloop}\nnodes: [cp, worker]\n---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: broken, namespace: default}\nspec:\n"
                    "  containers:\n  - {name: main, image: busybox, command: [sh, -c, 'echo missing config >&2; exit 3'],\n"
                    # Without a probe a container is Ready while it runs, even for an instant, as in
                    # Kubernetes; the probe keeps a loaded machine from seeing that instant.
                    "     readinessProbe: {tcpSocket: {port: 9}}}\n")
    running = hoststate.live_runs()
    result = subprocess.run(ambient("up", str(path)), capture_output=True, text=True, timeout=60,
                            env={**os.environ, "AMBIENT_READY_TIMEOUT": "3"})
    assert result.returncode == 1
    assert "cluster e2e-crashloop did not come up" in result.stderr
    assert "pod default/broken: " in result.stderr
    assert "log of default/broken container main ends:\nmissing config" in result.stderr
    assert not sandbox.RunDir.for_cluster("e2e-crashloop").path.exists()
    assert not hoststate.run_processes(ignore=running)
