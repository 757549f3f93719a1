"""A small load generator and sink, run inside pods for benchmarks (the role of Istio's fortio).

    python -m components.apps.loadgen serve [--port 9000]
        a sink: reads until the client shuts down its side, answers the byte count (8 bytes).
    python -m components.apps.loadgen latency URL [-n 200]
        HTTP GETs, each on a new connection; prints p50/p99/mean in milliseconds as JSON.
    python -m components.apps.loadgen send HOST:PORT --bytes N
        sends N bytes to a sink and waits for its count; prints seconds and Gbit/s as JSON.
    python -m components.apps.loadgen connections HOST:PORT [--seconds 5] [--concurrency 8]
        opens, uses (1 byte each way) and closes connections; prints connections per second.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import urllib.parse

import h11
import trio

CHUNK = 1 << 20


async def _sink(stream: trio.SocketStream) -> None:
    total = 0
    try:
        while True:
            data = await stream.receive_some(CHUNK)
            if not data:
                break
            total += len(data)
        await stream.send_all(struct.pack("!Q", total))
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


async def serve(port: int) -> None:
    print(f"loadgen sink listening on 0.0.0.0:{port}", file=sys.stderr, flush=True)
    await trio.serve_tcp(_sink, port, host="0.0.0.0")


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


async def _get(host: str, port: int, path: str) -> int:
    stream = await trio.open_tcp_stream(host, port)
    conn = h11.Connection(h11.CLIENT)
    try:
        await stream.send_all(conn.send(h11.Request(method="GET", target=path, headers=[
            ("host", host), ("user-agent", "loadgen"), ("connection", "close")])))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status
    finally:
        await stream.aclose()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def latency(url: str, count: int) -> dict[str, float]:
    parts = urllib.parse.urlsplit(url)
    host, port, path = parts.hostname or "", parts.port or 80, parts.path or "/"
    await _get(host, port, path)  # warm-up: DNS, certificates, pooled HBONE connection
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        status = await _get(host, port, path)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"GET {url} answered {status}")
    return {"requests": count, "p50_ms": round(_percentile(samples, 0.5), 3),
            "p99_ms": round(_percentile(samples, 0.99), 3), "mean_ms": round(sum(samples) / count, 3)}


async def send(target: str, total: int) -> dict[str, float]:
    host, port = _split(target)
    block = b"\0" * CHUNK
    started = time.perf_counter()
    stream = await trio.open_tcp_stream(host, port)
    remaining = total
    while remaining:
        piece = block if remaining >= CHUNK else block[:remaining]
        await stream.send_all(piece)
        remaining -= len(piece)
    await stream.send_eof()
    answer = b""
    while len(answer) < 8:
        data = await stream.receive_some(8)
        if not data:
            break
        answer += data
    await stream.aclose()
    seconds = time.perf_counter() - started
    received = struct.unpack("!Q", answer)[0] if len(answer) == 8 else -1
    if received != total:
        raise SystemExit(f"the sink counted {received} bytes of {total}")
    return {"bytes": total, "seconds": round(seconds, 3), "gbit_per_s": round(total * 8 / seconds / 1e9, 3)}


async def connections(target: str, seconds: float, concurrency: int) -> dict[str, float]:
    host, port = _split(target)
    done = 0
    failed = 0

    async def worker() -> None:
        nonlocal done, failed
        while True:
            try:
                stream = await trio.open_tcp_stream(host, port)
                await stream.send_all(b"x")
                await stream.send_eof()
                answer = await stream.receive_some(8)
                await stream.aclose()
                if answer:
                    done += 1
                else:
                    failed += 1
            except OSError:
                failed += 1

    started = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    elapsed = time.perf_counter() - started
    return {"connections": done, "failed": failed, "per_second": round(done / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="loadgen")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int, default=9000)
    p = sub.add_parser("latency")
    p.add_argument("url")
    p.add_argument("-n", type=int, default=200)
    p = sub.add_parser("send")
    p.add_argument("target")
    p.add_argument("--bytes", type=int, required=True)
    p = sub.add_parser("connections")
    p.add_argument("target")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.mode == "serve":
        trio.run(serve, args.port)
        return
    if args.mode == "latency":
        result = trio.run(latency, args.url, args.n)
    elif args.mode == "send":
        result = trio.run(send, args.target, args.bytes)
    else:
        result = trio.run(connections, args.target, args.seconds, args.concurrency)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
