"""What a kubectl invocation runs against: the API, the user's streams and the harness's hooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, BinaryIO, Callable, TextIO

from components.common.apiclient import ApiClient


@dataclass
class KubectlContext:
    api: ApiClient
    stdin: BinaryIO
    stdout: TextIO
    stderr: TextIO
    # (pod object, container name, argv, stdin wanted (-i), tty wanted (-t)) -> exit code
    exec_in_pod: Callable[[dict, str, list[str], bool, bool], Awaitable[int]]
    # (pod object, container name) -> the container's log file
    container_log_path: Callable[[dict, str], Path]
    cwd: Path  # relative -f paths resolve against it


def emit(stream: TextIO, text: str) -> None:
    """Write and flush, so output appears as it happens (watches, log follows)."""
    if text:
        stream.write(text)
        stream.flush()
