"""`python -m components.apiserver --listen HOST:PORT --listen unix:PATH --data-dir DIR
--service-cidr CIDR --apiserver-endpoint IP:PORT`"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import trio

from components.apiserver.server import ApiServer, Config
from components.common import log as logsetup

log = logging.getLogger("components.apiserver")


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m components.apiserver",
                                     description="A Kubernetes-shaped apiserver with built-in controllers.")
    parser.add_argument("--listen", action="append", required=True,
                        help="HOST:PORT or unix:/path to serve on (repeatable)")
    parser.add_argument("--data-dir", required=True, type=Path, help="where the store and signing key are kept")
    parser.add_argument("--service-cidr", default="10.96.0.0/16", help="the range ClusterIPs come from")
    parser.add_argument("--apiserver-endpoint", default="172.18.0.2:6443",
                        help="IP:PORT of this apiserver as pods reach it (the `kubernetes` Endpoints)")
    args = parser.parse_args(argv)
    return Config(listen=args.listen, data_dir=args.data_dir, service_cidr=args.service_cidr,
                  apiserver_endpoint=args.apiserver_endpoint)


async def _serve(config: Config) -> None:
    server = ApiServer(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            async for signum in signals:
                log.info("Received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    logsetup.setup("klog")
    config = parse_args(sys.argv[1:] if argv is None else argv)
    trio.run(_serve, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
