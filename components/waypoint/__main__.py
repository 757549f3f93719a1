"""`python -m components.waypoint proxy waypoint --serviceCluster <gateway>.<namespace>`: the
waypoint proxy (Istio's proxyv2 image, `pilot-agent proxy waypoint`), configured by the
environment its Deployment sets (POD_NAME, POD_NAMESPACE, INSTANCE_IP, NODE_NAME,
SERVICE_ACCOUNT, TRUST_DOMAIN, XDS_ADDRESS, CA_ADDR). Envoy's access log goes to stdout, the
agent's own lines in Istio's log format."""

from __future__ import annotations

import logging
import signal
import sys
import time

import trio

from components.waypoint.app import Waypoint
from components.waypoint.settings import Settings


class _IstioFormatter(logging.Formatter):
    """`2024-01-02T03:04:05.678901Z\tinfo\tmessage`, as Istio's agents log."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs * 1000):06d}Z"
        return f"{stamp}\t{record.levelname.lower().replace('warning', 'warn')}\t{record.getMessage()}"


def _setup_logging() -> None:
    logging.Formatter.converter = time.gmtime
    agent = logging.StreamHandler(sys.stdout)
    agent.setFormatter(_IstioFormatter())
    root = logging.getLogger()
    root.addHandler(agent)
    root.setLevel(logging.INFO)
    access = logging.getLogger("waypoint.access")
    access.propagate = False
    plain = logging.StreamHandler(sys.stdout)
    plain.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(plain)


async def _main(settings: Settings) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(Waypoint(settings).run)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main() -> None:
    _setup_logging()
    settings = Settings.from_args(sys.argv[1:])
    logging.getLogger("waypoint").info("starting %s %s/%s as %s", settings.mode, settings.namespace,
                                       settings.gateway_name, settings.identity)
    trio.run(_main, settings)


if __name__ == "__main__":
    main()
