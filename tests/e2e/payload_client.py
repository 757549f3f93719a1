"""Run inside a pod: open many TCP connections at once to an echo server, each sending its own
payload, and check every byte that comes back; print the outcome as one JSON line.

    python payload_client.py HOST:PORT [--connections 1000] [--size 256] [--timeout 60]

Connection i sends `size` bytes that start with its number and continue with bytes derived from
it, so two connections never carry the same payload; it half-closes, reads until the server
closes and compares. All connections are open together: each waits, once connected, until every
other one is connected before it sends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource

import trio


def payload(index: int, size: int) -> bytes:
    """The distinct payload of connection `index`."""
    head = f"{index:06d}:".encode()
    body = b""
    block = hashlib.sha256(head).digest()
    while len(head) + len(body) < size:
        body += block
        block = hashlib.sha256(block).digest()
    return (head + body)[:size]


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def run(host: str, port: int, count: int, size: int, timeout: float) -> dict[str, object]:
    errors: dict[str, int] = {}
    mismatched: list[int] = []
    open_now = 0
    most_open = 0
    all_connected = trio.Event()
    connected = 0
    ok = 0

    def note(error: str) -> None:
        errors[error] = errors.get(error, 0) + 1

    async def one(index: int) -> None:
        nonlocal open_now, most_open, connected, ok
        expected = payload(index, size)
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            note(f"connect: {exc.strerror or exc}")
            connected += 1
            if connected == count:
                all_connected.set()
            return
        async with stream:
            open_now += 1
            most_open = max(most_open, open_now)
            connected += 1
            if connected == count:
                all_connected.set()
            try:
                await all_connected.wait()
                await stream.send_all(expected)
                await stream.send_eof()
                received = bytearray()
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    received += data
            except (OSError, trio.BrokenResourceError) as exc:
                note(f"transfer: {exc}")
                return
            finally:
                open_now -= 1
        if bytes(received) == expected:
            ok += 1
        else:
            mismatched.append(index)

    with trio.move_on_after(timeout) as scope:
        async with trio.open_nursery() as nursery:
            for index in range(count):
                nursery.start_soon(one, index)
    if scope.cancelled_caught:
        note("timed out")
    return {"connections": count, "ok": ok, "most_open_at_once": most_open, "errors": errors,
            "mismatched": mismatched[:10], "mismatched_count": len(mismatched)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    raise_open_files_limit(args.connections + 64)
    host, _, port = args.target.rpartition(":")
    print(json.dumps(trio.run(run, host, int(port), args.connections, args.size, args.timeout)))


if __name__ == "__main__":
    main()
