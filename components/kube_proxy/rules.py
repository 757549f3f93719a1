"""The iptables rules kube-proxy's iptables mode writes, computed from the service ports (pure).

nat:
  PREROUTING, OUTPUT -> KUBE-SERVICES: per service port, ClusterIP:port -> KUBE-SVC-<hash>
  KUBE-SVC-<hash>: mark off-cluster sources for SNAT, then spread over KUBE-SEP-<hash> chains
                   with `-m statistic --mode random --probability 1/n, 1/(n-1), ...`
  KUBE-SEP-<hash>: mark hairpin traffic (an endpoint reaching itself), DNAT to ip:port
  KUBE-MARK-MASQ sets 0x4000; POSTROUTING -> KUBE-POSTROUTING masquerades what carries it
filter:
  FORWARD, OUTPUT (new connections) -> KUBE-SERVICES: REJECT ClusterIP ports without endpoints,
  so clients get "connection refused" at once instead of a hang.

Chain names, comments and probabilities are kube-proxy's own, so `iptables-save` in a node reads as
it does on a kind node. `Rule.save()` renders a rule exactly as `iptables-save` prints it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from components.kube_proxy.servicemap import ServicePort

NAT = "nat"
FILTER = "filter"
SERVICES = "KUBE-SERVICES"
MARK_MASQ = "KUBE-MARK-MASQ"
POSTROUTING = "KUBE-POSTROUTING"
SVC_PREFIX = "KUBE-SVC-"
SEP_PREFIX = "KUBE-SEP-"
MASQ_MARK = "0x4000/0x4000"

# Chains kube-proxy owns outright (per table), besides the per-service ones.
STATIC_CHAINS = {NAT: (SERVICES, MARK_MASQ, POSTROUTING), FILTER: (SERVICES,)}

_SAFE_CHARS = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    """`KUBE-SVC-` + base32(sha256("ns/svc:port" + "tcp"))[:16], as kube-proxy's portProtoHash."""
    return SVC_PREFIX + _hash16(sp.name_string + sp.protocol.lower())


def sep_chain(sp: ServicePort, endpoint: str) -> str:
    return SEP_PREFIX + _hash16(sp.name_string + sp.protocol.lower() + endpoint)


def probability(n: int) -> str:
    """1/n as iptables-save prints it: the kernel keeps it as a 31-bit fraction."""
    fraction = round(0x80000000 / n)
    return f"{fraction / 0x80000000:.11f}"


def is_owned(table: str, chain: str) -> bool:
    return chain in STATIC_CHAINS.get(table, ()) or (table == NAT and chain.startswith((SVC_PREFIX, SEP_PREFIX)))


def save_string(value: str) -> str:
    """An option value quoted as iptables-save quotes it (xtables_save_string)."""
    if value and all(c in _SAFE_CHARS for c in value):
        return value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f'"{escaped}"'


@dataclass(frozen=True)
class Match:
    """`-m <module> --opt value ...`; a value starting with "!" negates its option, "" is a flag."""

    module: str
    options: tuple[tuple[str, str], ...] = ()

    def save(self) -> str:
        parts = [f"-m {self.module}"]
        for option, value in self.options:
            negated = value.startswith("!")
            value = value[1:] if negated else value
            if option == "comment":
                value = save_string(value)
            parts.append(("! " if negated else "") + f"--{option}" + (f" {value}" if value else ""))
        return " ".join(parts)


@dataclass(frozen=True)
class Rule:
    target: str
    target_options: tuple[tuple[str, str], ...] = ()
    source: str | None = None           # "10.244.0.0/16" or "!10.244.0.0/16"
    destination: str | None = None
    protocol: str | None = None
    matches: tuple[Match, ...] = ()

    def save(self, chain: str) -> str:
        """The rule as `iptables-save` prints it: `-A CHAIN ... -j TARGET ...`."""
        parts = [f"-A {chain}"]
        for flag, value in (("-s", self.source), ("-d", self.destination), ("-p", self.protocol)):
            if value:
                parts.append(f"! {flag} {value[1:]}" if value.startswith("!") else f"{flag} {value}")
        parts += [m.save() for m in self.matches]
        parts.append(f"-j {self.target}")
        parts += [f"--{option}" + (f" {value}" if value else "") for option, value in self.target_options]
        return " ".join(parts)


def comment(text: str) -> Match:
    return Match("comment", (("comment", text),))


