"""The subscription client against a stand-in istiod (an h2c server on 127.0.0.1): messages,
reconnection with back-off, error answers, slow consumers and shutdown."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Awaitable, Callable

import pytest
import trio

from components.common import jsonlines, meshconfig
from components.common.h2conn import H2Request, H2Stream, serve_h2

Handler = Callable[[H2Request, H2Stream], Awaitable[None]]


def config(version: int, *names: str) -> dict[str, Any]:
    return {"version": str(version), "type": "ambient-config", "workloads": [{"name": n} for n in names],
            "services": [], "policies": []}


class FakeIstiod:
    """Serves `handler` on 127.0.0.1; `stop()` drops the listener and every connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[H2Request] = []
        self.address = ""
        self._scope: trio.CancelScope | None = None

    async def _handle(self, request: H2Request, stream: H2Stream) -> None:
        self.requests.append(request)
        await self.handler(request, stream)

    async def run(self, port: int = 0, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._scope:
            listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
            self.address = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"
            await trio.serve_listeners(lambda transport: serve_h2(transport, self._handle), listeners,
                                       task_status=task_status)

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()


def pushes(*messages: dict[str, Any], then_close: bool = False) -> Handler:
    async def handler(request: H2Request, stream: H2Stream) -> None:
        await stream.respond(200, [("content-type", "application/x-ndjson")])
        for message in messages:
            await jsonlines.send_json(stream, message)
        if not then_close:
            await trio.sleep_forever()

    return handler


async def next_config(iterator: Any, timeout: float = 1.0) -> dict[str, Any]:
    with trio.fail_after(timeout):
        return await iterator.__anext__()


async def test_configs_are_yielded_in_order_with_node_and_id_in_the_request(nursery):
    istiod = FakeIstiod(pushes(config(1, "a"), config(2, "a", "b")))
    await nursery.start(istiod.run)
    connects = []
    async with meshconfig.subscribe(istiod.address, "worker", subscriber_id="ztunnel-x.istio-system",
                                    on_connect=lambda: connects.append(1)) as subscription:
        configs = aiter(subscription)
        seen = [await next_config(configs)]
        if seen[0]["version"] == "1":
            seen.append(await next_config(configs))
        assert seen[-1] == config(2, "a", "b")
        assert subscription.connected and subscription.latest == config(2, "a", "b")
    request, = istiod.requests
    url = urllib.parse.urlsplit(request.path)
    assert (request.method, url.path) == ("GET", "/v1/ambient")
    assert urllib.parse.parse_qs(url.query) == {"node": ["worker"], "id": ["ztunnel-x.istio-system"]}
    assert connects == [1]


async def test_retries_with_doubling_backoff_until_istiod_is_up(nursery, caplog):
    caplog.set_level(logging.WARNING, logger="components.common.meshconfig")
    probe = FakeIstiod(pushes())
    await nursery.start(probe.run)
    address = probe.address
    probe.stop()
    async with meshconfig.subscribe(address, "worker") as subscription:
        with trio.fail_after(2):
            while sum("retrying in" in r.getMessage() for r in caplog.records) < 5:
                await trio.sleep(0.01)
        istiod = FakeIstiod(pushes(config(1, "a")))
        await nursery.start(istiod.run, int(address.rsplit(":", 1)[1]))
        assert await next_config(aiter(subscription), timeout=2) == config(1, "a")
    delays = [r.getMessage().rsplit(" ", 1)[1] for r in caplog.records if "retrying in" in r.getMessage()]
    assert delays[:5] == ["10ms", "20ms", "40ms", "80ms", "160ms"]
    assert "XDS client connection error: " in caplog.records[0].getMessage()


def test_backoff_is_capped_at_five_seconds():
    delay = meshconfig.INITIAL_BACKOFF
    for _ in range(20):
        delay = meshconfig.next_backoff(delay)
    assert delay == 5.0


async def test_a_broken_stream_reconnects_and_yields_the_current_config_again(nursery):
    istiod = FakeIstiod(pushes(config(7, "a"), then_close=True))
    await nursery.start(istiod.run)
    connects = []
    async with meshconfig.subscribe(istiod.address, "worker", on_connect=lambda: connects.append(1)) as subscription:
        configs = aiter(subscription)
        first = await next_config(configs)
        again = await next_config(configs)
    assert first == again == config(7, "a")
    assert len(istiod.requests) >= 2 and len(connects) >= 2


async def test_an_error_answer_is_retried(nursery, caplog):
    caplog.set_level(logging.WARNING, logger="components.common.meshconfig")
    answers = iter([503])

    async def handler(request: H2Request, stream: H2Stream) -> None:
        status = next(answers, 200)
        if status != 200:
            await stream.respond(status, [("content-type", "text/plain")])
            await stream.send_all(b"not ready")
            return
        await pushes(config(1, "a"))(request, stream)

    istiod = FakeIstiod(handler)
    await nursery.start(istiod.run)
    async with meshconfig.subscribe(istiod.address, "worker") as subscription:
        assert await next_config(aiter(subscription)) == config(1, "a")
    assert "istiod answered 503: not ready" in caplog.records[0].getMessage()


async def test_a_slow_consumer_gets_only_the_newest_config(nursery):
    istiod = FakeIstiod(pushes(*(config(v, f"w{v}") for v in range(1, 51))))
    await nursery.start(istiod.run)
    async with meshconfig.subscribe(istiod.address, "worker") as subscription:
        with trio.fail_after(2):
            while subscription.received < 50:
                await trio.sleep(0.01)
        assert await next_config(aiter(subscription)) == config(50, "w50")


async def test_leaving_the_block_closes_the_stream(nursery):
    ended = trio.Event()

    async def handler(request: H2Request, stream: H2Stream) -> None:
        try:
            await pushes(config(1, "a"))(request, stream)
        finally:
            ended.set()

    istiod = FakeIstiod(handler)
    await nursery.start(istiod.run)
    async with meshconfig.subscribe(istiod.address, "worker") as subscription:
        await next_config(aiter(subscription))
    with trio.fail_after(1):
        await ended.wait()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "[::1]:1"])
async def test_unreachable_addresses_keep_retrying_without_raising(address):
    async with meshconfig.subscribe(address, "worker") as subscription:
        await trio.sleep(0.1)
        assert subscription.latest is None and not subscription.connected
