"""The processes of a run's containers, seen from the host through the run's PID namespace: their
pids (from the kubelet's containerID `ambient://<pid>`), resident memory and open fds, and
signals to them (faults are injected by pid, never by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import sandbox
from harness.cluster import Cluster


@dataclass(frozen=True)
class Usage:
    rss_kib: int
    fds: int


def container_pid(pod: dict[str, Any], container: str | None = None) -> int:
    """The pid (in the run's PID namespace) of a running container of `pod`."""
    for status in pod["status"].get("containerStatuses") or []:
        if container in (None, status["name"]) and "running" in status.get("state", {}):
            return int(status["containerID"].removeprefix("ambient://"))
    raise AssertionError(f'pod {pod["metadata"]["name"]} has no running container {container or ""}')


async def run_command(cluster: Cluster, *argv: str) -> str:
    """A command in the run's PID and mount namespaces (sees the run's /proc); its stdout."""
    return (await cluster.run_in(sandbox.enter_run_argv(cluster.run) + list(argv))).check().stdout


async def usage(cluster: Cluster, pid: int) -> Usage:
    """Resident memory and open file descriptors of a process of the run."""
    text = await run_command(cluster, "sh", "-c", f"grep VmRSS /proc/{pid}/status; ls /proc/{pid}/fd | wc -l")
    rss_line, fds = text.strip().splitlines()
    return Usage(int(rss_line.split()[1]), int(fds))


async def signal(cluster: Cluster, pid: int, name: str) -> None:
    """Send signal `name` (KILL, STOP, CONT) to a process of the run."""
    await run_command(cluster, "kill", f"-{name}", str(pid))


async def alive(cluster: Cluster, pid: int) -> bool:
    result = await cluster.run_in(sandbox.enter_run_argv(cluster.run) + ["kill", "-0", str(pid)])
    return result.exit_code == 0


async def pids_of(cluster: Cluster, module: str) -> list[int]:
    """The processes of the run that run `python -m MODULE` (components the daemon starts
    itself, such as the apiserver, have no container status)."""
    script = ('for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; tr "\\0" " " < $p/cmdline 2>/dev/null | '
              f'grep -qE -- "^[^ ]+ -m {module} " && echo ${{p#/proc/}}; done; true')
    return [int(pid) for pid in (await run_command(cluster, "sh", "-c", script)).split()]


async def pid_of(cluster: Cluster, module: str) -> int:
    """The one process of the run that runs `python -m MODULE`."""
    pids = await pids_of(cluster, module)
    assert len(pids) == 1, f"processes running {module}: {pids}"
    return pids[0]
