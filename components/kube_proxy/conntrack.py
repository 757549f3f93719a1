"""Clearing UDP conntrack entries that would keep steering packets the old way, as kube-proxy does.

A UDP "connection" (a DNS client's socket, say) keeps the NAT decision of its first packet for as
long as packets flow. So when a UDP service port gains endpoints, entries made while it had none
are deleted; when an endpoint goes away, entries DNATed to it are deleted.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from pyroute2 import Conntrack
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from components.kube_proxy.servicemap import ServicePort


@dataclass(frozen=True, order=True)
class Stale:
    """Entries to `cluster_ip:port`/UDP; only those DNATed to `endpoint_ip` if it is set."""

    cluster_ip: str
    port: int
    endpoint_ip: str | None = None


def stale_udp(previous: list[ServicePort], current: list[ServicePort]) -> list[Stale]:
    """What to clear after going from `previous` to `current` service ports."""
    before = {sp.key: sp for sp in previous if sp.protocol == "UDP"}
    stale: set[Stale] = set()
    for sp in current:
        if sp.protocol != "UDP":
            continue
        old = before.get(sp.key)
        if sp.endpoints and (old is None or not old.endpoints):
            stale.add(Stale(sp.cluster_ip, sp.port))
    after = {sp.key: sp for sp in current if sp.protocol == "UDP"}
    for key, old in before.items():
        remaining = {e.ip for e in after[key].endpoints} if key in after else set()
        for endpoint in old.endpoints:
            if endpoint.ip not in remaining:
                stale.add(Stale(old.cluster_ip, old.port, endpoint.ip))
    return sorted(stale)


def clear(stale: list[Stale]) -> int:
    """Delete the matching entries from this namespace's conntrack table; returns how many."""
    deleted = 0
    conntrack = Conntrack()
    try:
        for item in stale:
            wanted = NFCTAttrTuple(proto=socket.IPPROTO_UDP, daddr=item.cluster_ip)
            for entry in list(conntrack.dump_entries(tuple_orig=wanted)):
                if entry.tuple_orig.dport != item.port:
                    continue
                if item.endpoint_ip is not None and entry.tuple_reply.saddr != item.endpoint_ip:
                    continue
                try:
                    conntrack.delete(entry)
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:    # gone by itself meanwhile
                        raise
                    continue
                deleted += 1
    finally:
        conntrack.close()
    return deleted
