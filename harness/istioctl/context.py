"""What an istioctl invocation runs against: the API, the user's streams and where the built-in
Istio manifests are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from components.common.apiclient import ApiClient
from harness import manifests
from harness.kubectl.context import emit
from harness.kubectl.exec import is_tty

VERSION = "1.24.0"  # the istioctl (and Istio) release emulated
ISTIO_NAMESPACE = "istio-system"

GREEN, YELLOW, RED = "32", "33", "31"

__all__ = ["GREEN", "ISTIO_NAMESPACE", "IstioctlContext", "RED", "VERSION", "YELLOW", "emit", "is_tty", "paint"]


@dataclass
class IstioctlContext:
    api: ApiClient
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    cwd: Path  # relative file arguments resolve against it
    manifests_dir: Path = field(default=manifests.ISTIO)  # `install` applies its *.yaml in name order


def paint(stream: TextIO, color: str, text: str) -> str:
    """`text` in an ANSI color when `stream` is a terminal (fatih/color's rule), else as is."""
    return f"\x1b[{color}m{text}\x1b[0m" if is_tty(stream) else text
