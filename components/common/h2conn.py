"""HTTP/2 on trio with h2: the connection under HBONE, istiod's push stream and the CA.

h2 is the state machine; this module only moves bytes and wakes tasks. Per connection three
tasks run: a reader (transport -> h2 -> events -> streams), a writer (the one task that writes
the transport) and a keepalive (PING after `ping_interval` without receiving anything, connection
dropped if no PONG within `ping_timeout`). Everything that makes h2 produce bytes moves them into
an outbox the writer drains; stream writers wait while the outbox is above `send_buffer`, so the
reader never blocks on writing and both peers can send at full speed without deadlock.

Settings follow ztunnel (reference 1.5): stream window 4 MiB, connection window 16 MiB, frames up
to 1 MiB, header lists up to 16 KiB (client) / 64 KiB (server), at most 200 concurrent streams on
a server and 100 per client connection (the pool's limit).

Server: `serve_h2(transport, handler)` calls `handler(request, stream)` per stream. Client:
`H2ClientConnection(transport)`, driven by `run()` in a nursery (or `open_h2_connection`), offers
`connect()`, `request()`, `stream_response()` and says through `available_streams` whether a pool
may put one more stream on it. GOAWAY is graceful both ways: streams it covers run to the end.
"""

from __future__ import annotations

import binascii
import itertools
import logging
import math
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import AsyncIterator, Awaitable, Callable, NamedTuple

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
import trio
from hyperframe.frame import GoAwayFrame

from components.common.h2stream import (ConnectionClosed, Headers, H2Stream, StreamReset,
                                        get_header)

__all__ = [
    "CLIENT_CONFIG", "SERVER_CONFIG", "ConnectionClosed", "ConnectionUnavailable", "FullResponse",
    "H2ClientConnection", "H2Config", "H2Request", "H2ServerConnection", "H2Stream", "Handler",
    "Response", "StreamReset", "get_header", "open_h2_connection", "serve_h2",
]

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
DEFAULT_WINDOW = 65535
MAX_STREAM_ID = 2**31 - 1
READ_SIZE = 256 * KiB
CLOSE_TIMEOUT = 1.0
HEADER_LIST_HARD_LIMIT_FACTOR = 4
HEADER_FIELD_OVERHEAD = 32  # RFC 9113 6.5.2: a field's size is its name, its value and 32
MAX_BODY = 64 * MiB
ErrorCodes = h2.errors.ErrorCodes


@dataclass(frozen=True)
class H2Config:
    """Per-connection settings; `replace()` the defaults below to change one (tests shorten PINGs).

    `max_concurrent_streams` is advertised by a server; on a client it caps the streams we open.
    `send_buffer` is how many bytes may wait for the transport before stream writers block.
    """

    max_header_list_size: int
    max_concurrent_streams: int
    send_buffer: int
    stream_window: int = 4 * MiB
    connection_window: int = 16 * MiB
    max_frame_size: int = 1 * MiB
    ping_interval: float | None = 10.0
    ping_timeout: float = 20.0

    def replace(self, **changes: object) -> "H2Config":
        return replace(self, **changes)


CLIENT_CONFIG = H2Config(max_header_list_size=16 * KiB, max_concurrent_streams=100, send_buffer=4 * MiB)
SERVER_CONFIG = H2Config(max_header_list_size=64 * KiB, max_concurrent_streams=200, send_buffer=400 * KiB)


class ConnectionUnavailable(Exception):
    """The client connection takes no new stream (closed, GOAWAY, or at its stream limit)."""


@dataclass
class H2Request:
    """A request head as the server received it; `headers` excludes the pseudo-headers."""

    method: str
    authority: str | None
    path: str | None
    scheme: str | None
    headers: Headers
    stream_id: int

    def header(self, name: str, default: str | None = None) -> str | None:
        return get_header(self.headers, name, default)


