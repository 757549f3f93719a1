"""Run inside a pod: one bad (or good) client of ztunnel's HBONE port; print what became of it as
one JSON line: {"closed": "<how>"} when the server closed or reset the connection, or
{"status": N, ...} for the answer to a CONNECT.

    python hbone_probe.py CASE < spec.json

The spec (JSON on stdin) holds `target` (ip:15008) and, for the TLS cases, `chain`, `key` and
`root` (PEM text) and `authority` (the CONNECT's). Cases:

    garbage        random bytes where a TLS ClientHello belongs
    plain-http     an HTTP/1.1 request in clear text
    tls            TLS with the given certificate; then CONNECT `authority`; on 200, a line is
                   sent through the tunnel and the first bytes of the answer are reported
    oversized      CONNECT with a header list over ztunnel's 64 KiB limit
    never-reads    `streams` CONNECTs to an echo server, `bytes` sent on each, then the client
                   never reads again for `hold` seconds
"""

from __future__ import annotations

import json
import os
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import trio

from components.common.tls import client_context

READ_SIZE = 65536
TIMEOUT = 10.0


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


async def _closed_after(stream: trio.abc.Stream) -> dict[str, object]:
    """Read until the server closes: how it did, or that it did not."""
    try:
        with trio.fail_after(TIMEOUT):
            while await stream.receive_some(READ_SIZE):
                pass
    except trio.TooSlowError:
        return {"open": "the server kept the connection open"}
    except (trio.BrokenResourceError, OSError) as exc:
        return {"closed": f"reset: {exc.__cause__ or exc}"}
    return {"closed": "eof"}


async def raw(target: str, data: bytes) -> dict[str, object]:
    stream = await trio.open_tcp_stream(*_split(target))
    async with stream:
        await stream.send_all(data)
        return await _closed_after(stream)


async def _tls(spec: dict[str, str]) -> trio.SSLStream:
    context = client_context(spec["chain"].encode(), spec["key"].encode(), spec["root"].encode())
    tcp = await trio.open_tcp_stream(*_split(spec["target"]))
    stream = trio.SSLStream(tcp, context, server_hostname=None)
    with trio.fail_after(TIMEOUT):
        await stream.do_handshake()
    return stream


class H2:
    """A bare HTTP/2 client on a TLS stream, frame by frame."""

    def __init__(self, stream: trio.SSLStream) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def events(self) -> list[h2.events.Event]:
        data = await self.stream.receive_some(READ_SIZE)
        if not data:
            raise EOFError("eof")
        events = self.conn.receive_data(data)
        await self.flush()
        return events

    def connect(self, authority: str, extra: list[tuple[str, str]] = ()) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(":method", "CONNECT"), (":authority", authority), *extra])
        return stream_id

    async def response(self, stream_id: int) -> dict[str, object]:
        """The status of `stream_id`, or how the stream or connection ended without one."""
        with trio.fail_after(TIMEOUT):
            while True:
                for event in await self.events():
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                        return {"status": int(dict(event.headers)[":status"])}
                    if isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                        return {"reset": int(event.error_code)}
                    if isinstance(event, h2.events.ConnectionTerminated):
                        return {"closed": f"goaway {int(event.error_code)}"}


async def tls_case(spec: dict[str, str], oversized: bool) -> dict[str, object]:
    try:
        stream = await _tls(spec)
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        return {"closed": f"handshake: {exc.__cause__ or exc}"}
    async with stream:
        client = H2(stream)
        extra = [(f"x-filler-{i}", "x" * 4000) for i in range(20)] if oversized else []
        stream_id = client.connect(spec["authority"], extra)
        try:
            await client.flush()
            outcome = await client.response(stream_id)
        except (trio.BrokenResourceError, OSError, EOFError) as exc:
            return {"closed": f"{exc.__cause__ or exc}"}
        if outcome.get("status") == 200:
            client.conn.send_data(stream_id, b"GET /ip HTTP/1.0\r\n\r\n")
            await client.flush()
            answer = b""
            with trio.move_on_after(TIMEOUT):
                while not answer:
                    for event in await client.events():
                        if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                            answer += event.data
            outcome["answer"] = answer[:200].decode(errors="replace")
        elif oversized:
            # The connection must still carry a good CONNECT after the refused one.
            good = client.connect(spec["good_authority"])
            await client.flush()
            outcome["then"] = await client.response(good)
        return outcome


async def never_reads(spec: dict[str, object]) -> dict[str, object]:
    stream = await _tls(spec)  # type: ignore[arg-type]
    async with stream:
        client = H2(stream)
        await client.flush()
        ids = [client.connect(str(spec["authority"])) for _ in range(int(spec["streams"]))]
        await client.flush()
        answered: set[int] = set()
        with trio.fail_after(TIMEOUT):
            while len(answered) < len(ids) or client.conn.outbound_flow_control_window < int(spec["bytes"]):
                for event in await client.events():
                    if isinstance(event, h2.events.ResponseReceived):
                        answered.add(event.stream_id)
        sent = 0
        chunk = os.urandom(16384)
        for stream_id in ids:
            for _ in range(int(spec["bytes"]) // len(chunk)):
                if client.conn.local_flow_control_window(stream_id) < len(chunk):
                    break
                client.conn.send_data(stream_id, chunk)
                sent += len(chunk)
        await client.flush()
        print(json.dumps({"holding": len(ids), "sent": sent}), flush=True)
        await trio.sleep(float(spec["hold"]))  # never reading: ztunnel's answers pile up against us
        return {"streams": len(ids), "sent": sent}


async def main() -> None:
    case = sys.argv[1]
    spec = json.loads(sys.stdin.read())
    if case == "garbage":
        outcome = await raw(spec["target"], bytes(range(256)) * 16)
    elif case == "plain-http":
        outcome = await raw(spec["target"], b"GET / HTTP/1.1\r\nHost: httpbin\r\n\r\n")
    elif case in ("tls", "oversized"):
        outcome = await tls_case(spec, oversized=case == "oversized")
    elif case == "never-reads":
        outcome = await never_reads(spec)
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(outcome))


trio.run(main)
