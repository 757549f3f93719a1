"""`Cluster`: a running topology, from the user's side.

    async with Cluster.from_file("topologies/default.yaml") as cluster:
        result = await cluster.kubectl("get", "pods", "-A")

Entering brings the topology up (or raises `ClusterError` with what failed, leaving nothing
behind); leaving tears it down and removes the run directory. `Cluster.attach()` gives the same
API over a cluster started elsewhere (`ambient up -d`), without owning it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import trio

from components.common.apiclient import ApiClient
from harness import podexec, readiness, sandbox, topology
from harness.sandbox import RunDir

BRING_UP_TIMEOUT = 600.0
ProgressFn = Callable[[str], None]


class ClusterError(Exception):
    """A cluster could not be brought up or reached; the message says why."""


@dataclass
class Result:
    """What a command printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> "Result":
        if self.exit_code != 0:
            raise ClusterError(f"command failed with exit code {self.exit_code}: {self.stderr.strip() or self.stdout.strip()}")
        return self


async def read_progress(fd: int, progress: ProgressFn | None, timeout: float) -> dict[str, Any]:
    """Follow the daemon's progress lines until it reports ready or failed (or dies)."""
    stream = trio.lowlevel.FdStream(fd)
    buffer = b""
    with trio.move_on_after(timeout):
        async with stream:
            while True:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return {"event": "failed", "message": "the run daemon exited before the cluster was ready"}
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = json.loads(line)
                    if event["event"] in ("ready", "failed"):
                        return event
                    if progress is not None:
                        progress(event.get("message", ""))
    return {"event": "failed", "message": f"the cluster was not ready after {timeout:.0f}s"}


def prepare_run(path: str | Path, name: str | None) -> tuple[RunDir, topology.Topology]:
    """Validate the topology and make a fresh run directory for it."""
    topo = topology.load(path)
    cluster_name = name or topo.name
    run = RunDir.for_cluster(cluster_name)
    if run.alive():
        raise ClusterError(f"cluster {cluster_name} is already running; stop it with `ambient down --cluster {cluster_name}`")
    if run.path.exists():
        sandbox.remove(run)
    run.path.mkdir(parents=True)
    run.topology_file.write_text(Path(path).read_text())
    run.write_shims()
    (run.path / "request.json").write_text(json.dumps({"source": str(Path(path).resolve()), "name": cluster_name}))
    return run, topo


async def start_run(run: RunDir, *, detach: bool, progress: ProgressFn | None,
                    timeout: float = BRING_UP_TIMEOUT) -> subprocess.Popen:
    """Launch the run daemon and wait until the cluster is ready; on failure clean up and raise."""
    read_fd, write_fd = os.pipe()
    try:
        process = sandbox.launch(run, detach=detach, ready_fd=write_fd)
    except sandbox.RunError as exc:
        os.close(read_fd)
        sandbox.remove(run)
        raise ClusterError(str(exc)) from exc
    finally:
        os.close(write_fd)
    outcome = await read_progress(read_fd, progress, timeout)
    if outcome["event"] != "ready":
        await stop_run(run, process)
        raise ClusterError(outcome.get("message", "bring-up failed"))
    return process


async def stop_run(run: RunDir, process: subprocess.Popen | None = None) -> None:
    """Tear a run down and remove its directory."""
    await trio.to_thread.run_sync(sandbox.stop, run)
    if process is not None:
        await trio.to_thread.run_sync(process.wait)
    sandbox.remove(run)


class Cluster:
    def __init__(self, run: RunDir, *, source: Path | None = None, name: str | None = None,
                 progress: ProgressFn | None = None):
        self.run = run
        self.source = source
        self.name = name or run.cluster
        self.progress = progress
        self.process: subprocess.Popen | None = None
        self.api = ApiClient(run.apiserver_address)

    @classmethod
    def from_file(cls, path: str | Path, *, name: str | None = None, progress: ProgressFn | None = None) -> "Cluster":
        """A cluster for this topology file (`name` overrides its metadata.name); enter it to bring it up."""
        topo = topology.load(path)
        return cls(RunDir.for_cluster(name or topo.name), source=Path(path), name=name or topo.name, progress=progress)

    @classmethod
    def attach(cls, name: str | None = None) -> "Cluster":
        """The running cluster `name` (or the only one running)."""
        try:
            return cls(sandbox.resolve(name))
        except sandbox.RunError as exc:
            raise ClusterError(str(exc)) from exc

    async def __aenter__(self) -> "Cluster":
        if self.source is not None:
            try:
                self.run, _ = prepare_run(self.source, self.name)
            except topology.TopologyError as exc:
                raise ClusterError(str(exc)) from exc
            self.process = await start_run(self.run, detach=False, progress=self.progress)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None:
            with trio.CancelScope(shield=True):
                await stop_run(self.run, self.process)
            self.process = None

    # -- commands -----------------------------------------------------------------------------

    async def kubectl(self, *args: str, input: str = "") -> Result:
        """Run a kubectl command against this cluster and capture what it prints."""
        from harness.kubectl import KubectlContext, run as run_kubectl

        stdout, stderr = io.StringIO(), io.StringIO()

        async def exec_in_pod(pod: dict[str, Any], container: str, argv: list[str], stdin: bool, tty: bool) -> int:
            spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
            result = await trio.run_process(
                podexec.pod_exec_argv(self.run, pod, spec, argv), check=False, capture_stdout=True,
                capture_stderr=True, stdin=input.encode() if stdin else b"",
                env=podexec.pod_env(pod, spec, None))
            stdout.write(result.stdout.decode(errors="replace"))
            stderr.write(result.stderr.decode(errors="replace"))
            return result.returncode

        ctx = KubectlContext(api=self.api, stdin=io.BytesIO(input.encode()), stdout=stdout, stderr=stderr,
                             exec_in_pod=exec_in_pod, container_log_path=self.run.container_log, cwd=Path.cwd())
        code = await run_kubectl(list(args), ctx)
        return Result(code, stdout.getvalue(), stderr.getvalue())

    async def istioctl(self, *args: str, input: str = "") -> Result:
        """Run an istioctl command against this cluster and capture what it prints."""
        from harness.istioctl import IstioctlContext, run as run_istioctl

        stdout, stderr = io.StringIO(), io.StringIO()
        ctx = IstioctlContext(api=self.api, stdin=io.StringIO(input), stdout=stdout, stderr=stderr, cwd=Path.cwd())
        code = await run_istioctl(list(args), ctx)
        return Result(code, stdout.getvalue(), stderr.getvalue())

    async def exec(self, pod: str, *argv: str, namespace: str = "default") -> Result:
        """`kubectl exec -n NAMESPACE POD -- ARGV` (POD may be deploy/NAME)."""
        return await self.kubectl("exec", "-n", namespace, pod, "--", *argv)

    async def apply(self, manifest: str, namespace: str | None = None) -> Result:
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return (await self.kubectl(*args, input=manifest)).check()

    async def node_exec(self, node: str, *argv: str) -> Result:
        """Run a command in a node's network namespace (what `docker exec` into a kind node gives)."""
        return await self.run_in(podexec.node_exec_argv(self.run, node, list(argv)))

    async def run_in(self, argv: list[str]) -> Result:
        result = await trio.run_process(argv, check=False, capture_stdout=True, capture_stderr=True)
        return Result(result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))

    def nodes(self) -> list[str]:
        return podexec.node_names(self.run)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        await readiness.wait_ready(self.api, timeout)
