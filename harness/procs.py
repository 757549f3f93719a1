"""Spawning the run's processes: pause processes that hold namespaces, and processes entered
into them. Runs inside the run daemon (the run's PID and mount namespace).
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trio

PAUSE_READY = b"ready\n"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SpawnError(Exception):
    """A process of the run could not be started; the message names it and the cause."""


@dataclass
class Pause:
    """A pause process and the namespaces it holds."""

    process: trio.Process
    what: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def kill(self) -> None:
        kill_group(self.process)


def kill_group(process: trio.Process, sig: int = signal.SIGKILL) -> None:
    """Signal a process and everything in its process group (it was started in its own session)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def start_pause(what: str, script: list[str], *, unshare: list[str], enter: list[str] | None = None,
                      args: list[str] | None = None, title: str = "pause", timeout: float = 10.0) -> Pause:
    """Start a pause process in new namespaces (`unshare` flags, e.g. ["--net", "--uts"]).

    `script` are bash lines run inside the new namespaces before the process pauses (`$1`...
    are `args`); `enter` is an nsenter prefix to create the namespaces from inside another
    sandbox (a hostNetwork pod shares its node's network); `title` is the pause process's command
    line (node agents find a pod's pause process by it). Returns once the script has run.
    """
    body = "set -e\n" + "\n".join(script) + f"\nprintf 'ready\\n'\nexec -a '{title}' sleep infinity\n"
    argv = [*(enter or []), "unshare", *unshare, "--", "bash", "-c", body, "pause", *(args or [])]
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    output = b""
    with trio.move_on_after(timeout):
        while not output.endswith(PAUSE_READY):
            chunk = await process.stdout.receive_some(64)
            if not chunk:
                break
            output += chunk
    if output.endswith(PAUSE_READY):
        await process.stdout.aclose()
        return Pause(process, what)
    kill_group(process)
    with trio.move_on_after(1):
        err = await process.stderr.receive_some(4096)
        raise SpawnError(f"the sandbox of {what} did not start: {err.decode(errors='replace').strip()}")
    raise SpawnError(f"the sandbox of {what} did not start within {timeout:.0f}s")


def enter_argv(pause_pid: int, *, mount: bool = True, workdir: str | None = None) -> list[str]:
    """nsenter prefix that enters a pause process's network, uts (and mount) namespaces."""
    argv = ["nsenter", "-t", str(pause_pid), "-n", "-u"]
    if mount:
        argv.append("-m")
    if workdir:
        argv.append(f"--wd={workdir}")
    return argv + ["--"]


async def start_in(pause_pid: int, argv: list[str], *, log: Path, env: dict[str, str],
                   mount: bool = True, workdir: str | None = None) -> trio.Process:
    """Start `argv` inside a sandbox, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return await trio.lowlevel.open_process(
            enter_argv(pause_pid, mount=mount, workdir=workdir) + argv, stdin=subprocess.DEVNULL,
            stdout=fd, stderr=fd, env=env, start_new_session=True)
    finally:
        os.close(fd)
