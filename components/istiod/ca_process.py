"""The CA as istiod's child process (the real istiod embeds its CA; here it is its own program).

The child shares istiod's stdout and stderr, so istiod's log shows the CA's lines too, and
istiod's process group, so whoever kills istiod's group kills the CA with it. It is restarted
with exponential back-off when it exits, and stopped with SIGTERM (then SIGKILL) on shutdown.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from dataclasses import dataclass

import trio

log = logging.getLogger("istiod.ca")


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 30.0
    stable_after: float = 60.0   # a run this long resets the delay


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:g}s"


class CaSupervisor:
    """Runs `command` (a shell-like command line, split with shlex) until cancelled."""

    def __init__(self, command: str, backoff: Backoff = Backoff(), grace: float = 5.0) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("the CA command is empty")
        self.backoff = backoff
        self.grace = grace
        self.starts = 0
        self.process: trio.Process | None = None

    async def _run_once(self) -> str:
        """Run the child to its end; what became of it, for the log."""
        try:
            process = await trio.lowlevel.open_process(self.argv, stdin=subprocess.DEVNULL)
        except OSError as exc:
            return f"failed to start: {exc}"
        self.process = process
        self.starts += 1
        log.info("CA started (pid %d): %s", process.pid, shlex.join(self.argv))
        try:
            code = await process.wait()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._stop(process)
            raise
        finally:
            self.process = None
        return f"exited with signal {-code}" if code < 0 else f"exited with code {code}"

    async def _stop(self, process: trio.Process) -> None:
        log.info("stopping CA (pid %d)", process.pid)
        process.terminate()
        with trio.move_on_after(self.grace):
            await process.wait()
        if process.returncode is None:
            log.warning("CA (pid %d) ignored SIGTERM for %s, killing it", process.pid, _duration(self.grace))
            process.kill()
            await process.wait()

    async def run(self) -> None:
        delay = self.backoff.initial
        while True:
            started = trio.current_time()
            outcome = await self._run_once()
            if trio.current_time() - started >= self.backoff.stable_after:
                delay = self.backoff.initial
            log.warning("CA %s; restarting in %s", outcome, _duration(delay))
            await trio.sleep(delay)
            delay = min(delay * 2, self.backoff.maximum)
