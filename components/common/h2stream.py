"""One HTTP/2 stream as a trio byte stream (`trio.abc.HalfCloseableStream`).

The connection (h2conn) feeds a stream the events h2 reports for it; the stream gives its user
`receive_some`/`send_all`/`send_eof` over DATA frames. Received payloads are buffered as the
chunks h2 handed over (no copying, no joining) and their flow-control credit goes back to the
peer only as the user consumes them, so a reader that stops reading stops its writer once the
stream window is full instead of growing memory. Sending waits for window and for the
connection's outgoing buffer, so a writer never outruns the transport either.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

import h2.errors
import trio

if TYPE_CHECKING:
    from components.common.h2conn import _Connection

Headers = list[tuple[str, str]]


class ConnectionClosed(trio.BrokenResourceError):
    """The HTTP/2 connection under the stream ended (peer gone, GOAWAY with an error, PING timeout)."""


class StreamReset(trio.BrokenResourceError):
    """The stream was reset: by the peer (RST_STREAM, or refused by GOAWAY) or locally."""

    def __init__(self, error_code: int, remote: bool) -> None:
        self.error_code = error_code
        self.remote = remote
        try:
            name = h2.errors.ErrorCodes(error_code).name
        except ValueError:
            name = "UNKNOWN"
        who = "by peer" if remote else "locally"
        super().__init__(f"stream reset {who}: {name} ({error_code})")


class BodyTooLarge(ValueError):
    """A body read with `receive_all` went over its limit."""


def get_header(headers: Headers, name: str, default: str | None = None) -> str | None:
    """The first value of a header (names are lower case in HTTP/2)."""
    name = name.lower()
    for key, value in headers:
        if key == name:
            return value
    return default


class H2Stream(trio.abc.HalfCloseableStream):
    """A request/response stream: the request body is one direction, the response body the other.

    A server handler answers with `respond()` before sending body bytes; a client reads the answer
    with `response()`. `send_eof()` sends END_STREAM (half-close) and reading continues until the
    peer's END_STREAM, where `receive_some` returns b"". `aclose()` resets the stream if it did not
    finish both ways. Errors are `StreamReset` or `ConnectionClosed`, both `trio.BrokenResourceError`.
    """

    def __init__(self, conn: "_Connection", stream_id: int, *, server: bool) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._server = server
        self._chunks: deque[bytes] = deque()
        self._offset = 0
        self._buffered = 0
        self.remote_ended = False
        self.local_ended = False
        self._closed = False
        self._error: Callable[[], trio.BrokenResourceError] | None = None
        self._lot = trio.lowlevel.ParkingLot()
        self._status: int | None = None
        self.response_headers: Headers = []
        self.trailers: Headers = []
        self.responded = False
        self._receiving = False
        self._sending = False

    def __repr__(self) -> str:
        return f"<H2Stream {self.stream_id}>"

    # Events from the connection (synchronous: they run inside the connection's read loop).

    def _on_response(self, status: int, headers: Headers) -> None:
        self._status = status
        self.response_headers = headers
        self._lot.unpark_all()

    def _on_data(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            self._lot.unpark_all()

    def _on_end(self) -> None:
        self.remote_ended = True
        self._lot.unpark_all()

    def _fail(self, error: Callable[[], trio.BrokenResourceError]) -> int:
        """Mark the stream dead; returns how many unread bytes were dropped (for flow control).

        A body the peer already finished stays readable: a reset after a complete response (as
        RFC 9113 8.1 has servers do to stop an unfinished request) only stops our sending.
        """
        if self._error is None:
            self._error = error
        dropped = 0 if self.remote_ended else self._drop_buffer()
        self._lot.unpark_all()
        return dropped

    def _drop_buffer(self) -> int:
        dropped = self._buffered
        self._chunks.clear()
        self._offset = 0
        self._buffered = 0
        return dropped

    @property
    def closed(self) -> bool:
        """aclose() was called on this end."""
        return self._closed

    @property
    def finished(self) -> bool:
        """Both directions ended, or the stream died: nothing more will happen on it."""
        return self._error is not None or (self.local_ended and self.remote_ended)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error()

    # The client side: the response head.

    async def response(self) -> tuple[int, Headers]:
        """Wait for the response head: (status, headers without pseudo-headers)."""
        while self._status is None:
            self._raise_if_failed()
            await self._lot.park()
        await trio.lowlevel.checkpoint()
        return self._status, self.response_headers

    # The server side: the response head.

    def _respond_nowait(self, status: int, headers: Headers | tuple = (), end_stream: bool = False) -> None:
        if not self._server:
            raise RuntimeError("only a server stream sends a response")
        if self.responded:
            raise RuntimeError("response already sent")
        if self._closed:
            raise trio.ClosedResourceError("stream is closed")
        self._raise_if_failed()
        self.responded = True
        self._conn._send_response(self, status, list(headers), end_stream)

    async def respond(self, status: int, headers: Headers | tuple = (), *, end_stream: bool = False) -> None:
        """Send the response head; with `end_stream` it is headers-only (error answers)."""
        self._respond_nowait(status, headers, end_stream)
        await trio.lowlevel.checkpoint()

    # trio.abc.ReceiveStream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            while not self._chunks:
                if self._closed:
                    raise trio.ClosedResourceError("stream is closed")
                if self.remote_ended:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return b""
                self._raise_if_failed()
                await self._lot.park()
            if self._closed:
                raise trio.ClosedResourceError("stream is closed")
            data = self._take(max_bytes)
            self._conn._consumed(self, len(data))
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        finally:
            self._receiving = False

    def _take(self, max_bytes: int | None) -> bytes:
        chunk = self._chunks[0]
        available = len(chunk) - self._offset
        if max_bytes is None or max_bytes >= available:
            data = chunk if self._offset == 0 else chunk[self._offset:]
            self._chunks.popleft()
            self._offset = 0
        else:
            data = chunk[self._offset:self._offset + max_bytes]
            self._offset += max_bytes
        self._buffered -= len(data)
        return data

    async def receive_all(self, limit: int) -> bytes:
        """Read until END_STREAM; more than `limit` bytes is an error."""
        parts = []
        size = 0
        while True:
            data = await self.receive_some()
            if not data:
                return b"".join(parts)
            size += len(data)
            if size > limit:
                raise BodyTooLarge(f"body larger than {limit} bytes")
            parts.append(data)

    # trio.abc.SendStream

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_sendable()
            view = memoryview(data).cast("B")
            sent = 0
            while sent < len(view):
                sent += await self._conn._send_data(self, view[sent:])
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    def _check_sendable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("stream is closed")
        if self.local_ended:
            raise trio.ClosedResourceError("EOF already sent on this stream")
        self._raise_if_failed()
        if self._server and not self.responded:
            raise RuntimeError("send the response head with respond() before the body")

    async def wait_send_all_might_not_block(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._check_sendable()
        await self._conn._wait_writable(self)

    # trio.abc.HalfCloseableStream

    async def send_eof(self) -> None:
        """END_STREAM: our direction is done; the peer's may go on."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self.local_ended:
            if self._closed:
                raise trio.ClosedResourceError("stream is closed")
            self._raise_if_failed()
            if self._server and not self.responded:
                raise RuntimeError("send the response head with respond() before ending the stream")
            self._conn._end_stream(self)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def reset(self, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        """Send RST_STREAM (unless the stream already finished) and fail pending operations."""
        if not self.finished:
            self._conn._reset_stream(self, error_code)

    def _abandon(self) -> None:
        if not self._closed:
            self._closed = True
            self.reset(h2.errors.ErrorCodes.NO_ERROR if self.local_ended else h2.errors.ErrorCodes.CANCEL)
            self._conn._release(self)
            self._lot.unpark_all()

    async def aclose(self) -> None:
        """Close our end: a stream that did not finish both ways is reset.

        After our END_STREAM the reset says NO_ERROR (RFC 9113 8.1: a complete response with the
        request still coming), otherwise CANCEL.
        """
        self._abandon()
        await trio.lowlevel.checkpoint()
