"""istio-cni node agent (ambient, in-pod redirection) for one node.

`python -m components.cni --api HOST:PORT --node NODE [--zds-socket /var/run/ztunnel/ztunnel.sock]
[--plugin-socket /var/run/istio-cni/pluginevent.sock] [--cni-conf-dir /etc/cni/net.d]`

Runs hostNetwork, in its node's netns (where the probe SNAT rule goes), with the three paths as
hostPath volumes of the node. It serves ZDS to the node's ztunnel, captures the node's ambient
pods (in-pod iptables and routing, then a ZDS Add), answers the CNI plugin's calls
(`components/cni/plugin.py` has that contract) and readiness on `:8000/readyz`. On SIGTERM it
stops serving and removes the plugin marker; pods keep their rules, as with the real agent, so
a restarted agent finds them in place and ztunnel keeps its proxies.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import Callable

import trio

from components.cni.controller import Controller
from components.cni.dataplane import Dataplane
from components.cni.hostprobe import HostProbe
from components.cni.plugin import PluginServer
from components.cni.ztunnelserver import ZtunnelServer
from components.common import http
from components.common import log as logsetup
from components.common.apiclient import ApiClient

log = logging.getLogger("ambient")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="istio-cni", description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=os.environ.get("AMBIENT_APISERVER"),
                        help="the apiserver, host:port or unix:/path (default: $AMBIENT_APISERVER)")
    parser.add_argument("--node", default=os.environ.get("NODE_NAME"), help="this node's name (default: $NODE_NAME)")
    parser.add_argument("--zds-socket", default="/var/run/ztunnel/ztunnel.sock", help="ZDS socket ztunnel connects to")
    parser.add_argument("--plugin-socket", default="/var/run/istio-cni/pluginevent.sock",
                        help="Unix socket the CNI plugin (the kubelet) posts pod additions to")
    parser.add_argument("--cni-conf-dir", default="/etc/cni/net.d",
                        help="where istio-cni.conf tells the kubelet the plugin is configured")
    parser.add_argument("--readiness-port", type=int, default=8000, help="port of /readyz and /healthz")
    parser.add_argument("--system-namespace", default="istio-system")
    parser.add_argument("--host-rules-check-interval", type=float, default=5.0,
                        help="seconds between checks that the node's probe SNAT rules are intact")
    args = parser.parse_args(argv)
    if not args.api or not args.node:
        parser.error("--api and --node are required")
    return args


async def serve_readiness(port: int, ready: Callable[[], bool], *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async def handle(request: http.Request) -> http.Response:
        if request.path == "/readyz":
            return http.Response.text("ok\n") if ready() else http.Response.text("not ready\n", 503)
        if request.path == "/healthz":
            return http.Response.text("ok\n")
        return http.Response.text("not found\n", 404)

    listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
    await http.serve(listeners, handle, task_status=task_status)


async def check_host_rules(dataplane: Dataplane, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        await dataplane.check_host_rules()


async def run(args: argparse.Namespace) -> None:
    api = ApiClient(args.api)
    hostprobe = HostProbe()
    ztunnel = ZtunnelServer(args.zds_socket, lambda: dataplane.snapshot())
    dataplane = Dataplane(api, ztunnel, hostprobe)
    controller = Controller(api, args.node, dataplane, args.system_namespace)
    plugin = PluginServer(args.plugin_socket, args.cni_conf_dir, controller, dataplane)
    log.info("Starting ambient node agent with inpod redirect mode")
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                async def stop() -> None:
                    async for signum in signals:
                        log.info("received %s, shutting down", signal.Signals(signum).name)
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop)
                await nursery.start(ztunnel.run)
                await nursery.start(serve_readiness, args.readiness_port,
                                    lambda: controller.synced.is_set() and ztunnel.listening)
                try:
                    await trio.to_thread.run_sync(hostprobe.ensure_rules)
                except Exception as exc:  # the periodic check tries again
                    log.error("failed to install host probe rules: %s", exc)
                await nursery.start(controller.run)
                ztunnel.snapshot_ready.set()
                await nursery.start(plugin.run)
                log.info("Ambient node agent started on node %s", args.node)
                nursery.start_soon(check_host_rules, dataplane, args.host_rules_check_interval)
    finally:
        dataplane.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logsetup.setup("istio")
    trio.run(run, args)


if __name__ == "__main__":
    main()
