"""What `ambient demo` and `ambient run` share: running one step (a bash command line with the
cluster's `kubectl` and `istioctl` first on PATH) and showing it to a person or to CI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import trio


class Display:
    """Narration for a person at a terminal, plain lines for CI."""

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream
        self.color = stream.isatty()

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def say(self, text: str) -> None:
        print(self._paint("1", f"\n# {text}"), file=self.stream, flush=True)

    def command(self, text: str) -> None:
        print(self._paint("36", f"$ {text}"), file=self.stream, flush=True)

    def output(self, text: str) -> None:
        if text:
            print(text.rstrip("\n"), file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        print(self._paint("2", f"  ... {text}"), file=self.stream, flush=True)

    def result(self, ok: bool, why: str | None) -> None:
        label = self._paint("32", "PASS") if ok else self._paint("31", f"FAIL: {why}")
        print(f"  -> {label}", file=self.stream, flush=True)

    def table(self, rows: list[tuple[str, str, str]]) -> None:
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        print("", file=self.stream)
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=self.stream)


def shim_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a step: this cluster's shims first on PATH."""
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")


async def run_bash(bin_dir: Path, command: str, timeout: float) -> tuple[int, str, float]:
    """Run `bash -c command` with stdout and stderr together; (exit code, output, seconds).

    A command still running after `timeout` seconds is killed and reported as exit code 124
    (as timeout(1) does)."""
    started = time.monotonic()
    code = 124
    output = b""
    with trio.move_on_after(timeout) as scope:
        result = await trio.run_process(["bash", "-c", command], check=False, capture_stdout=True,
                                        stderr=subprocess.STDOUT, stdin=b"", env=shim_env(bin_dir))
        code, output = result.returncode, result.stdout
    text = output.decode(errors="replace")
    if scope.cancelled_caught:
        text += f"\n(killed after {timeout:.0f}s)\n"
    return code, text, time.monotonic() - started
