"""Newline-delimited JSON over a byte stream: one message after another on a long-lived response.

HTTP/2 DATA frames do not keep message boundaries, so each message is compact JSON (which never
contains a raw newline) followed by `\\n`. The reader scans only new bytes for the newline, so a
large message arriving in many pieces costs linear time.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import trio

MAX_MESSAGE = 64 * 1024 * 1024


class MessageTooLarge(ValueError):
    """A message went over the reader's limit without its newline."""


def encode(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


async def send_json(stream: trio.abc.SendStream, message: Any) -> None:
    await stream.send_all(encode(message))


class JsonLinesReader:
    """`async for message in JsonLinesReader(stream)`: ends at EOF; a partial last line is an error."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_message: int = MAX_MESSAGE) -> None:
        self._stream = stream
        self._max = max_message
        self._parts: list[bytes] = []
        self._size = 0
        self._lines: deque[bytes] = deque()

    def __aiter__(self) -> "JsonLinesReader":
        return self

    async def __anext__(self) -> Any:
        while not self._lines:
            data = await self._stream.receive_some()
            if not data:
                if self._size:
                    raise ValueError("stream ended inside a JSON message")
                raise StopAsyncIteration
            self._split(data)
        return json.loads(self._lines.popleft())

    def _split(self, data: bytes) -> None:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start:end]
            if self._parts:
                line = b"".join(self._parts) + line
                self._parts.clear()
                self._size = 0
            if line.strip():
                self._lines.append(line)
            start = end + 1
        if start < len(data):
            self._parts.append(data[start:])
            self._size += len(data) - start
            if self._size > self._max:
                raise MessageTooLarge(f"JSON message larger than {self._max} bytes")

    async def receive(self) -> Any:
        """The next message; EOFError at the end of the stream."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise EOFError("stream ended") from None
