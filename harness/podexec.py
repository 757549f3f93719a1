"""Running commands inside a run's pods and nodes from the host (kubectl exec, ambient exec).

The command enters the run's PID and mount namespaces through its pid 1, then the namespaces of
the pod's pause process, so it is a process of the run (and dies with it) that sees the pod's
network, hostname, /etc/resolv.conf and /etc/hosts.
"""

from __future__ import annotations

import json
from typing import Any

from harness import procs, sandbox
from harness.sandbox import RunDir


class ExecError(Exception):
    """The pod or node cannot be entered; the message says why."""


def pod_sandbox(run: RunDir, pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    path = run.pod_dir(meta["namespace"], meta["name"]) / "sandbox.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        info = {}
    if info.get("uid") != meta.get("uid"):
        raise ExecError(f'pod "{meta["name"]}" has no running sandbox (it is still starting or has gone)')
    return info


def pod_env(pod: dict[str, Any], container: dict[str, Any], term: str | None) -> dict[str, str]:
    """The environment `kubectl exec` gives: the container's plain env values over the defaults."""
    env = {"PATH": procs.DEFAULT_PATH, "HOME": "/root",
           "HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"],
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
    if term:
        env["TERM"] = term
    return env


def pod_exec_argv(run: RunDir, pod: dict[str, Any], container: dict[str, Any], argv: list[str]) -> list[str]:
    info = pod_sandbox(run, pod)
    return sandbox.enter_run_argv(run) + procs.enter_argv(
        int(info["pause_pid"]), workdir=container.get("workingDir") or "/") + argv


def node_exec_argv(run: RunDir, node: str, argv: list[str]) -> list[str]:
    for entry in run.state().get("nodes", []):
        if entry["name"] == node:
            return sandbox.enter_run_argv(run) + procs.enter_argv(int(entry["pause_pid"]), mount=False) + argv
    raise ExecError(f'node "{node}" does not exist in cluster {run.cluster}')


def node_names(run: RunDir) -> list[str]:
    return [entry["name"] for entry in run.state().get("nodes", [])]
