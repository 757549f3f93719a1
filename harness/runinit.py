"""pid 1 of a run's PID namespace.

It starts the run daemon, forwards SIGTERM/SIGINT/SIGHUP to it, reaps every orphan that the
kernel re-parents to it, and exits with the daemon's status. When it exits the kernel kills every
other process of the run, which is what makes teardown complete even after a crash.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m harness.runinit COMMAND...", file=sys.stderr)
        return 2
    child = os.fork()
    if child == 0:
        os.execvp(argv[0], argv)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child:
            return os.waitstatus_to_exitcode(status) & 0xFF


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
