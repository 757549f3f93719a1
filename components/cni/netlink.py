"""The pod's policy routing for TPROXY'd traffic, with pyroute2 (`cni/pkg/iptables/iptables_linux.go`).

    ip rule add fwmark 0x111/0xfff pref 32764 lookup 100
    ip route add local 0.0.0.0/0 dev lo table 100

Packets marked 0x111 (restored from the connmark of connections ztunnel made with the
client's address) are delivered locally to ztunnel's transparent sockets instead of leaving.
Blocking: call from a worker thread.
"""

from __future__ import annotations

import errno
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from components.cni.rules import FWMARK, FWMASK, ROUTE_TABLE, RULE_PRIORITY
from components.common import netns as netns_mod

RT_SCOPE_HOST = 254
RTPROT_BOOT = 3  # what `ip route add` sets; `ip route show` then prints no "proto"
_RULE = {"family": socket.AF_INET, "fwmark": FWMARK, "fwmask": FWMASK, "priority": RULE_PRIORITY,
         "table": ROUTE_TABLE}


def _has_rule(ipr: IPRoute) -> bool:
    for rule in ipr.get_rules(family=socket.AF_INET):
        if (rule.get("priority") == RULE_PRIORITY and rule.get_attr("FRA_FWMARK") == FWMARK
                and rule.get_attr("FRA_FWMASK") == FWMASK and rule.get_attr("FRA_TABLE") == ROUTE_TABLE):
            return True
    return False


def _route(ipr: IPRoute, command: str) -> None:
    lo = ipr.link_lookup(ifname="lo")[0]
    extra = {"proto": RTPROT_BOOT} if command != "del" else {}
    ipr.route(command, dst="0.0.0.0/0", type="local", oif=lo, table=ROUTE_TABLE, scope=RT_SCOPE_HOST, **extra)


def ensure(netns: str) -> None:
    """Add the rule and the route to the netns at `netns` unless they are there."""
    with netns_mod.entered(netns), IPRoute() as ipr:
        if not _has_rule(ipr):
            try:
                ipr.rule("add", **_RULE)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
        _route(ipr, "replace")


def remove(netns: str) -> None:
    """Delete the rule and the route; either being gone already is fine (#58293)."""
    with netns_mod.entered(netns), IPRoute() as ipr:
        for action in (lambda: ipr.rule("del", **_RULE), lambda: _route(ipr, "del")):
            try:
                action()
            except NetlinkError as exc:
                if exc.code not in (errno.ENOENT, errno.ESRCH):
                    raise
