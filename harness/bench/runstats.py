"""What a run's processes use, read from the host's /proc: memory (PSS and RSS) and CPU time.

Every process of a run lives in the run's PID namespace (pods share it; only their net, mount and
uts namespaces are their own), so "the run" is exactly the processes of that namespace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness import podexec
from harness.sandbox import RunDir

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _namespace(proc: Path, kind: str) -> str | None:
    try:
        return os.readlink(proc / "ns" / kind)
    except OSError:  # gone, or exiting
        return None


def run_processes(run: RunDir) -> list[Path]:
    """/proc/<pid> of every process in the run's PID namespace."""
    pidns = run.launch().get("pidns")
    return [proc for proc in Path("/proc").iterdir() if proc.name.isdigit() and _namespace(proc, "pid") == pidns]


def pod_processes(run: RunDir, pod: dict[str, Any]) -> list[Path]:
    """/proc/<pid> of a pod's container processes: those in its network namespace but its pause process."""
    pause_pid = str(podexec.pod_sandbox(run, pod)["pause_pid"])
    processes = run_processes(run)
    pause = next((proc for proc in processes if _pid_in_run(proc) == pause_pid), None)
    netns = _namespace(pause, "net") if pause is not None else None
    if netns is None:
        raise podexec.ExecError(f'pod "{pod["metadata"]["name"]}": its pause process (pid {pause_pid} in the run) is gone')
    return [proc for proc in processes if proc != pause and _namespace(proc, "net") == netns]


def _pid_in_run(proc: Path) -> str | None:
    """The process's pid in the innermost PID namespace (the run's), from the NSpid line of its status."""
    try:
        status = (proc / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return line.split()[-1]
    return None


def memory(processes: list[Path]) -> dict[str, float]:
    """Summed PSS and RSS (MiB) of these processes, and how many were still there to be read."""
    pss = rss = count = 0
    for proc in processes:
        try:
            rollup = (proc / "smaps_rollup").read_text()
        except OSError:
            continue
        count += 1
        for line in rollup.splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                pss += int(value.split()[0])
            elif key == "Rss":
                rss += int(value.split()[0])
    return {"processes": count, "pss_mib": round(pss / 1024, 1), "rss_mib": round(rss / 1024, 1)}


def cpu_seconds(processes: list[Path]) -> float:
    """CPU time (user + system) these processes have used, with that of their children already
    reaped (so short-lived helpers such as iptables-restore count towards their parent)."""
    ticks = 0
    for proc in processes:
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / TICKS_PER_SECOND