@dataclass
class Ruleset:
    """Desired content of kube-proxy's chains, per table, in order."""

    tables: dict[str, dict[str, list[Rule]]] = field(default_factory=lambda: {FILTER: {}, NAT: {}})

    def chain(self, table: str, name: str) -> list[Rule]:
        return self.tables[table].setdefault(name, [])

    def save(self) -> str:
        """The chains and rules as iptables-save would list them (owned chains only)."""
        lines = []
        for table, chains in self.tables.items():
            lines.append(f"*{table}")
            lines += [f":{name} - [0:0]" for name in sorted(chains)]
            for name, rules in chains.items():
                lines += [rule.save(name) for rule in rules]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def counts(self, table: str) -> tuple[int, int]:
        chains = self.tables[table]
        return len(chains), sum(len(rules) for rules in chains.values())


# Rules in the built-in chains that lead into kube-proxy's chains: (table, chain, rule).
JUMPS: tuple[tuple[str, str, Rule], ...] = (
    (NAT, "PREROUTING", Rule(SERVICES, matches=(comment("kubernetes service portals"),))),
    (NAT, "OUTPUT", Rule(SERVICES, matches=(comment("kubernetes service portals"),))),
    (NAT, "POSTROUTING", Rule(POSTROUTING, matches=(comment("kubernetes postrouting rules"),))),
    *((FILTER, builtin, Rule(SERVICES, matches=(Match("conntrack", (("ctstate", "NEW"),)),
                                                comment("kubernetes service portals"))))
      for builtin in ("FORWARD", "OUTPUT")),
)


def _static_nat(rules: Ruleset) -> None:
    rules.chain(NAT, SERVICES)
    rules.chain(NAT, MARK_MASQ).append(Rule("MARK", (("set-xmark", MASQ_MARK),)))
    rules.chain(NAT, POSTROUTING).extend([
        Rule("RETURN", matches=(Match("mark", (("mark", "!" + MASQ_MARK),)),)),
        Rule("MARK", (("set-xmark", "0x4000/0x0"),)),
        Rule("MASQUERADE", (("random-fully", ""),), matches=(comment("kubernetes service traffic requiring SNAT"),)),
    ])


def _port_match(sp: ServicePort, with_port: bool = True) -> Match:
    protocol = sp.protocol.lower()
    return Match(protocol, (("dport", str(sp.port)),) if with_port else ())


def _service(rules: Ruleset, sp: ServicePort, cluster_cidr: str | None) -> None:
    protocol = sp.protocol.lower()
    destination = f"{sp.cluster_ip}/32"
    if not sp.endpoints:
        rules.chain(FILTER, SERVICES).append(Rule(
            "REJECT", (("reject-with", "icmp-port-unreachable"),), destination=destination, protocol=protocol,
            matches=(comment(f"{sp.name_string} has no endpoints"), _port_match(sp))))
        return
    chain = svc_chain(sp)
    cluster_comment = comment(f"{sp.name_string} cluster IP")
    rules.chain(NAT, SERVICES).append(Rule(chain, destination=destination, protocol=protocol,
                                           matches=(cluster_comment, _port_match(sp))))
    svc = rules.chain(NAT, chain)
    if cluster_cidr:
        svc.append(Rule(MARK_MASQ, source="!" + cluster_cidr, destination=destination, protocol=protocol,
                        matches=(cluster_comment, _port_match(sp))))
    count = len(sp.endpoints)
    for i, endpoint in enumerate(sp.endpoints):
        sep = sep_chain(sp, str(endpoint))
        matches = [comment(f"{sp.name_string} -> {endpoint}")]
        if i < count - 1:
            matches.append(Match("statistic", (("mode", "random"), ("probability", probability(count - i)))))
        svc.append(Rule(sep, matches=tuple(matches)))
        rules.chain(NAT, sep).extend([
            Rule(MARK_MASQ, source=f"{endpoint.ip}/32", matches=(comment(sp.name_string),)),
            Rule("DNAT", (("to-destination", str(endpoint)),), protocol=protocol,
                 matches=(comment(sp.name_string), _port_match(sp, with_port=False))),
        ])


def compute(service_ports: list[ServicePort], cluster_cidr: str | None = None) -> Ruleset:
    """The desired chains for these service ports. `cluster_cidr` (the pod network) lets traffic
    from outside it be masqueraded, as kube-proxy's `--cluster-cidr` does."""
    rules = Ruleset()
    rules.chain(FILTER, SERVICES)
    _static_nat(rules)
    for sp in service_ports:
        _service(rules, sp, cluster_cidr)
    return rules
