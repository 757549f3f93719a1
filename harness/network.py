"""The emulated network: a fabric bridge joining node namespaces, and pods wired to their node.

Addresses are kind's: node i (0 = control plane) is 172.18.0.(i+2) on the fabric and owns the pod
CIDR 10.244.i.0/24 with 10.244.i.1 as the pods' gateway. Pods are wired CNI-ptp style, as kindnet
does: a veth per pod, `eth0` in the pod with a /24 whose route goes via the gateway, and on the
node side the gateway address and a host route to the pod. All links are created inside the
run's namespaces; none ever touches the host's network namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from pyroute2 import IPRoute

from components.common import netns

FABRIC_BRIDGE = "br0"
FABRIC_PREFIX = "172.18.0"
FABRIC_PREFIXLEN = 16
SERVICE_CIDR = "10.96.0.0/16"
SCOPE_LINK = 253


@dataclass
class NodeNet:
    """One node's place in the network."""

    name: str
    index: int
    netns: str                       # /proc/<pause pid>/ns/net
    allocated: set[str] = field(default_factory=set)
    next_host: int = 2

    @property
    def ip(self) -> str:
        return f"{FABRIC_PREFIX}.{self.index + 2}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.244.{self.index}.1"

    def allocate_ip(self) -> str:
        """Next free pod IP, round-robin like host-local IPAM (a freed IP is not reused at once)."""
        for _ in range(253):
            host = self.next_host
            self.next_host = 2 if host >= 254 else host + 1
            ip = f"10.244.{self.index}.{host}"
            if ip not in self.allocated:
                self.allocated.add(ip)
                return ip
        raise RuntimeError(f"node {self.name} has no free pod IP left in {self.pod_cidr}")

    def release_ip(self, ip: str) -> None:
        self.allocated.discard(ip)


@contextmanager
def _netns(path: str) -> Iterator[IPRoute]:
    """A netlink socket in the namespace at `path`.

    The socket is made while the calling thread is inside the namespace (it stays bound to it).
    pyroute2's own NetNS forks a helper instead, and forking the multi-threaded daemon can leave
    that child deadlocked on a lock another thread held, freezing the daemon in waitpid.
    """
    with netns.entered(path):
        ns = IPRoute()
    try:
        yield ns
    finally:
        ns.close()


def _index(ns: IPRoute, ifname: str) -> int:
    found = ns.link_lookup(ifname=ifname)
    if not found:
        raise RuntimeError(f"interface {ifname} not found")
    return found[0]


def _create_veth(ns: IPRoute, ifname: str, peer: str, peer_netns: str) -> int:
    fd = os.open(peer_netns, os.O_RDONLY)
    try:
        ns.link("add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": fd})
    finally:
        os.close(fd)
    return _index(ns, ifname)


def host_veth_name(key: str) -> str:
    """The node-side veth name for a pod: `veth` + 8 hex digits, as kindnet names them."""
    return "veth" + hashlib.sha256(key.encode()).hexdigest()[:8]


def create_fabric(fabric_netns: str) -> None:
    with _netns(fabric_netns) as ns:
        ns.link("add", ifname=FABRIC_BRIDGE, kind="bridge")
        ns.link("set", index=_index(ns, FABRIC_BRIDGE), state="up")


def add_node(fabric_netns: str, node: NodeNet) -> None:
    """Wire a node to the fabric: `eth0` in the node, its peer on the bridge."""
    with _netns(fabric_netns) as fabric:
        idx = _create_veth(fabric, f"veth-n{node.index}", "eth0", node.netns)
        fabric.link("set", index=idx, master=_index(fabric, FABRIC_BRIDGE), state="up")
    with _netns(node.netns) as ns:
        eth0 = _index(ns, "eth0")
        ns.addr("add", index=eth0, address=node.ip, prefixlen=FABRIC_PREFIXLEN)
        ns.link("set", index=eth0, state="up")
        # kind nodes reach ClusterIPs through their default route; ours need a route so that
        # kube-proxy's DNAT (or its REJECT for services without endpoints) is reached at all.
        ns.route("add", dst=SERVICE_CIDR, oif=eth0, scope=SCOPE_LINK)


def route_between(nodes: list[NodeNet]) -> None:
    """Every node routes every other node's pod CIDR via that node's fabric address."""
    for node in nodes:
        with _netns(node.netns) as ns:
            for other in nodes:
                if other is not node:
                    ns.route("add", dst=other.pod_cidr, gateway=other.ip)


def add_pod(node: NodeNet, pod_netns: str, pod_ip: str, host_ifname: str) -> None:
    """Wire a pod to its node (ptp): veth, addresses, routes both ways."""
    with _netns(node.netns) as ns:
        idx = _create_veth(ns, host_ifname, "eth0", pod_netns)
        ns.addr("add", index=idx, address=node.gateway, prefixlen=32)
        ns.link("set", index=idx, state="up")
        ns.route("add", dst=f"{pod_ip}/32", oif=idx, scope=SCOPE_LINK)
    prefix = ipaddress.ip_network(node.pod_cidr)
    with _netns(pod_netns) as ns:
        eth0 = _index(ns, "eth0")
        ns.link("set", index=eth0, state="up")
        ns.addr("add", index=eth0, address=pod_ip, prefixlen=prefix.prefixlen)
        ns.route("add", dst=f"{node.gateway}/32", oif=eth0, scope=SCOPE_LINK)
        ns.route("replace", dst=str(prefix), gateway=node.gateway, oif=eth0)
        ns.route("add", dst="0.0.0.0/0", gateway=node.gateway)
