"""Log lines in gunicorn's formats, since the httpbin image runs httpbin under gunicorn.

Error log: `[2024-03-17 12:07:08 +0000] [1] [INFO] Listening at: http://0.0.0.0:80 (1)`.
Access log (gunicorn's default `access_log_format`):
`10.244.2.8 - - [17/Mar/2024:12:59:50 +0000] "GET / HTTP/1.1" 200 9593 "-" "curl/7.88.1"`.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import TextIO

VERSION = "19.9.0"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def error_line(level: str, message: str, pid: int, when: datetime.datetime) -> str:
    return f"[{when:%Y-%m-%d %H:%M:%S %z}] [{pid}] [{level}] {message}"


def access_line(client: str, request_line: str, status: int, size: int | None,
                referer: str | None, user_agent: str | None, when: datetime.datetime) -> str:
    return (f'{client} - - [{when:%d/%b/%Y:%H:%M:%S %z}] "{request_line}" {status} '
            f'{"-" if size is None else size} "{referer or "-"}" "{user_agent or "-"}"')


class Logger:
    """Writes gunicorn's error and access lines to a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.pid = os.getpid()

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self._write(error_line("INFO", message, self.pid, _now()))

    def error(self, message: str) -> None:
        self._write(error_line("ERROR", message, self.pid, _now()))

    def startup(self, bind: str, worker: str = "gevent") -> None:
        """The lines gunicorn prints when its master and one worker come up."""
        self.info(f"Starting gunicorn {VERSION}")
        self.info(f"Listening at: http://{bind} ({self.pid})")
        self.info(f"Using worker: {worker}")
        self.info(f"Booting worker with pid: {self.pid}")

    def access(self, client: str, request_line: str, status: int, size: int | None,
               referer: str | None, user_agent: str | None) -> None:
        self._write(access_line(client, request_line, status, size, referer, user_agent, _now()))
