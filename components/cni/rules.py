"""The iptables rules istio-cni installs, as data: rendering, canonical form and reconciliation.

In-pod rules are the TPROXY variant of Istio 1.21 (seed 002), listed in the order of the
`iptables-restore` input the real agent logs; `save_lines` gives them as `iptables-save` prints
them. The host rule SNATs the node's (kubelet's) probes to enrolled pods to 169.254.7.127, which
the in-pod rules let through uncaptured.

Reconciliation (istio/istio#53153): what a netns holds is described as table -> chain -> rule
arguments in iptables-save form, for the ISTIO_* chains and the jumps into them from built-in
chains; `decide` compares that with what is wanted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

NAT = "nat"
MANGLE = "mangle"
PRERT = "ISTIO_PRERT"
OUTPUT = "ISTIO_OUTPUT"
POSTRT = "ISTIO_POSTRT"
CHAIN_PREFIX = "ISTIO_"

TPROXY_MARK = "0x111/0xfff"  # InpodTProxyMark/InpodTProxyMask
INPOD_MARK = "0x539/0xfff"  # 1337: the mark ztunnel puts on its own sockets
RESTORE_MASK = "0xffffffff"
ROUTE_TABLE = 100
RULE_PRIORITY = 32764
FWMARK, FWMASK = 0x111, 0xFFF
HOST_PROBE_SNAT_IP = "169.254.7.127"
PROBE_IPSET = "istio-inpod-probes-v4"
ZTUNNEL_INBOUND_PORT = 15008
ZTUNNEL_INBOUND_PLAINTEXT_PORT = 15006
ZTUNNEL_OUTBOUND_PORT = 15001

_ADDRESS_OPTIONS = ("-s", "-d", "-i", "-o", "-p")  # iptables-save's order
_BUILTIN_ORDER = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
# Target options as the extensions save them, with the defaults they print when not given.
_TARGET_SAVE_ORDER = {"TPROXY": (("--on-port", None), ("--on-ip", "0.0.0.0"), ("--tproxy-mark", None))}

# A description of the rules in a netns: table -> chain -> rules (argument tuples, save form).
State = dict[str, dict[str, tuple[tuple[str, ...], ...]]]


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    args: tuple[str, ...]  # as written to iptables-restore, e.g. ("-p", "tcp", "-j", "ACCEPT")
    insert: bool = False  # `-I chain 1` instead of `-A chain`

    def restore_line(self) -> str:
        return f"{'-I' if self.insert else '-A'} {self.chain}{' 1' if self.insert else ''} {' '.join(self.args)}"


@dataclass(frozen=True)
class Ruleset:
    chains: tuple[tuple[str, tuple[str, ...]], ...]  # (table, chains to create), tables in apply order
    rules: tuple[Rule, ...]

    @property
    def tables(self) -> list[str]:
        return [table for table, _ in self.chains]

    def rules_of(self, table: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.table == table]


def _rule(table: str, chain: str, spec: str, insert: bool = False) -> Rule:
    return Rule(table, chain, tuple(spec.split()), insert)


def inpod_ruleset(snat_ip: str = HOST_PROBE_SNAT_IP) -> Ruleset:
    """The pod's rules, nat then mangle as the agent restores them (and so creates the tables)."""
    notlo = "! -d 127.0.0.1/32"
    nat = [
        _rule(NAT, "OUTPUT", f"-j {OUTPUT}"),
        _rule(NAT, OUTPUT, f"-d {snat_ip} -p tcp -m tcp -j ACCEPT"),
        _rule(NAT, OUTPUT, f"-p tcp -m mark --mark {TPROXY_MARK} -j ACCEPT"),
        _rule(NAT, OUTPUT, f"{notlo} -o lo -j ACCEPT"),
        _rule(NAT, OUTPUT, f"{notlo} -p tcp -m mark ! --mark {INPOD_MARK} -j REDIRECT --to-ports {ZTUNNEL_OUTBOUND_PORT}"),
    ]
    mangle = [
        _rule(MANGLE, "PREROUTING", f"-j {PRERT}"),
        _rule(MANGLE, "OUTPUT", f"-j {OUTPUT}"),
        _rule(MANGLE, PRERT, f"-m mark --mark {INPOD_MARK} -j CONNMARK --set-xmark {TPROXY_MARK}"),
        _rule(MANGLE, PRERT, f"-s {snat_ip} -p tcp -m tcp -j ACCEPT"),
        _rule(MANGLE, PRERT, f"{notlo} -p tcp -i lo -j ACCEPT"),
        _rule(MANGLE, PRERT, f"-p tcp -m tcp --dport {ZTUNNEL_INBOUND_PORT} -m mark ! --mark {INPOD_MARK} "
                             f"-j TPROXY --on-port {ZTUNNEL_INBOUND_PORT} --tproxy-mark {TPROXY_MARK}"),
        _rule(MANGLE, PRERT, "-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        _rule(MANGLE, PRERT, f"{notlo} -p tcp -m mark ! --mark {INPOD_MARK} "
                             f"-j TPROXY --on-port {ZTUNNEL_INBOUND_PLAINTEXT_PORT} --tproxy-mark {TPROXY_MARK}"),
        _rule(MANGLE, OUTPUT, f"-m connmark --mark {TPROXY_MARK} "
                              f"-j CONNMARK --restore-mark --nfmask {RESTORE_MASK} --ctmask {RESTORE_MASK}"),
    ]
    return Ruleset(((NAT, (OUTPUT,)), (MANGLE, (PRERT, OUTPUT))), tuple(nat + mangle))


