"""Applies a `rules.Ruleset` to a network namespace with python-iptables (legacy backend).

python-iptables keeps one cached `Table` per table name for the whole process, and a libiptc
handle talks to the netns of the thread that initialised it. So every operation here holds one
process-wide lock, enters the target netns on the calling thread, re-initialises each table
handle there and releases it before leaving. Each table is changed in one libiptc commit under
the xtables lock, as `iptables-restore` does.

Functions are blocking: call them from a worker thread (`trio.to_thread.run_sync`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from typing import Iterator

import iptc

from components.cni import rules
from components.cni.rules import Ruleset, RuleView, State, Verdict
from components.common import netns as netns_mod

log = logging.getLogger("iptables")

LOCK_PATH = os.environ.get("XTABLES_LOCKFILE", "/run/xtables.lock")
_lock = threading.Lock()


@contextmanager
def _xtables_lock() -> Iterator[None]:
    fd = os.open(LOCK_PATH, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Session:
    """Open handles on some tables of one netns; python-iptables looks only at these meanwhile.

    python-iptables decides whether a rule's target is a jump by asking every table it thinks
    is available whether a chain of that name exists: restricting that list to the open tables
    keeps it from instantiating filter, raw and security in a pod (iptables-save would show
    them) and from asking a handle that was released.
    """

    def __init__(self, tables: list[str]):
        self.tables: dict[str, iptc.Table] = {}
        self._names = tables

    def __enter__(self) -> "Session":
        available = iptc.Table.existing_table_names
        self._saved = dict(available)
        available.clear()
        available.update({name: name in self._names for name in iptc.Table.ALL})
        try:
            for name in self._names:
                table = iptc.Table(name, autocommit=False)
                table.refresh()  # a fresh handle in this thread's netns
                self.tables[name] = table
        except BaseException:
            self.__exit__()
            raise
        return self

    def refresh(self) -> None:
        """Re-read the tables after a commit."""
        for table in self.tables.values():
            table.refresh()

    def __exit__(self, *exc_info: object) -> None:
        for table in self.tables.values():
            table.close()
        iptc.Table.existing_table_names.clear()
        iptc.Table.existing_table_names.update(self._saved)


@contextmanager
def session(netns: str | None, tables: list[str]) -> Iterator[Session]:
    """Hold the process-wide lock and the xtables lock, with this thread in `netns` (None: stay)."""
    with _lock, _xtables_lock():
        if netns is None:
            with Session(tables) as opened:
                yield opened
        else:
            with netns_mod.entered(netns), Session(tables) as opened:
                yield opened


def to_iptc(args: tuple[str, ...]) -> iptc.Rule:
    parsed = rules.parse(args)
    entry = iptc.Rule()
    attributes = {"-s": "src", "-d": "dst", "-i": "in_interface", "-o": "out_interface", "-p": "protocol"}
    for option, (negated, value) in parsed.address.items():
        setattr(entry, attributes[option], ("!" if negated else "") + value)
    for module, options in parsed.matches:
        match = entry.create_match(module)
        for negated, name, values in options:
            match.set_parameter(name[2:], ["!", *values] if negated else values)
    target = entry.create_target(parsed.target)
    for negated, name, values in parsed.target_options:
        target.set_parameter(name[2:], ["!", *values] if negated else values)
    return entry


def _parameters(params: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(values)) for name, values in params.items())


def view(rule: iptc.Rule) -> RuleView:
    return RuleView(
        src=rule.src, dst=rule.dst, in_interface=rule.in_interface, out_interface=rule.out_interface,
        protocol=rule.protocol,
        matches=tuple((m.name, _parameters(m.get_all_parameters())) for m in rule.matches),
        target=rule.target.name if rule.target else "",
        target_parameters=_parameters(rule.target.get_all_parameters()) if rule.target else ())


def _ours(table: iptc.Table, chain: iptc.Chain) -> list[iptc.Rule]:
    """All rules of an ISTIO_* chain; the jumps into those of a built-in chain; nothing of others."""
    if rules.is_owned(chain.name):
        return chain.rules
    if table.builtin_chain(chain.name):
        return [rule for rule in chain.rules if rule.target and rules.is_owned(rule.target.name)]
    return []


def _read_table(table: iptc.Table) -> dict[str, tuple[tuple[str, ...], ...]]:
    return {chain.name: tuple(rules.view_save_args(view(rule)) for rule in _ours(table, chain))
            for chain in table.chains if rules.is_owned(chain.name) or table.builtin_chain(chain.name)}


def read_state(opened: Session) -> State:
    """What `rules.decide` looks at in the session's tables, rules in save form."""
    return {name: _read_table(table) for name, table in opened.tables.items()}


def _remove_owned(table: iptc.Table) -> None:
    for chain in table.chains:
        if table.builtin_chain(chain.name):
            for rule in list(chain.rules):
                if rule.target and rules.is_owned(rule.target.name):
                    chain.delete_rule(rule)
    owned = [chain.name for chain in table.chains if rules.is_owned(chain.name)]
    for chain in owned:
        table.flush_entries(chain)
    for chain in owned:
        table.delete_chain(chain)


def remove(opened: Session) -> None:
    """Delete every jump into an ISTIO_* chain and those chains; what is missing is fine (#53829)."""
    for table in opened.tables.values():
        _remove_owned(table)
        table.commit()


def apply(opened: Session, ruleset: Ruleset) -> None:
    """Create the chains and rules of `ruleset`, table by table in its order (into a clean state)."""
    for name, chains in ruleset.chains:
        table = opened.tables[name]
        for chain in chains:
            if not table.is_chain(chain):
                table.create_chain(chain)
        for rule in ruleset.rules_of(name):
            chain = iptc.Chain(table, rule.chain)
            if rule.insert:
                chain.insert_rule(to_iptc(rule.args))
            else:
                chain.append_rule(to_iptc(rule.args))
        table.commit()


def ensure(ruleset: Ruleset, netns: str | None) -> Verdict:
    """Make the ISTIO_* rules of `netns` exactly `ruleset`: nothing done when they already are."""
    with session(netns, ruleset.tables) as opened:
        verdict = rules.decide(read_state(opened), ruleset)
        log.info(verdict.value)
        if verdict is Verdict.RECONCILE:
            remove(opened)
            opened.refresh()
        if verdict is not Verdict.COMPATIBLE:
            log.info("Running iptables-restore with the following input:\n%s", rules.restore_input(ruleset))
            apply(opened, ruleset)
        return verdict


def check(ruleset: Ruleset, netns: str | None) -> Verdict:
    """What `ensure` would find, without changing anything."""
    with session(netns, ruleset.tables) as opened:
        return rules.decide(read_state(opened), ruleset)


def delete(tables: list[str], netns: str | None) -> None:
    with session(netns, tables) as opened:
        remove(opened)
