"""The cluster DNS (CoreDNS's role behind the kube-dns Service).

`python -m components.dns --api ADDRESS --listen 0.0.0.0:53 [--cluster-domain cluster.local]`

Answers fully qualified names only: clients' resolvers expand short names through the search path
of their resolv.conf (`<ns>.svc.cluster.local svc.cluster.local cluster.local`, `ndots:5`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys

import trio

from components.common.apiclient import ApiClient
from components.dns import corelog
from components.dns.cluster import WATCHED, ClusterState, watch
from components.dns.metrics import GO_VERSION, REVISION, VERSION, Metrics
from components.dns.server import DnsServer, http_handler, serve_http, split_address

SYNC_WAIT = 5.0     # CoreDNS's kubernetes plugin waits this long for the API before serving anyway

log = logging.getLogger("plugin/kubernetes")
reload_log = logging.getLogger("plugin/reload")


def corefile(port: int, domain: str, ttl: int, log_queries: bool) -> str:
    """The Corefile this server behaves as (its hash is what CoreDNS logs at start)."""
    return "\n".join([
        f".:{port} {{",
        "    errors",
        "    health {",
        "       lameduck 5s",
        "    }",
        "    ready",
        *(["    log"] if log_queries else []),
        f"    kubernetes {domain} in-addr.arpa ip6.arpa {{",
        "       pods insecure",
        "       fallthrough in-addr.arpa ip6.arpa",
        f"       ttl {ttl}",
        "    }",
        "    prometheus :9153",
        "}",
        "",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dns", description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the apiserver: host:port or unix:/path")
    parser.add_argument("--listen", default="0.0.0.0:53", help="DNS address, UDP and TCP")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--ttl", type=int, default=5, help="TTL of answers (the kubernetes plugin's `ttl`)")
    parser.add_argument("--health", default="0.0.0.0:8080", help="/health address ('' to disable)")
    parser.add_argument("--ready", default="0.0.0.0:8181", help="/ready address ('' to disable)")
    parser.add_argument("--metrics", default="0.0.0.0:9153", help="/metrics address ('' to disable)")
    parser.add_argument("--log", action="store_true", help="log every query (the `log` plugin)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    host, port = split_address(args.listen)
    state = ClusterState(args.cluster_domain, args.ttl)
    metrics = Metrics(f"dns://:{port}")
    server = DnsServer(state, metrics, args.log)
    api = ApiClient(args.api)
    async with trio.open_nursery() as nursery:
        for kind in WATCHED:
            nursery.start_soon(watch, api, state, kind)
        handler = http_handler(state, metrics)
        for address in {a for a in (args.health, args.ready, args.metrics) if a}:
            await nursery.start(serve_http, address, handler)
        with trio.move_on_after(SYNC_WAIT):
            await state.synced.wait()
        if not state.synced.is_set():
            log.warning("starting server with unsynced Kubernetes API")
        await nursery.start(server.serve_udp, host, port)
        await nursery.start(server.serve_tcp, host, port)
        config = corefile(port, args.cluster_domain, args.ttl, args.log)
        print(f".:{port}", file=sys.stderr, flush=True)
        reload_log.info("Running configuration SHA512 = %s", hashlib.sha512(config.encode()).hexdigest())
        print(f"CoreDNS-{VERSION}\nlinux/amd64, {GO_VERSION}, {REVISION}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    corelog.setup()
    try:
        trio.run(run, args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
