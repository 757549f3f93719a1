"""istioctl install's progress log, on stderr as istioctl writes it.

On a terminal the "- Processing resources for ..." status is one line rewritten in place and
replaced by each component's "✔ ... installed" line; otherwise every new status is a line of
its own (istioctl's progress bar in non-terminal mode).
"""

from __future__ import annotations

from typing import TextIO

from harness.istioctl.context import GREEN, RED, YELLOW, emit, is_tty, paint

CLEAR_LINE = "\r\x1b[K"


class ProgressLog:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = is_tty(stream)
        self.last = ""

    def status(self, text: str) -> None:
        """A transient status: `- Processing resources for Istiod. Waiting for ...`."""
        line = f"{paint(self.stream, YELLOW, '-')} {text}"
        if self.tty:
            emit(self.stream, CLEAR_LINE + line)
        elif line != self.last:
            emit(self.stream, line + "\n")
        self.last = line

    def _finish(self, line: str) -> None:
        emit(self.stream, (CLEAR_LINE if self.tty else "") + line + "\n")
        self.last = ""

    def installed(self, component: str, icon: str) -> None:
        self._finish(f"{paint(self.stream, GREEN, '✔')} {component} installed {icon}")

    def failed(self, component: str, error: str) -> None:
        self._finish(f"{paint(self.stream, RED, '✘')} {component} encountered an error: {error}")

    def complete(self) -> None:
        self._finish(f"{paint(self.stream, GREEN, '✔')} Installation complete")
