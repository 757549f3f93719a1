"""CoreDNS's log lines: `[INFO] plugin/reload: Running configuration SHA512 = ...`.

A logger named `plugin/<name>` prefixes its messages with that name, as CoreDNS's plugins do.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {"WARNING": "WARNING", "CRITICAL": "FATAL"}


class CoreDNSFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = LEVELS.get(record.levelname, record.levelname)
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.name.startswith("plugin/"):
            return f"[{level}] {record.name}: {message}"
        return f"[{level}] {message}"


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CoreDNSFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
