"""`python -m components.ztunnel`: the node proxy, configured by environment as the real one
(NODE_NAME, POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, CLUSTER_ID, TRUST_DOMAIN,
XDS_ADDRESS, CA_ADDRESS, CA_ROOT_CA, AUTH_TOKEN, INPOD_UDS, SECRET_TTL; RUST_LOG for the log
filter). SIGTERM or SIGINT drains and exits."""

from __future__ import annotations

import os
import signal
from typing import AsyncIterator

import trio

from components.ztunnel import logs
from components.ztunnel.app import Ztunnel
from components.ztunnel.config import Config


async def _watch_signals(signals: AsyncIterator[int], ztunnel: Ztunnel) -> None:
    async for _ in signals:
        ztunnel.request_shutdown()


async def _main() -> None:
    level = os.environ.get("RUST_LOG") or "info"
    logs.setup(level)
    ztunnel = Ztunnel(Config.from_env(), log_level=level)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, ztunnel)
            await ztunnel.run()
            nursery.cancel_scope.cancel()


def main() -> None:
    trio.run(_main)


if __name__ == "__main__":
    main()