class Response(NamedTuple):
    """A response head with its body still to read (CONNECT tunnels, streaming responses)."""

    status: int
    headers: Headers
    stream: H2Stream


class FullResponse(NamedTuple):
    status: int
    headers: Headers
    body: bytes


Handler = Callable[[H2Request, H2Stream], Awaitable[None]]


def _raw_data_repr(data: bytes | None) -> str:
    """hyperframe's `_raw_data_repr`, same output, hexlifying only the bytes it shows.

    h2 formats `repr(frame)` of every received frame for its trace log even when nothing logs,
    and hyperframe's version hexlifies the whole payload before cutting it to 20 digits: with
    1 MiB DATA frames that was a third of a tunnel's CPU time.
    """
    if not data:
        return "None"
    digits = binascii.hexlify(data[:11]).decode("ascii")
    return "<hex:" + (digits[:20] + "..." if len(digits) > 20 else digits) + ">"


hyperframe.frame._raw_data_repr = _raw_data_repr


class _H2State(h2.connection.H2Connection):
    """h2's connection, kept open by a graceful GOAWAY.

    h2 moves the whole connection to CLOSED on a received GOAWAY and drops queued output, after
    which every frame is a protocol error. HTTP/2 lets the streams a GOAWAY covers run to the
    end (RFC 9113 6.8), which is how ztunnel drains; so a NO_ERROR GOAWAY only reports the event
    here, and the connection stops opening streams. A GOAWAY with an error goes through h2.
    """

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list, list]:
        if frame.error_code != ErrorCodes.NO_ERROR:
            return super()._receive_goaway_frame(frame)
        event = h2.events.ConnectionTerminated()
        event.error_code = ErrorCodes.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


def _decode(headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], Headers]:
    pseudo: dict[str, str] = {}
    regular: Headers = []
    for name, value in headers:
        key = name.decode("latin-1")
        if key.startswith(":"):
            pseudo[key] = value.decode("latin-1")
        else:
            regular.append((key, value.decode("latin-1")))
    return pseudo, regular


def _encode(headers: Headers | tuple) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in headers]


