"""ztunnel's RBAC vocabulary: RbacMatch, StringMatch and the conversions istiod applies to
AuthorizationPolicy strings (`stringToMatch`, `stringToIP`, `stringToPort`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

Obj = dict[str, Any]

# RbacMatch's fields in ztunnel's declaration order (`src/rbac.rs`); empty ones are left out.
MATCH_FIELDS = (
    "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts", "principals",
    "notPrincipals", "sourceIps", "notSourceIps", "destinationIps", "notDestinationIps",
    "destinationPorts", "notDestinationPorts",
)
_DIGITS = re.compile(r"[0-9]+")


def match(**fields: list[Any]) -> Obj:
    """An RbacMatch with the non-empty fields given (an empty one matches nothing in ztunnel)."""
    unknown = set(fields) - set(MATCH_FIELDS)
    if unknown:
        raise TypeError(f"not RbacMatch fields: {sorted(unknown)}")
    return {f: fields[f] for f in MATCH_FIELDS if fields.get(f)}


def presence() -> Obj:
    """StringMatch Presence (serde's `Presence()`): any non-empty value."""
    return {"Presence": []}


def string_matches(values: Iterable[str] | None) -> list[Obj]:
    """`*` is Presence, `*x` Suffix, `x*` Prefix, anything else Exact (ztunnel's externally tagged
    StringMatch)."""
    result: list[Obj] = []
    for v in values or ():
        if v == "*":
            result.append(presence())
        elif v.startswith("*"):
            result.append({"Suffix": v[1:]})
        elif v.endswith("*"):
            result.append({"Prefix": v[:-1]})
        else:
            result.append({"Exact": v})
    return result


def ip_nets(values: Iterable[str] | None) -> list[str]:
    """CIDRs as ztunnel's IpNet strings; a bare address is a host prefix. Unparsable entries are
    dropped, as istiod drops them (the address is kept unmasked, as istiod sends it)."""
    result: list[str] = []
    for v in values or ():
        addr, slash, bits = v.partition("/")
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            continue
        if not slash:
            result.append(f"{ip}/{ip.max_prefixlen}")
        elif _DIGITS.fullmatch(bits) and int(bits) <= ip.max_prefixlen:
            result.append(f"{ip}/{int(bits)}")
    return result


def ports(values: Iterable[str] | None) -> list[int]:
    """Numeric ports only: a named port or anything out of range is dropped, as istiod does."""
    return [int(v) for v in values or () if _DIGITS.fullmatch(str(v)) and int(v) <= 65535]


def service_accounts(values: Iterable[str] | None, policy_namespace: str) -> list[Obj]:
    """`ns/sa`, or a bare `sa` meaning the policy's own namespace."""
    result: list[Obj] = []
    for v in values or ():
        ns, slash, sa = v.partition("/")
        result.append({"namespace": ns, "serviceAccount": sa} if slash
                      else {"namespace": policy_namespace, "serviceAccount": v})
    return result


def is_empty(m: Obj) -> bool:
    return not any(m.get(f) for f in MATCH_FIELDS)


def has_effective_rules(rules: list[list[list[Obj]]]) -> bool:
    """Whether any rule can fire in ztunnel: a rule with no clauses matches everything; otherwise
    every clause needs a non-empty match, since ztunnel skips empty ones."""
    return any(all(any(not is_empty(m) for m in clause) for clause in rule) for rule in rules)
