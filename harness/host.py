"""Facts about the host the emulator runs on."""

from __future__ import annotations

from pathlib import Path


def os_image() -> str:
    """The distribution's PRETTY_NAME (what a kind node reports as its OS image)."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    except OSError:
        pass
    return "Linux"