class _Connection:
    """What client and server share: I/O tasks, flow control, keepalive, GOAWAY, shutdown."""

    def __init__(self, transport: trio.abc.Stream, config: H2Config, *, client: bool) -> None:
        self._transport = transport
        self._config = config
        self._client = client
        self._h2 = _H2State(h2.config.H2Configuration(client_side=client, header_encoding=None))
        settings = {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: config.stream_window,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: config.max_frame_size,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: config.max_header_list_size,
        }
        if client:
            settings[h2.settings.SettingCodes.ENABLE_PUSH] = 0
        else:
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = config.max_concurrent_streams
        # Replaced before initiate_connection() so the first SETTINGS frame carries them and
        # new streams get the large window at once, as hypercorn does.
        self._h2.local_settings = h2.settings.Settings(client=client, initial_values=settings)
        self._h2.max_inbound_frame_size = config.max_frame_size
        # A server decodes header blocks up to a hard bound and refuses a request over its advertised
        # limit on the stream alone (431, as h2's server does); a client, or a block past the bound,
        # ends the connection.
        self._h2.decoder.max_header_list_size = (
            config.max_header_list_size if client else HEADER_LIST_HARD_LIMIT_FACTOR * config.max_header_list_size)
        self._streams: dict[int, H2Stream] = {}
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._space_lot = trio.lowlevel.ParkingLot()
        self._window_lot = trio.lowlevel.ParkingLot()
        self._pings: dict[bytes, trio.Event] = {}
        self._ping_ids = itertools.count(1)
        self._last_received = 0.0
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._terminated = trio.Event()
        self._done = trio.Event()
        self.close_reason: str | None = None
        self.goaway_received = False
        self.goaway_sent = False

    # State

    @property
    def closed(self) -> bool:
        return self._terminated.is_set()

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    # Running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the connection until it ends; the transport is closed on return."""
        if self._started:
            raise RuntimeError("connection already running")
        self._started = True
        self._last_received = trio.current_time()
        try:
            self._h2.initiate_connection()
            if self._config.connection_window > DEFAULT_WINDOW:
                self._h2.increment_flow_control_window(self._config.connection_window - DEFAULT_WINDOW)
            self._pump()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write_loop)
                nursery.start_soon(self._read_loop)
                if self._config.ping_interval is not None:
                    nursery.start_soon(self._keepalive_loop)
                task_status.started()
                await self._terminated.wait()
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await self._flushed()
                nursery.cancel_scope.cancel()
        finally:
            self._terminate("connection closed")
            with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
                try:
                    await self._transport.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            self._done.set()

    async def aclose(self) -> None:
        """Send GOAWAY and close now; streams still running fail with ConnectionClosed."""
        if not self.closed:
            self._send_goaway(ErrorCodes.NO_ERROR)
            self._terminate("connection closed locally")
        if self._started:
            await self._done.wait()
        else:
            await trio.aclose_forcefully(self._transport)

    async def drain(self, timeout: float | None = None) -> None:
        """Graceful shutdown: GOAWAY, no new streams, close when the running ones end (or at timeout)."""
        if not self.closed and not self.goaway_sent:
            self._send_goaway(ErrorCodes.NO_ERROR)
            self._finish_if_idle()
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._terminated.wait()
        await self.aclose()

    def _terminate(self, reason: str) -> None:
        if self.closed:
            return
        self.close_reason = reason
        for stream in list(self._streams.values()):
            stream._fail(lambda: ConnectionClosed(reason))
        self._streams.clear()
        self._wake_senders()
        self._writer_lot.unpark_all()
        self._terminated.set()

    def _finish_if_idle(self) -> None:
        if (self.goaway_sent or self.goaway_received) and not self._streams:
            self._terminate("connection closed after GOAWAY")

    def _send_goaway(self, error_code: int) -> None:
        # Built here rather than with h2's close_connection(), which would close h2's side too.
        self._pump()
        frame = GoAwayFrame(stream_id=0, last_stream_id=self._h2.highest_inbound_stream_id,
                            error_code=error_code)
        self._queue(frame.serialize())
        self.goaway_sent = True

    # The writer

    def _pump(self) -> None:
        """Move whatever h2 wants to send into the outbox."""
        data = self._h2.data_to_send()
        if data:
            self._queue(data)

    def _queue(self, data: bytes) -> None:
        self._outbox.append(data)
        self._outbox_bytes += len(data)
        self._writer_lot.unpark_all()

    async def _write_loop(self) -> None:
        while True:
            while not self._outbox:
                await self._writer_lot.park()
            data = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
            self._outbox.clear()
            try:
                await self._transport.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._outbox_bytes = 0
                self._space_lot.unpark_all()
                self._terminate(f"connection lost: {exc or type(exc).__name__}")
                return
            self._outbox_bytes -= len(data)
            self._space_lot.unpark_all()

    async def _flushed(self) -> None:
        while self._outbox_bytes:
            await self._space_lot.park()

    # The reader

    async def _read_loop(self) -> None:
        while not self.closed:
            try:
                data = await self._transport.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._terminate(f"connection lost: {exc or type(exc).__name__}")
                return
            if not data:
                self._terminate("connection closed by peer")
                return
            self._last_received = trio.current_time()
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                self._pump()
                self._terminate(f"protocol error: {exc}")
                return
            for event in events:
                self._dispatch(event)
            self._pump()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window_lot.unpark_all()
        elif isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                pseudo, headers = _decode(event.headers)
                stream._on_response(int(pseudo.get(":status", "0")), headers)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = _decode(event.headers)[1]
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._on_end()
                self._forget_if_finished(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                code = int(event.error_code)
                remote = event.remote_reset
                self._return_credit(stream, stream._fail(lambda: StreamReset(code, remote)))
                self._wake_senders()
                self._finish_if_idle()
        elif isinstance(event, h2.events.PingAckReceived):
            waiter = self._pings.pop(event.ping_data, None)
            if waiter is not None:
                waiter.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        padding = event.flow_controlled_length - len(event.data)
        if stream is None:
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        if padding:
            self._h2.acknowledge_received_data(padding, event.stream_id)
        stream._on_data(event.data)

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        self._h2.reset_stream(event.stream_id, ErrorCodes.PROTOCOL_ERROR)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.goaway_received = True
        if event.error_code != ErrorCodes.NO_ERROR:
            name = getattr(event.error_code, "name", event.error_code)
            self._terminate(f"GOAWAY received: {name}")
            return
        last = event.last_stream_id
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last and (stream_id % 2 == 1) == self._client:
                self._streams.pop(stream_id)
                self._safe_reset(stream_id, ErrorCodes.CANCEL)
                stream._fail(lambda: StreamReset(ErrorCodes.REFUSED_STREAM, True))
        self._wake_senders()
        self._finish_if_idle()

    def _wake_senders(self) -> None:
        """Stream writers wait on the connection's lots, not their stream's: wake them to re-check."""
        self._window_lot.unpark_all()
        self._space_lot.unpark_all()

    # Used by H2Stream

    def _consumed(self, stream: H2Stream, size: int) -> None:
        if size and not self.closed:
            self._h2.acknowledge_received_data(size, stream.stream_id)
            self._pump()

    def _return_credit(self, stream: H2Stream, size: int) -> None:
        """Unread bytes of a dead stream still count against the connection window: give them back."""
        if size and not self.closed:
            self._h2.acknowledge_received_data(size, stream.stream_id)
            self._pump()

    async def _send_data(self, stream: H2Stream, view: memoryview) -> int:
        """Send one DATA frame, as large as window, frame size and `view` allow; wait for room first."""
        while True:
            stream._check_sendable()
            window = self._h2.local_flow_control_window(stream.stream_id)
            if window <= 0:
                await self._window_lot.park()
            elif self._outbox_bytes >= self._config.send_buffer:
                await self._space_lot.park()
            else:
                break
        size = min(window, self._h2.max_outbound_frame_size, len(view))
        self._h2.send_data(stream.stream_id, view[:size])
        self._pump()
        return size

    async def _wait_writable(self, stream: H2Stream) -> None:
        while True:
            stream._check_sendable()
            if self._h2.local_flow_control_window(stream.stream_id) <= 0:
                await self._window_lot.park()
            elif self._outbox_bytes >= self._config.send_buffer:
                await self._space_lot.park()
            else:
                await trio.lowlevel.checkpoint()
                return

    def _end_stream(self, stream: H2Stream) -> None:
        self._h2.end_stream(stream.stream_id)
        self._pump()
        stream.local_ended = True
        self._forget_if_finished(stream)

    def _send_response(self, stream: H2Stream, status: int, headers: Headers, end_stream: bool) -> None:
        self._h2.send_headers(stream.stream_id, [(":status", str(status))] + _encode(headers),
                              end_stream=end_stream)
        self._pump()
        if end_stream:
            stream.local_ended = True
            self._forget_if_finished(stream)

    def _reset_stream(self, stream: H2Stream, error_code: int) -> None:
        self._streams.pop(stream.stream_id, None)
        if not self.closed:
            self._safe_reset(stream.stream_id, error_code)
        self._return_credit(stream, stream._fail(lambda: StreamReset(error_code, False)))
        self._wake_senders()
        self._pump()
        self._finish_if_idle()

    def _safe_reset(self, stream_id: int, error_code: int) -> None:
        try:
            self._h2.reset_stream(stream_id, error_code)
        except h2.exceptions.StreamClosedError:
            pass

    def _release(self, stream: H2Stream) -> None:
        """The user closed the stream: drop its unread data and forget it."""
        self._streams.pop(stream.stream_id, None)
        self._consumed(stream, stream._drop_buffer())
        self._finish_if_idle()

    def _forget_if_finished(self, stream: H2Stream) -> None:
        if stream.local_ended and stream.remote_ended:
            self._streams.pop(stream.stream_id, None)
            self._finish_if_idle()

    # Keepalive

    async def _keepalive_loop(self) -> None:
        interval = self._config.ping_interval
        assert interval is not None
        while True:
            due = self._last_received + interval
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            opaque = next(self._ping_ids).to_bytes(8, "big")
            pong = trio.Event()
            self._pings[opaque] = pong
            self._h2.ping(opaque)
            self._pump()
            with trio.move_on_after(self._config.ping_timeout):
                await pong.wait()
            if not pong.is_set():
                log.debug("h2 keepalive: no PONG within %ss, dropping connection", self._config.ping_timeout)
                self._terminate(f"ping timeout: no PONG within {self._config.ping_timeout}s")
                return


class H2ClientConnection(_Connection):
    """The client end of an HTTP/2 connection over any trio stream (TCP, TLS, in-memory).

    Run it with `await nursery.start(conn.run)` (or use `open_h2_connection`). A pool checks
    `available_streams` and opens streams with `open_stream` (synchronous, so check-then-open
    cannot race) or the async helpers.
    """

    def __init__(self, transport: trio.abc.Stream, config: H2Config = CLIENT_CONFIG, *,
                 authority: str = "localhost", scheme: str = "https") -> None:
        super().__init__(transport, config, client=True)
        self.authority = authority
        self.scheme = scheme

    @property
    def available_streams(self) -> int:
        """How many more streams this connection takes now: 0 once closed or after GOAWAY."""
        if self.closed or self.goaway_received or self.goaway_sent:
            return 0
        if self._h2.highest_outbound_stream_id >= MAX_STREAM_ID - 2:
            return 0
        limit = min(self._config.max_concurrent_streams, self._h2.remote_settings.max_concurrent_streams)
        return max(0, limit - self._h2.open_outbound_streams)

    @property
    def can_open_stream(self) -> bool:
        return self.available_streams > 0

    def _unavailable_reason(self) -> str:
        if self.closed:
            return f"connection closed ({self.close_reason})"
        if self.goaway_received:
            return "connection received GOAWAY"
        if self.goaway_sent:
            return "connection is draining"
        return "connection is at its stream limit"

    def open_stream(self, method: str, *, authority: str | None = None, path: str | None = None,
                    scheme: str | None = None, headers: Headers | tuple = (),
                    end_stream: bool = False) -> H2Stream:
        """Send a request head and return its stream; CONNECT carries only :method and :authority."""
        if not self.can_open_stream:
            raise ConnectionUnavailable(self._unavailable_reason())
        pseudo = [(":method", method), (":authority", authority or self.authority)]
        if method != "CONNECT":
            pseudo += [(":scheme", scheme or self.scheme), (":path", path or "/")]
        stream_id = self._h2.get_next_available_stream_id()
        stream = H2Stream(self, stream_id, server=False)
        self._h2.send_headers(stream_id, pseudo + _encode(headers), end_stream=end_stream)
        self._pump()
        self._streams[stream_id] = stream
        if end_stream:
            stream.local_ended = True
        return stream

    async def _response(self, stream: H2Stream) -> tuple[int, Headers]:
        try:
            return await stream.response()
        except BaseException:
            stream._abandon()
            raise

    async def connect(self, authority: str, headers: Headers | tuple = ()) -> Response:
        """HTTP/2 CONNECT: the tunnel is `Response.stream` when the status is 200.

        Any other status comes headers-only (the stream has ended), as ztunnel answers errors.
        """
        stream = self.open_stream("CONNECT", authority=authority, headers=headers)
        status, response_headers = await self._response(stream)
        return Response(status, response_headers, stream)

    async def stream_response(self, method: str, path: str, headers: Headers | tuple = (),
                              body: bytes = b"") -> Response:
        """Send a whole request; return the head and the body as a stream (close it when done)."""
        stream = self.open_stream(method, path=path, headers=headers, end_stream=not body)
        try:
            if body:
                await stream.send_all(body)
                await stream.send_eof()
        except BaseException:
            stream._abandon()
            raise
        status, response_headers = await self._response(stream)
        return Response(status, response_headers, stream)

    async def request(self, method: str, path: str, headers: Headers | tuple = (), body: bytes = b"",
                      *, max_body: int = MAX_BODY) -> FullResponse:
        """One request, one whole response body (the CA's JSON exchange)."""
        status, response_headers, stream = await self.stream_response(method, path, headers, body)
        async with stream:
            data = await stream.receive_all(max_body)
        return FullResponse(status, response_headers, data)


class H2ServerConnection(_Connection):
    """The server end: each new stream runs `handler(request, stream)` in the connection's nursery.

    A handler answers with `await stream.respond(status, headers, end_stream=...)`, then uses the
    stream. When it returns, a missing END_STREAM is sent and an unfinished stream reset; a
    handler that raised gets a 500 (or a reset if it had already answered).
    """

    def __init__(self, transport: trio.abc.Stream, handler: Handler, config: H2Config = SERVER_CONFIG) -> None:
        super().__init__(transport, config, client=False)
        self._handler = handler

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        if self.goaway_sent or self.closed:
            self._safe_reset(event.stream_id, ErrorCodes.REFUSED_STREAM)
            return
        assert self._nursery is not None
        size = sum(len(name) + len(value) + HEADER_FIELD_OVERHEAD for name, value in event.headers)
        if size > self._config.max_header_list_size:
            self._h2.send_headers(event.stream_id, [(":status", "431")], end_stream=True)
            self._safe_reset(event.stream_id, ErrorCodes.REFUSED_STREAM)
            return
        pseudo, headers = _decode(event.headers)
        request = H2Request(method=pseudo.get(":method", ""), authority=pseudo.get(":authority"),
                            path=pseudo.get(":path"), scheme=pseudo.get(":scheme"),
                            headers=headers, stream_id=event.stream_id)
        stream = H2Stream(self, event.stream_id, server=True)
        self._streams[event.stream_id] = stream
        self._nursery.start_soon(self._run_handler, request, stream)

    async def _run_handler(self, request: H2Request, stream: H2Stream) -> None:
        try:
            await self._handler(request, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            log.warning("h2 handler failed for %s %s", request.method, request.path or request.authority,
                        exc_info=True)
            if not stream.finished and not stream.closed:
                if stream.responded:
                    stream.reset(ErrorCodes.INTERNAL_ERROR)
                else:
                    stream._respond_nowait(500, end_stream=True)
        else:
            if not stream.finished and not stream.closed:
                if not stream.responded:
                    stream._respond_nowait(500, end_stream=True)
                elif not stream.local_ended:
                    self._end_stream(stream)
        finally:
            stream._abandon()


async def serve_h2(transport: trio.abc.Stream, handler: Handler, *, config: H2Config = SERVER_CONFIG,
                   task_status: trio.TaskStatus[H2ServerConnection] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve HTTP/2 on one connection until it ends; `task_status` gets the connection (to drain it)."""
    conn = H2ServerConnection(transport, handler, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.run)
        task_status.started(conn)


@asynccontextmanager
async def open_h2_connection(transport: trio.abc.Stream, config: H2Config = CLIENT_CONFIG, *,
                             authority: str = "localhost",
                             scheme: str = "https") -> AsyncIterator[H2ClientConnection]:
    """A running client connection for the duration of the block, closed (GOAWAY) at its end."""
    conn = H2ClientConnection(transport, config, authority=authority, scheme=scheme)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.run)
        try:
            yield conn
        finally:
            await conn.aclose()
