"""Entering network namespaces from Python (Python 3.10/3.11 have no os.setns).

Sockets belong to the namespace they were created in: a thread can step into a pod's netns,
create and bind a socket, and step back; the socket keeps working in the pod's namespace. This is
how the kubelet probes pods and how ztunnel opens its listeners inside pods.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from contextlib import contextmanager
from typing import Iterator

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered_fd(netns_fd: int) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace open as `netns_fd`.

    ztunnel gets pods' namespaces as fds (over ZDS), never as paths. Only socket creation should
    happen inside: the body must not block or yield to other tasks.
    """
    with _lock:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            setns(netns_fd)
            try:
                yield
            finally:
                setns(own)
        finally:
            os.close(own)


@contextmanager
def entered(netns_path: str) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace at `netns_path`.

    Only socket creation should happen inside: the body must not block or yield to other tasks.
    """
    target = os.open(netns_path, os.O_RDONLY)
    try:
        with entered_fd(target):
            yield
    finally:
        os.close(target)


def socket_in(netns_path: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket that lives in the network namespace at `netns_path`."""
    with entered(netns_path):
        return socket.socket(family, type)
