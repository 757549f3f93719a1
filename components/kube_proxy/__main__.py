"""kube-proxy (iptables mode) for one node.

`python -m components.kube_proxy --api ADDRESS --node NODENAME`

Runs host-network in the node's namespace, which is where its rules go; on SIGTERM or SIGINT it
removes them (like `kube-proxy --cleanup`) and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal

import trio

from components.common import log as logsetup
from components.common.apiclient import ApiClient, ApiError
from components.kube_proxy import iptables
from components.kube_proxy.proxier import Proxier
from components.kube_proxy.structured import kv

VERSION = "v1.29.2"

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kube-proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the apiserver: host:port or unix:/path")
    parser.add_argument("--node", required=True, help="this node's name")
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16",
                        help="the pod network; traffic to a ClusterIP from outside it is masqueraded ('' for none)")
    parser.add_argument("--min-sync-period", type=float, default=1.0, help="seconds between syncs, at least")
    parser.add_argument("--sync-period", type=float, default=30.0, help="seconds between syncs, at most")
    return parser.parse_args(argv)


async def node_ips(api: ApiClient, node: str) -> list[str]:
    try:
        obj = await api.get("v1", "Node", None, node)
    except ApiError:
        return []
    addresses = (obj.get("status") or {}).get("addresses") or []
    return [a["address"] for a in addresses if a.get("type") == "InternalIP" and a.get("address")]


async def run(args: argparse.Namespace) -> None:
    api = ApiClient(args.api)
    log.info(kv("Using iptables proxy"))
    ips = await node_ips(api, args.node)
    if ips:
        log.info(kv("Successfully retrieved node IP(s)", IPs=ips))
    else:
        log.warning(kv("Can't determine this node's IP, assuming loopback; if this is incorrect, "
                       "please set the --bind-address flag", node=args.node))
    log.info(kv("Using iptables Proxier"))
    log.info(kv("Version info", version=VERSION))
    proxier = Proxier(args.cluster_cidr or None, args.min_sync_period, args.sync_period)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proxier.run, api)
            async for signum in signals:
                log.info(kv("Received signal, removing iptables rules", signal=signal.Signals(signum).name))
                nursery.cancel_scope.cancel()
                break
    await trio.to_thread.run_sync(iptables.cleanup)
    log.info(kv("Removed kube-proxy's iptables chains"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logsetup.setup("klog")
    trio.run(run, args)


if __name__ == "__main__":
    main()
