"""A pod's redirection: the in-pod iptables rules plus the fwmark routing, in its netns."""

from __future__ import annotations

from components.cni import iptables, netlink
from components.cni.rules import Verdict, inpod_ruleset


def create_rules(netns: str) -> Verdict:
    """Install (or reconcile) the rules in the netns at `netns` (blocking)."""
    verdict = iptables.ensure(inpod_ruleset(), netns)
    netlink.ensure(netns)
    return verdict


def delete_rules(netns: str) -> None:
    """Remove whatever of the rules is there (blocking); routing goes even if iptables fails."""
    try:
        iptables.delete(inpod_ruleset().tables, netns)
    finally:
        netlink.remove(netns)
