"""components.common.http's Unix listener under a burst of clients."""

from __future__ import annotations

import trio

from components.common import http


async def test_unix_listener_queues_a_burst_of_clients_beyond_128(tmp_path):
    # A kubelet starting 300 pods opens hundreds of apiserver connections at once; a backlog that
    # overflows makes trio report a connect that never happened, and the first send fails.
    path = str(tmp_path / "api.sock")
    listener = await http.open_unix_listener(path)
    streams = [await http.connect(f"unix:{path}") for _ in range(300)]
    for stream in streams:
        await stream.send_all(b"x")
    for stream in streams:
        await stream.aclose()
    await listener.aclose()
