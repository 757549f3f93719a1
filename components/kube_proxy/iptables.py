"""Writes a `Ruleset` into the current network namespace with python-iptables (legacy backend).

Each table is changed in one libiptc transaction (autocommit off, one commit), which the kernel
swaps in whole, so a packet never meets a half-written chain. The xtables lock is held meanwhile,
as the iptables commands hold it, so other writers in the namespace (istio-cni's probe rules,
a user's `iptables` in `kubectl exec`) do not interleave with us.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

import iptc

from components.kube_proxy.rules import FILTER, JUMPS, NAT, Rule, Ruleset, is_owned

LOCK_PATH = os.environ.get("XTABLES_LOCKFILE", "/run/xtables.lock")


@contextmanager
def xtables_lock() -> Iterator[None]:
    fd = os.open(LOCK_PATH, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def to_iptc(rule: Rule) -> iptc.Rule:
    entry = iptc.Rule()
    if rule.source:
        entry.src = rule.source
    if rule.destination:
        entry.dst = rule.destination
    if rule.protocol:
        entry.protocol = rule.protocol
    for spec in rule.matches:
        match = entry.create_match(spec.module)
        for option, value in spec.options:
            setattr(match, option.replace("-", "_"), value)
    target = entry.create_target(rule.target)
    for option, value in rule.target_options:
        setattr(target, option.replace("-", "_"), value)
    return entry


def _open(name: str) -> iptc.Table:
    table = iptc.Table(name, autocommit=False)
    table.refresh()
    return table


def _jumps_into(table: iptc.Table, builtin: str, target: str) -> list[iptc.Rule]:
    return [rule for rule in iptc.Chain(table, builtin).rules if rule.target.name == target]


def _sync_table(name: str, chains: dict[str, list[Rule]]) -> None:
    table = _open(name)
    existing = {chain.name for chain in table.chains}
    for chain in chains:
        if chain not in existing:
            table.create_chain(chain)
    stale = [chain for chain in existing if is_owned(name, chain) and chain not in chains]
    for chain in list(chains) + stale:
        table.flush_entries(chain)
    for chain, rules in chains.items():
        handle = iptc.Chain(table, chain)
        for rule in rules:
            handle.append_rule(to_iptc(rule))
    for chain in stale:
        table.delete_chain(chain)
    for jump_table, builtin, rule in JUMPS:
        if jump_table == name and not _jumps_into(table, builtin, rule.target):
            iptc.Chain(table, builtin).insert_rule(to_iptc(rule))
    table.commit()


def apply(ruleset: Ruleset) -> None:
    """Make kube-proxy's chains hold exactly `ruleset`, deleting service chains no longer wanted."""
    with xtables_lock():
        for name in (FILTER, NAT):
            _sync_table(name, ruleset.tables[name])


def cleanup() -> None:
    """Remove every jump into kube-proxy's chains and the chains themselves (`kube-proxy --cleanup`)."""
    with xtables_lock():
        for name in (FILTER, NAT):
            table = _open(name)
            for jump_table, builtin, rule in JUMPS:
                if jump_table == name:
                    for found in _jumps_into(table, builtin, rule.target):
                        iptc.Chain(table, builtin).delete_rule(found)
            owned = [chain.name for chain in table.chains if is_owned(name, chain.name)]
            for chain in owned:
                table.flush_entries(chain)
            for chain in owned:
                table.delete_chain(chain)
            table.commit()
