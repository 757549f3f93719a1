"""Finding a pod's network namespace in /proc, and holding it open.

A pod's namespaces are held by its pause process, whose command line carries `pod-uid=<uid>`
(the real agent reads the pod UID from a process's cgroup instead). A sandbox whose pause
process does not show it is found by its IP: the one netns on the node with that address.
The agent keeps the netns open by fd, as the real one does: that fd is what it hands to ztunnel,
and it stays the same netns even if a process id is reused.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

from pyroute2 import IPRoute

from components.common import netns as netns_mod

log = logging.getLogger("ambient")


def _pids(proc: Path) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(proc) if entry.name.isdigit()]
    except OSError:
        return []


def _cmdline(proc: Path, pid: str) -> list[bytes]:
    try:
        return (proc / pid / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def find_by_uid(uid: str, proc: Path = Path("/proc")) -> str | None:
    """`/proc/<pid>/ns/net` of the process whose command line has the argument `pod-uid=<uid>`."""
    needle = f"pod-uid={uid}".encode()
    for pid in _pids(proc):
        if needle in _cmdline(proc, pid):
            return str(proc / pid / "ns" / "net")
    return None


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _has_address(path: str, ip: str) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with netns_mod.entered(path), IPRoute() as ipr:
        return bool(ipr.get_addr(family=family, address=ip))


def find_by_ip(ip: str, proc: Path = Path("/proc")) -> str | None:
    """The netns, other than our own, of some process, that has `ip` on an interface (blocking)."""
    seen = {_inode("/proc/self/ns/net")}
    for pid in _pids(proc):
        path = str(proc / pid / "ns" / "net")
        key = _inode(path)
        if key is None or key in seen:
            continue
        seen.add(key)
        try:
            if _has_address(path, ip):
                return path
        except OSError as exc:  # the process went away, or its netns is not ours to enter
            log.debug("cannot look into %s: %s", path, exc)
    return None


def find(uid: str, ips: list[str], proc: Path = Path("/proc")) -> str | None:
    """A path to the pod's netns, by pause process, else by IP (blocking: call from a thread)."""
    path = find_by_uid(uid, proc)
    if path is None and ips:
        path = find_by_ip(ips[0], proc)
        if path is not None:
            log.debug("found netns of pod %s by its IP %s at %s", uid, ips[0], path)
    return path


def open_netns(path: str) -> int:
    """An fd holding the netns at `path` (close-on-exec); OSError if it is not a netns."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.readlink(f"/proc/self/fd/{fd}").split(":", 1)[0] != "net":
            raise OSError(errno.EINVAL, f"{path} is not a network namespace")
    except OSError:
        os.close(fd)
        raise
    return fd


def fd_path(fd: int) -> str:
    """A path that opens the netns held by `fd` (for setns and for tools)."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def same_netns(fd: int, path: str) -> bool:
    return _inode(fd_path(fd)) == _inode(path)
