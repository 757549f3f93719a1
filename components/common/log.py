"""Log lines in the format of the component being emulated, written to stderr.

The kubelet captures a container's stdout and stderr into its log file, so `kubectl logs` shows
these lines as it would on a real cluster.

Styles:
- "istio": istiod and istio-cni (`2024-03-17T12:17:13.766443Z\tinfo\tambient\tmessage`)
- "klog":  Kubernetes components (`I0317 12:17:13.766443       1 server.go:42] message`)
"""

from __future__ import annotations

import datetime
import logging
import os
import sys


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class IstioFormatter(logging.Formatter):
    """`<RFC3339 µs>Z\t<level>\t<scope>\t<message>`; the scope is the logger's last dotted part."""

    LEVELS = {"WARNING": "warn", "CRITICAL": "error"}

    def format(self, record: logging.LogRecord) -> str:
        stamp = _utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        level = self.LEVELS.get(record.levelname, record.levelname.lower())
        scope = getattr(record, "scope", None) or record.name.rpartition(".")[2]
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if scope:
            return f"{stamp}\t{level}\t{scope}\t{message}"
        return f"{stamp}\t{level}\t{message}"


class KlogFormatter(logging.Formatter):
    """klog's header: `Lmmdd hh:mm:ss.uuuuuu threadid file:line] message`."""

    def format(self, record: logging.LogRecord) -> str:
        now = _utc_now()
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return (f"{record.levelname[0]}{now:%m%d %H:%M:%S.%f} {os.getpid():7d} "
                f"{record.filename}:{record.lineno}] {message}")


def setup(style: str = "istio", level: int = logging.INFO) -> None:
    """Send the root logger to stderr in the given style."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KlogFormatter() if style == "klog" else IstioFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
