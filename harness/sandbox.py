"""Runs: their directories, their launch into a private PID and mount namespace, and cleanup.

Everything a run creates lives in processes of its own PID namespace (see docs/architecture.md):
killing pid 1 of that namespace removes every process, network namespace, veth and mount of the
run. What survives a crash is the run directory, which `clean()` removes.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
DEFAULT_RUN_ROOT = "/run/ambient"


def run_root() -> Path:
    return Path(os.environ.get("AMBIENT_RUN_ROOT", DEFAULT_RUN_ROOT))


class RunError(Exception):
    """A run cannot be started, found or reached; the message says why."""


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@dataclass(frozen=True)
class RunDir:
    """The directory of one run, named after its cluster."""

    path: Path

    @classmethod
    def for_cluster(cls, name: str) -> "RunDir":
        return cls(run_root() / name)

    @property
    def cluster(self) -> str:
        return self.path.name

    @property
    def launch_file(self) -> Path:
        return self.path / "launch.json"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def apiserver_socket(self) -> Path:
        return self.path / "apiserver.sock"

    @property
    def apiserver_address(self) -> str:
        return f"unix:{self.apiserver_socket}"

    @property
    def control_socket(self) -> Path:
        return self.path / "control.sock"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def pods(self) -> Path:
        return self.path / "pods"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def root_cert(self) -> Path:
        """The mesh's root certificate, once Istio's CA has published it."""
        return self.path / "root-cert.pem"

    @property
    def bin(self) -> Path:
        """`kubectl` (and later `istioctl`) for this cluster: put it first on PATH."""
        return self.path / "bin"

    def write_shims(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in ("kubectl", "istioctl"):
            shim = self.bin / tool
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m harness.cli --cluster "{self.cluster}" {tool} "$@"\n')
            shim.chmod(0o755)

    @property
    def topology_file(self) -> Path:
        return self.path / "topology.yaml"

    def node_root(self, node: str) -> Path:
        """A node's own filesystem paths (hostPath volumes), e.g. nodes/<node>/var/run/ztunnel."""
        return self.path / "nodes" / node

    def pod_dir(self, namespace: str, name: str) -> Path:
        return self.pods / f"{namespace}_{name}"

    def container_log(self, pod: dict[str, Any], container: str) -> Path:
        """Where a container's output goes, like /var/log/pods/<ns>_<name>_<uid>/<container>."""
        meta = pod["metadata"]
        return self.logs / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / f"{container}.log"

    def launch(self) -> dict[str, Any]:
        return _read_json(self.launch_file)

    def state(self) -> dict[str, Any]:
        return _read_json(self.state_file)

    def write_state(self, state: dict[str, Any]) -> None:
        _write_json_atomic(self.state_file, state)

    def init_pid(self) -> int | None:
        """The host pid of the run's pid 1, if that process is still the one we started."""
        launch = self.launch()
        pid, pidns = launch.get("init_pid"), launch.get("pidns")
        if not pid or not pidns:
            return None
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != pidns:
                return None
        except OSError:
            return None
        return int(pid)

    def alive(self) -> bool:
        return self.init_pid() is not None


def runs() -> list[RunDir]:
    root = run_root()
    if not root.is_dir():
        return []
    return sorted((RunDir(p) for p in root.iterdir() if p.is_dir()), key=lambda run: run.path)


def _set_pdeathsig() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ValueError):
        return []


def launch(run: RunDir, *, detach: bool, ready_fd: int, timeout: float = 10.0) -> subprocess.Popen:
    """Start the run daemon as the child of pid 1 of a new PID + mount namespace.

    Attached runs die with the calling thread (parent-death signal); detached ones get their own
    session. `ready_fd` is the write end of a pipe the daemon reports progress on. Must be called
    from the thread that lives as long as the run (the main thread).
    """
    if os.geteuid() != 0:
        raise RunError("the emulator needs root (network namespaces, veths, iptables): run it with sudo")
    run.logs.mkdir(parents=True, exist_ok=True)
    argv = ["unshare", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
            sys.executable, "-m", "harness.runinit", sys.executable, "-m", "harness.daemon", str(run.path)]
    env = dict(os.environ, AMBIENT_READY_FD=str(ready_fd), PYTHONUNBUFFERED="1")
    with open(run.logs / "daemon.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                pass_fds=(ready_fd,), start_new_session=detach,
                                preexec_fn=None if detach else _set_pdeathsig)
    deadline = time.monotonic() + timeout
    init_pid = None
    while init_pid is None:
        kids = _children(proc.pid)
        if kids:
            init_pid = kids[0]
        elif proc.poll() is not None:
            raise RunError(f"the run of {run.cluster} could not start; see {run.logs / 'daemon.log'}")
        elif time.monotonic() > deadline:
            proc.kill()
            raise RunError(f"the run of {run.cluster} did not start within {timeout:.0f}s")
        else:
            time.sleep(0.001)
    _write_json_atomic(run.launch_file, {
        "cluster": run.cluster, "launcher_pid": proc.pid, "init_pid": init_pid,
        "pidns": os.readlink(f"/proc/{init_pid}/ns/pid"), "started": time.time(),
        "argv": argv,
    })
    return proc


def stop(run: RunDir, timeout: float = 15.0) -> None:
    """Stop a live run: SIGTERM to its pid 1 (graceful teardown), SIGKILL if it lingers."""
    pid = run.init_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while run.init_pid() is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.01)


def remove(run: RunDir) -> None:
    """Delete a dead run's directory, and the run root when it is left empty."""
    if run.alive():
        raise RunError(f"cluster {run.cluster} is still running; stop it first (ambient down --cluster {run.cluster})")
    shutil.rmtree(run.path, ignore_errors=True)
    try:
        run.path.parent.rmdir()
    except OSError:
        pass


def clean(include_live: bool = False) -> list[str]:
    """Remove what crashed runs left (and live runs too with `include_live`); returns what was done."""
    done = []
    for run in runs():
        if run.alive():
            if not include_live:
                continue
            stop(run)
            done.append(f"stopped cluster {run.cluster}")
        remove(run)
        done.append(f"removed {run.path}")
    return done


def resolve(cluster: str | None = None) -> RunDir:
    """The run a command talks to: the named one, $AMBIENT_CLUSTER, or the only live one."""
    name = cluster or os.environ.get("AMBIENT_CLUSTER")
    if name:
        run = RunDir.for_cluster(name)
        if not run.alive():
            raise RunError(f"cluster {name} is not running (ambient up FILE starts one)")
        return run
    live = [r for r in runs() if r.alive()]
    if not live:
        raise RunError("no cluster is running (ambient up FILE starts one)")
    if len(live) > 1:
        names = ", ".join(r.cluster for r in live)
        raise RunError(f"several clusters are running ({names}): choose one with --cluster NAME or AMBIENT_CLUSTER")
    return live[0]


def enter_run_argv(run: RunDir) -> list[str]:
    """argv prefix that runs a command inside the run's PID and mount namespaces."""
    pid = run.init_pid()
    if pid is None:
        raise RunError(f"cluster {run.cluster} is not running")
    return ["nsenter", "-t", str(pid), "-p", "-m", "--"]
