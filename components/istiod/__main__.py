"""istiod: the ambient mesh's control plane.

`python -m components.istiod --api HOST:PORT [--xds 0.0.0.0:15010] [--http 0.0.0.0:8080]
[--root-namespace istio-system] [--trust-domain cluster.local] [--cluster-id Kubernetes]
[--ca-command "python -m components.ca ..."]`

Watches the cluster, translates it into ztunnel's config and pushes full snapshots to every
subscriber of the discovery port; writes each AuthorizationPolicy's `ZtunnelAccepted` status;
runs the CA as a child process. Exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal

import trio

from components.common import log as istio_log
from components.istiod.server import Istiod, Options

log = logging.getLogger("istiod.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="istiod", description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the apiserver: host:port or unix:/path")
    parser.add_argument("--xds", default="0.0.0.0:15010", help="discovery (push stream) address, h2c")
    parser.add_argument("--http", default="0.0.0.0:8080", help="readiness and debug address, HTTP/1.1")
    parser.add_argument("--root-namespace", default="istio-system")
    parser.add_argument("--trust-domain", default="cluster.local")
    parser.add_argument("--cluster-id", default="Kubernetes")
    parser.add_argument("--ca-command", default=None, help="command line of the CA, run as a child process")
    parser.add_argument("--ca-address", default="127.0.0.1:15012", help="where that CA listens (readiness waits for it)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    return Options(api=args.api, xds=args.xds, http=args.http, root_namespace=args.root_namespace,
                   trust_domain=args.trust_domain, cluster_id=args.cluster_id, ca_command=args.ca_command or None,
                   ca_address=args.ca_address)


async def run(options: Options) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(Istiod(options).run)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    istio_log.setup("istio")
    for name, value in sorted(vars(args).items()):
        log.info('FLAG: --%s="%s"', name.replace("_", "-"), "" if value is None else value)
    trio.run(run, options_from(args))


if __name__ == "__main__":
    main()
