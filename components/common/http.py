"""HTTP/1.1 on trio with h11: the one server and the one client every component uses.

The server calls a handler per request and writes its `Response`; a response with a `stream`
is sent chunked, which is how the apiserver's watches and httpbin's streaming endpoints work.
The client opens one connection per request (to a TCP address or a Unix socket); `stream()`
hands the body over as it arrives, for watches.
"""

from __future__ import annotations

import json
import os
import socket
from http import HTTPStatus
import urllib.parse
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import h11
import trio

MAX_BODY = 64 * 1024 * 1024
READ_SIZE = 65536


class HTTPError(Exception):
    """A connection-level failure: the peer went away or spoke something that is not HTTP."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    client: Any = None
    _parsed: urllib.parse.SplitResult | None = field(default=None, repr=False)

    @property
    def _split(self) -> urllib.parse.SplitResult:
        if self._parsed is None:
            self._parsed = urllib.parse.urlsplit(self.target)
        return self._parsed

    @property
    def path(self) -> str:
        return urllib.parse.unquote(self._split.path)

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self._split.query, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, indent: int | None = None) -> "Response":
        body = json.dumps(obj, indent=indent).encode() + (b"\n" if indent else b"")
        return cls(status, [("content-type", "application/json")], body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        return cls(status, [("content-type", content_type)], text.encode())

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def json_body(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[Request], Awaitable[Response]]


def _decode_headers(headers: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in headers]


async def _receive_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HTTPError(f"connection lost: {exc}") from exc
        conn.receive_data(data)


async def _send(conn: h11.Connection, stream: trio.abc.Stream, event: Any) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _read_body(conn: h11.Connection, stream: trio.abc.Stream) -> bytes:
    chunks = []
    size = 0
    while True:
        event = await _receive_event(conn, stream)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise HTTPError("body too large")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise HTTPError(f"unexpected event {type(event).__name__}")


def _reason(status: int) -> bytes:
    """The standard reason phrase (`200 OK`), empty for a code without one."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _with_default_headers(response: Response) -> list[tuple[str, str]]:
    headers = list(response.headers)
    names = {k.lower() for k, _ in headers}
    if response.stream is None and "content-length" not in names:
        headers.append(("content-length", str(len(response.body))))
    if response.stream is not None and "transfer-encoding" not in names:
        headers.append(("transfer-encoding", "chunked"))
    return headers


async def serve_connection(stream: trio.abc.Stream, handler: Handler, client: Any = None) -> None:
    """Serve HTTP/1.1 requests on one connection until the peer closes it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            try:
                event = await _receive_event(conn, stream)
            except (HTTPError, h11.RemoteProtocolError) as exc:
                if isinstance(exc, h11.RemoteProtocolError) and conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, stream, h11.Response(status_code=exc.error_status_hint,
                                                           headers=[("content-length", "0"), ("connection", "close")]))
                return
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                return
            body = await _read_body(conn, stream)
            request = Request(event.method.decode(), event.target.decode("latin-1"),
                              _decode_headers(event.headers), body, client)
            response = await handler(request)
            await _send(conn, stream, h11.Response(status_code=response.status, reason=_reason(response.status),
                                                   headers=_with_default_headers(response)))
            if request.method != "HEAD":
                if response.stream is not None:
                    async for chunk in response.stream:
                        if chunk:
                            await _send(conn, stream, h11.Data(data=chunk))
                elif response.body:
                    await _send(conn, stream, h11.Data(data=response.body))
            await _send(conn, stream, h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                # End our direction before closing: over an HTTP/2 stream (a waypoint's HBONE
                # tunnel) closing alone is a reset, and the peer may drop the response it has.
                if isinstance(stream, trio.abc.HalfCloseableStream):
                    await stream.send_eof()
                return
            conn.start_next_cycle()
    except (HTTPError, h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await trio.aclose_forcefully(stream)


def _client_address(stream: trio.abc.Stream) -> Any:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return None
    try:
        return sock.getpeername()
    except OSError:
        return None


async def serve(listeners: list[trio.abc.Listener], handler: Handler,
                *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `handler` on every listener until cancelled."""

    async def on_connection(stream: trio.abc.Stream) -> None:
        await serve_connection(stream, handler, _client_address(stream))

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(trio.serve_listeners, on_connection, [listener])
        task_status.started()