def host_ruleset(snat_ip: str = HOST_PROBE_SNAT_IP, ipset: str = PROBE_IPSET) -> Ruleset:
    """The node's probe SNAT (hostprobe.golden): first in POSTROUTING, before any masquerading."""
    return Ruleset(((NAT, (POSTRT,)),), (
        _rule(NAT, "POSTROUTING", f"-j {POSTRT}", insert=True),
        _rule(NAT, POSTRT, f"-m owner --socket-exists -p tcp -m set --match-set {ipset} dst "
                           f"-j SNAT --to-source {snat_ip}"),
    ))


def restore_input(ruleset: Ruleset) -> str:
    """The `iptables-restore --noflush` input equivalent to `ruleset` (what the agent logs)."""
    lines: list[str] = []
    for table, chains in ruleset.chains:
        lines.append(f"* {table}")
        lines += [f"-N {chain}" for chain in chains]
        lines += [rule.restore_line() for rule in ruleset.rules_of(table)]
        lines.append("COMMIT")
    return "\n".join(lines)


# -- canonical (iptables-save) form ---------------------------------------------------------

@dataclass
class Parsed:
    address: dict[str, tuple[bool, str]]
    matches: list[tuple[str, list[tuple[bool, str, list[str]]]]]
    target: str
    target_options: list[tuple[bool, str, list[str]]]


def parse(args: tuple[str, ...]) -> Parsed:
    """Split rule arguments into address options, matches and target (each option: negated, name, values)."""
    parsed = Parsed({}, [], "", [])
    options: list[tuple[bool, str, list[str]]] | None = None
    negate = False
    i = 0
    while i < len(args):
        token = args[i]
        if token == "!":
            negate = True
        elif token in _ADDRESS_OPTIONS:
            parsed.address[token] = (negate, args[i + 1])
            negate = False
            i += 1
        elif token == "-m":
            options = []
            parsed.matches.append((args[i + 1], options))
            i += 1
        elif token == "-j":
            parsed.target = args[i + 1]
            options = parsed.target_options
            i += 1
        elif token.startswith("--") and options is not None:
            values = []
            while i + 1 < len(args) and not args[i + 1].startswith("-") and args[i + 1] != "!":
                values.append(args[i + 1])
                i += 1
            options.append((negate, token, values))
            negate = False
        else:
            raise ValueError(f"cannot parse {token!r} in rule {' '.join(args)!r}")
        i += 1
    return parsed


def _with_prefix(address: str) -> str:
    return address if "/" in address else address + "/32"


def _options(options: Iterable[tuple[bool, str, list[str]]]) -> list[str]:
    out: list[str] = []
    for negated, name, values in options:
        out += (["!"] if negated else []) + [name, *values]
    return out


def _target_options(target: str, options: list[tuple[bool, str, list[str]]]) -> list[tuple[bool, str, list[str]]]:
    order = _TARGET_SAVE_ORDER.get(target)
    if order is None:
        return options
    given = {name: (negated, name, values) for negated, name, values in options}
    out = []
    for name, default in order:
        if name in given:
            out.append(given[name])
        elif default is not None:
            out.append((False, name, [default]))
    return out


def save_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """A rule's arguments as iptables-save prints them (address options first, /32 masks)."""
    parsed = parse(args)
    out: list[str] = []
    for option in _ADDRESS_OPTIONS:
        if option in parsed.address:
            negated, value = parsed.address[option]
            out += (["!"] if negated else []) + [option, _with_prefix(value) if option in ("-s", "-d") else value]
    for module, options in parsed.matches:
        out += ["-m", module, *_options(options)]
    if parsed.target:
        out += ["-j", parsed.target, *_options(_target_options(parsed.target, parsed.target_options))]
    return tuple(out)


