"""What the host's network looks like from outside: links, addresses, routes, rules, iptables
(both backends), named network namespaces, mounts and run directories. Two snapshots taken before
and after a run must be equal: the emulator leaves the host as it found it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness import sandbox

COUNTERS = re.compile(r"\[\d+:\d+\]")


def _run(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
    except FileNotFoundError:
        return f"({argv[0]} not installed)"
    lines = [COUNTERS.sub("[0:0]", line) for line in out.splitlines() if not line.startswith("#")]
    return "\n".join(lines)


def _mounts() -> str:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return "\n".join(sorted(points))


def snapshot() -> dict[str, str]:
    run_root = sandbox.run_root()
    live = {run.cluster for run in sandbox.runs() if run.alive()}
    return {
        "links": _run("ip", "-o", "link", "show"),
        "addresses": _run("ip", "-o", "addr", "show"),
        "routes": _run("ip", "route", "show", "table", "all"),
        "rules": _run("ip", "rule", "show"),
        "iptables-legacy": _run("iptables-legacy-save"),
        "iptables-nft": _run("iptables-nft-save"),
        "netns": _run("ip", "netns", "list"),
        "mounts": _mounts(),
        "run directories": "\n".join(sorted(p.name for p in run_root.iterdir() if p.name not in live))
        if run_root.is_dir() else "",
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
    }


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{key} changed:\n--- before\n{before[key]}\n--- after\n{after[key]}"
            for key in before if before[key] != after.get(key)]


def run_processes(ignore: list[sandbox.RunDir] | None = None) -> list[str]:
    """Processes of any run of this checkout alive on the host (by their command lines, which name
    this checkout's interpreter), except those of the runs in `ignore` (which are meant to be
    running): their launcher and everything in their PID namespace. Runs of other checkouts on a
    shared machine are theirs to check."""
    namespaces = {run.launch().get("pidns") for run in ignore or []}
    launchers = {run.launch().get("launcher_pid") for run in ignore or []}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in launchers:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            pidns = os.readlink(proc / "ns" / "pid")
        except OSError:
            continue
        if pidns in namespaces:
            continue
        if sys.prefix not in cmdline:
            continue
        if "harness.daemon" in cmdline or "harness.runinit" in cmdline or "-m components." in cmdline:
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found


def live_runs() -> list[sandbox.RunDir]:
    """The runs alive now."""
    return [run for run in sandbox.runs() if run.alive()]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def started_here(run: sandbox.RunDir) -> bool:
    """The run's launcher descends from this process (a cluster of this test session)."""
    pid, me = run.launch().get("launcher_pid"), os.getpid()
    while isinstance(pid, int) and pid > 1:
        if pid == me:
            return True
        try:
            pid = _parent(pid)
        except OSError:
            return False
    return False


def foreign_runs() -> list[sandbox.RunDir]:
    """The runs alive now that this process did not start: someone else's clusters on the host."""
    return [run for run in live_runs() if not started_here(run)]
