"""Copying bytes both ways between two streams (ztunnel's `copy_bidirectional`).

Each direction reads big chunks (256 KiB: every read is a trip through trio's scheduler) and
writes them on before reading more, so memory per connection is bounded by one chunk per
direction. An EOF is passed on as a half-close and the other direction keeps going until it ends
too. An error in either direction ends both; the error text is returned for the access log.
Byte counts are reported as they flow.
"""

from __future__ import annotations

from typing import Callable

import trio

READ_SIZE = 256 * 1024

Counter = Callable[[int], None]


class _Failed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


async def _pump(source: trio.abc.ReceiveStream, sink: trio.abc.HalfCloseableStream, count: Counter,
                label: str) -> None:
    while True:
        try:
            data = await source.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Failed(f"{label}: {exc or type(exc).__name__}") from exc
        if not data:
            break
        try:
            await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Failed(f"{label}: {exc or type(exc).__name__}") from exc
        count(len(data))
    try:
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def relay(downstream: trio.abc.HalfCloseableStream, upstream: trio.abc.HalfCloseableStream,
                sent: Counter, received: Counter) -> str | None:
    """Copy until both directions ended; `sent` counts downstream→upstream bytes, `received`
    upstream→downstream. Returns None, or the first error's text."""
    errors: list[str] = []

    async def direction(source: trio.abc.ReceiveStream, sink: trio.abc.HalfCloseableStream, count: Counter,
                        label: str, scope: trio.CancelScope) -> None:
        try:
            await _pump(source, sink, count, label)
        except _Failed as exc:
            errors.append(exc.text)
            scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(direction, downstream, upstream, sent, "send", nursery.cancel_scope)
        nursery.start_soon(direction, upstream, downstream, received, "receive", nursery.cancel_scope)
    return errors[0] if errors else None
