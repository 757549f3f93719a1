"""istioctl's error reporting: cobra prints `Error: <message>` on stderr; istioctl exits 64 for a
command line it cannot parse and 1 for anything else."""

from __future__ import annotations

from typing import TextIO

from components.common.apiclient import ApiError

EXIT_UNKNOWN_ERROR = 1
EXIT_INCORRECT_USAGE = 64


class IstioctlError(Exception):
    """An error istioctl reports as `Error: <message>`; `trailer` is printed after it (cobra's
    `Run 'istioctl --help' for usage.`)."""

    def __init__(self, message: str, exit_code: int = EXIT_UNKNOWN_ERROR, trailer: str = ""):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.trailer = trailer


def report(error: IstioctlError | ApiError, stderr: TextIO) -> int:
    """Print the error as cobra does; returns the exit code."""
    if isinstance(error, IstioctlError):
        text, code, trailer = error.message, error.exit_code, error.trailer
    else:
        text, code, trailer = str(error), EXIT_UNKNOWN_ERROR, ""
    stderr.write(f"Error: {text}\n{trailer}")
    stderr.flush()
    return code