async def open_unix_listener(path: str, backlog: int = socket.SOMAXCONN) -> trio.SocketListener:
    """A listening Unix stream socket at `path` (a stale file there is replaced).

    The backlog is the kernel's maximum: when a burst of clients (a kubelet starting hundreds of
    pods) overflows it, a non-blocking AF_UNIX connect fails with EAGAIN, which trio takes for a
    connect in progress and reports as connected; the client's first send then fails ENOTCONN.
    """
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    await sock.bind(path)
    sock.listen(backlog)
    return trio.SocketListener(sock)


UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its terminating NUL


async def _open_unix_socket(path: str) -> trio.abc.Stream:
    """Connect to a Unix socket, also one whose path is longer than sun_path holds (a node's
    socket under a long run directory): through /proc/self/fd of its directory."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return await trio.open_unix_socket(path)
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        return await trio.open_unix_socket(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
    finally:
        os.close(directory)


async def connect(address: str) -> trio.abc.Stream:
    """Open a stream to `unix:/path` or `host:port`."""
    if address.startswith("unix:"):
        return await _open_unix_socket(address[len("unix:"):])
    host, _, port = address.rpartition(":")
    return await trio.open_tcp_stream(host.strip("[]"), int(port))


def _request_event(method: str, target: str, host: str, headers: list[tuple[str, str]] | None,
                   body: bytes) -> h11.Request:
    all_headers = [("host", host)] + list(headers or [])
    if body or method in ("POST", "PUT", "PATCH"):
        all_headers.append(("content-length", str(len(body))))
    return h11.Request(method=method, target=target, headers=all_headers)


async def _send_request(conn: h11.Connection, sock: trio.abc.Stream, event: h11.Request, body: bytes) -> h11.Response:
    await _send(conn, sock, event)
    if body:
        await _send(conn, sock, h11.Data(data=body))
    await _send(conn, sock, h11.EndOfMessage())
    response = await _receive_event(conn, sock)
    if not isinstance(response, h11.Response):
        raise HTTPError(f"unexpected response event {type(response).__name__}")
    return response


@asynccontextmanager
async def stream(address: str, method: str, target: str, *, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"", host: str = "localhost"
                 ) -> AsyncIterator[tuple[int, list[tuple[str, str]], AsyncIterator[bytes]]]:
    """Send one request and yield (status, headers, body chunks) as the body arrives."""
    conn = h11.Connection(h11.CLIENT)
    sock = await connect(address)
    try:
        event = await _send_request(conn, sock, _request_event(method, target, host, headers, body), body)

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                ev = await _receive_event(conn, sock)
                if isinstance(ev, h11.Data):
                    yield bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    return
                else:
                    raise HTTPError(f"unexpected event {type(ev).__name__}")

        yield event.status_code, _decode_headers(event.headers), chunks()
    except h11.RemoteProtocolError as exc:
        raise HTTPError(str(exc)) from exc
    finally:
        await trio.aclose_forcefully(sock)


async def exchange(sock: trio.abc.Stream, method: str, target: str, headers: list[tuple[str, str]],
                   body: bytes = b"") -> Response:
    """One request on an open stream (a proxy's upstream tunnel), with the caller's headers as
    they are (they carry Host; Content-Length is set here); the whole response comes back."""
    conn = h11.Connection(h11.CLIENT)
    framing = {"content-length", "transfer-encoding"}
    sent = [(k, v) for k, v in headers if k.lower() not in framing]
    if body or method in ("POST", "PUT", "PATCH"):
        sent.append(("content-length", str(len(body))))
    try:
        event = await _send_request(conn, sock, h11.Request(method=method, target=target, headers=sent), body)
        data = await _read_body(conn, sock)
    except h11.ProtocolError as exc:
        raise HTTPError(str(exc)) from exc
    return Response(event.status_code, _decode_headers(event.headers), data)


async def request(address: str, method: str, target: str, *, headers: list[tuple[str, str]] | None = None,
                  body: bytes = b"", host: str = "localhost") -> Response:
    """Send one request and return the whole response."""
    async with stream(address, method, target, headers=headers, body=body, host=host) as (status, hdrs, chunks):
        parts = [chunk async for chunk in chunks]
    return Response(status, hdrs, b"".join(parts))