def save_lines(ruleset: Ruleset, table: str) -> list[str]:
    """The `-A` lines iptables-save prints for `table` once `ruleset` is applied to a clean netns."""
    state = expected_state(ruleset)[table]
    builtins = [chain for chain in state if not chain.startswith(CHAIN_PREFIX)]
    ordered = sorted(builtins, key=_BUILTIN_ORDER.index) + sorted(c for c in state if c.startswith(CHAIN_PREFIX))
    return [f"-A {chain} {' '.join(args)}" for chain in ordered for args in state[chain]]


@dataclass(frozen=True)
class RuleView:
    """A rule read back from the kernel, in python-iptables' terms."""

    src: str = "0.0.0.0/0.0.0.0"
    dst: str = "0.0.0.0/0.0.0.0"
    in_interface: str | None = None
    out_interface: str | None = None
    protocol: str = "ip"
    matches: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()  # (module, ((option, values),))
    target: str = ""
    target_parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _netmask_bits(mask: str) -> int:
    return sum(bin(int(part)).count("1") for part in mask.split("."))


def _view_address(value: str) -> tuple[bool, str] | None:
    negated = value.startswith("!")
    address, _, mask = value.lstrip("!").partition("/")
    if mask in ("", "0.0.0.0", "0") and address == "0.0.0.0":
        return None
    bits = int(mask) if mask.isdigit() else _netmask_bits(mask or "255.255.255.255")
    return negated, f"{address}/{bits}"


def _view_options(parameters: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    out: list[str] = []
    for name, values in parameters:
        negated = bool(values) and values[0] == "!"
        out += (["!"] if negated else []) + [f"--{name}", *(values[1:] if negated else values)]
    return out


def view_save_args(view: RuleView) -> tuple[str, ...]:
    """A kernel rule's arguments as iptables-save prints them."""
    out: list[str] = []
    for option, raw in (("-s", view.src), ("-d", view.dst)):
        address = _view_address(raw)
        if address is not None:
            out += (["!"] if address[0] else []) + [option, address[1]]
    for option, iface in (("-i", view.in_interface), ("-o", view.out_interface)):
        if iface:
            out += (["!", option, iface[1:]] if iface.startswith("!") else [option, iface])
    if view.protocol and view.protocol.lstrip("!") not in ("ip", "all", "0"):
        out += (["!", "-p", view.protocol[1:]] if view.protocol.startswith("!") else ["-p", view.protocol])
    for module, parameters in view.matches:
        out += ["-m", module, *_view_options(parameters)]
    if view.target:
        out += ["-j", view.target, *_view_options(view.target_parameters)]
    return tuple(out)


# -- reconciliation -------------------------------------------------------------------------

class Verdict(enum.Enum):
    CLEAN = "Clean-state detected, new iptables are needed"
    COMPATIBLE = "Found compatible residues of old iptables rules/chains, reconciliation not needed"
    RECONCILE = "Found residues of old iptables rules/chains, reconciliation is recommended"


def expected_state(ruleset: Ruleset) -> State:
    state: State = {}
    for table, chains in ruleset.chains:
        by_chain: dict[str, list[tuple[str, ...]]] = {chain: [] for chain in chains}
        for rule in ruleset.rules_of(table):
            by_chain.setdefault(rule.chain, []).append(save_args(rule.args))
        state[table] = {chain: tuple(rules) for chain, rules in by_chain.items()}
    return state


def is_owned(chain: str) -> bool:
    return chain.startswith(CHAIN_PREFIX)


def jumps_into_owned(args: tuple[str, ...]) -> bool:
    """Whether a built-in chain's rule is one of ours: a jump into an ISTIO_* chain."""
    return "-j" in args and is_owned(args[args.index("-j") + 1])


def decide(observed: State, ruleset: Ruleset) -> Verdict:
    """CLEAN when nothing of ours is there, COMPATIBLE when exactly `ruleset` is, else RECONCILE.

    `observed` holds, per table of the ruleset, the ISTIO_* chains (all their rules) and the
    built-in chains' jumps into them (other rules of built-in chains are not ours and ignored).
    """
    ours: State = {}
    for table in ruleset.tables:
        chains = observed.get(table, {})
        ours[table] = {}
        for chain, rules in chains.items():
            if is_owned(chain):
                ours[table][chain] = tuple(rules)
            else:
                jumps = tuple(r for r in rules if jumps_into_owned(r))
                if jumps:
                    ours[table][chain] = jumps
    if not any(ours.values()):
        return Verdict.CLEAN
    return Verdict.COMPATIBLE if ours == expected_state(ruleset) else Verdict.RECONCILE
