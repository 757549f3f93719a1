"""The mesh CA (istiod's CA server on 15012).

`python -m components.ca --api HOST:PORT --listen 0.0.0.0:15012 [--trust-domain cluster.local]
[--trusted-node-accounts istio-system/ztunnel] [--default-ttl 24h] [--max-ttl 2160h]
[--audiences istio-ca] [--root-namespace istio-system] [--cluster-id Kubernetes] [--ready ADDRESS]`

It stops when its parent process exits (istiod embeds its CA; a killed istiod takes it along).
"""

from __future__ import annotations

import argparse
import logging
import os

import trio

from components.ca.durations import parse_duration
from components.ca.nodeauth import parse_accounts
from components.ca.server import CAServer, Config
from components.common import log


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _accounts(text: str) -> list[tuple[str, str]]:
    try:
        return parse_accounts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="ca", description="The mesh CA (IstioCertificateService).")
    parser.add_argument("--api", required=True, help="the apiserver: host:port or unix:/path")
    parser.add_argument("--listen", default="0.0.0.0:15012", help="TLS address of the CA")
    parser.add_argument("--trust-domain", default="cluster.local")
    parser.add_argument("--trusted-node-accounts", type=_accounts, default=[("istio-system", "ztunnel")],
                        help="ns/sa,... allowed to impersonate workloads on their node (CA_TRUSTED_NODE_ACCOUNTS); "
                             "'' disables impersonation")
    parser.add_argument("--default-ttl", type=_duration, default=24 * 3600.0,
                        help="lifetime of a leaf when the request asks for none (DEFAULT_WORKLOAD_CERT_TTL)")
    parser.add_argument("--max-ttl", type=_duration, default=2160 * 3600.0,
                        help="longest lifetime a request may ask for (MAX_WORKLOAD_CERT_TTL)")
    parser.add_argument("--audiences", default="istio-ca", help="token audiences, comma-separated (TOKEN_AUDIENCES)")
    parser.add_argument("--root-namespace", default="istio-system", help="where the istio-ca-secret Secret lives")
    parser.add_argument("--cluster-id", default="Kubernetes", help="the cluster this CA authenticates for")
    parser.add_argument("--ready", default="", help="plain HTTP address answering GET /ready ('' for none)")
    args = parser.parse_args(argv)
    audiences = [a.strip() for a in args.audiences.split(",") if a.strip()]
    return Config(api=args.api, listen=args.listen, trust_domain=args.trust_domain,
                  trusted_node_accounts=args.trusted_node_accounts, default_ttl=args.default_ttl,
                  max_ttl=args.max_ttl, audiences=audiences, root_namespace=args.root_namespace,
                  cluster_id=args.cluster_id, ready=args.ready or None)


PARENT_POLL = 0.5


async def _serve_while_parent_lives(config: Config) -> None:
    """Serve until the process that started us (istiod) is gone: the real CA lives inside istiod
    and dies with it, so a killed istiod must not leave its CA behind holding 15012."""
    parent = os.getppid()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(CAServer(config).run)
        while os.getppid() == parent:
            await trio.sleep(PARENT_POLL)
        logging.getLogger("ca").warning("parent process %d exited, stopping the CA", parent)
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    log.setup("istio")
    try:
        trio.run(_serve_while_parent_lives, config)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
