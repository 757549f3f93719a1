"""`kubectl exec -t`: the command gets a terminal of its own, relayed to the user's.

As with a real cluster, the remote side runs on a new pseudo-terminal (its session and job
control live entirely inside the run's PID namespace), while the user's terminal is put in raw
mode and bytes are copied both ways; window size changes follow.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sys
import termios
import tty

import trio


def _copy_size(src_fd: int, dst_fd: int) -> None:
    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


async def run_on_pty(argv: list[str], env: dict[str, str], *, stdin: bool) -> int:
    """Run `argv` (which must make itself a session leader on its stdin, e.g. `setsid -c`) on a
    new pty, relaying the caller's stdin/stdout; returns the command's exit code."""
    master, slave = os.openpty()
    local_in, local_out = sys.stdin.fileno(), sys.stdout.fileno()
    interactive = stdin and os.isatty(local_in)
    if os.isatty(local_out):
        _copy_size(local_out, slave)
    try:
        process = await trio.lowlevel.open_process(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    finally:
        os.close(slave)
    saved = termios.tcgetattr(local_in) if interactive else None
    try:
        if interactive:
            tty.setraw(local_in)
        async with trio.open_nursery() as nursery:
            if stdin:
                nursery.start_soon(_pump_input, local_in, master)
            if os.isatty(local_out):
                nursery.start_soon(_follow_window_size, local_out, master)
            await _pump_output(master, local_out)
            nursery.cancel_scope.cancel()
        return await process.wait()
    finally:
        if saved is not None:
            termios.tcsetattr(local_in, termios.TCSADRAIN, saved)
        os.close(master)


async def _pump_output(master: int, out_fd: int) -> None:
    """Copy the pty's output until the remote side closes it (EIO on the master)."""
    while True:
        await trio.lowlevel.wait_readable(master)
        try:
            data = os.read(master, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if not data:
            return
        view = memoryview(data)
        while view:
            await trio.lowlevel.wait_writable(out_fd)
            view = view[os.write(out_fd, view):]


async def _pump_input(in_fd: int, master: int) -> None:
    while True:
        await trio.lowlevel.wait_readable(in_fd)
        data = os.read(in_fd, 65536)
        if not data:
            return
        view = memoryview(data)
        while view:
            await trio.lowlevel.wait_writable(master)
            view = view[os.write(master, view):]


async def _follow_window_size(local_fd: int, master: int) -> None:
    with trio.open_signal_receiver(signal.SIGWINCH) as changes:
        async for _ in changes:
            _copy_size(local_fd, master)


def session_argv(argv: list[str]) -> list[str]:
    """Make the command the leader of a new session whose controlling terminal is its stdin."""
    return ["setsid", "--ctty", "--wait", *argv]

