"""ztunnel's L4 authorization: which policies apply to a destination workload and whether they
allow a connection (`src/state.rs::assert_rbac`, `src/rbac.rs::Authorization::matches`).

Policies are the Authorization dicts istiod sends: camelCase, `rules` as rules → clauses →
matches, StringMatch as `{"Exact": "x"}`, `{"Prefix": "x"}`, `{"Suffix": "x"}` or
`{"Presence": []}`. Entries ztunnel could not decode (an unknown StringMatch, a malformed CIDR)
are dropped before matching, as its xDS conversion drops them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, NamedTuple

Obj = dict[str, Any]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# AuthorizationRejectionError's texts, and the proxy errors that carry them.
NOT_ALLOWED = "allow policies exist, but none allowed"
EXPLICITLY_DENIED = "explicitly denied by: {namespace}/{name}"
WORKLOAD_NOT_FOUND = "workload not found"
WORKLOAD_MISMATCH = "workload mismatch"
POLICY_REJECTION = "connection closed due to policy rejection: {reason}"
POLICY_CHANGE = "connection closed due to policy change"

_SPIFFE = "spiffe://"


def policy_key(policy: Obj) -> str:
    """`namespace/name`, how workloads list policies and ztunnel names them in logs."""
    return f"{policy.get('namespace', '')}/{policy.get('name', '')}"


@dataclass(frozen=True)
class Connection:
    """ztunnel's RBAC input. For HBONE the destination is `podIP:targetPort` (not 15008) and the
    identity is the client certificate's SPIFFE URI; plaintext (15006) has no identity."""

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    src_identity: str | None

    _src: IpAddress = field(init=False, repr=False, compare=False)
    _dst: IpAddress = field(init=False, repr=False, compare=False)
    _principal: str | None = field(init=False, repr=False, compare=False)
    _namespace: str = field(init=False, repr=False, compare=False)
    _service_account: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_src", _canonical_ip(self.src_ip))
        object.__setattr__(self, "_dst", _canonical_ip(self.dst_ip))
        principal, namespace, service_account = None, "", None
        if self.src_identity is not None:
            principal, namespace, service_account = _parse_identity(self.src_identity)
        object.__setattr__(self, "_principal", principal)
        object.__setattr__(self, "_namespace", namespace)
        object.__setattr__(self, "_service_account", service_account)


def _canonical_ip(ip: str) -> IpAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address, as ztunnel canonicalizes socket addresses."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_identity(identity: str) -> tuple[str, str, str]:
    """(principal, namespace, service account) of `spiffe://<td>/ns/<ns>/sa/<sa>`; the principal
    is the URI without `spiffe://`."""
    principal = identity.removeprefix(_SPIFFE)
    parts = principal.split("/")
    if principal == identity or len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        raise ValueError(f"not a SPIFFE identity: {identity!r}")
    return principal, parts[2], parts[4]


class AuthzLog(NamedTuple):
    """A line ztunnel logs while deciding (target `state`): `debug` lines are `info` with
    AUTHZ_POLICY_INFO_LOGGING=true; `policy` is the `policy=` field."""

    level: str
    message: str
    policy: str | None = None


@dataclass
class Decision:
    """The outcome of `evaluate`. `reason` is the rejection text when denied; `policy` the policy
    that decided (a matching DENY or ALLOW), if any; `dry_run` the dry-run policies that matched."""

    allowed: bool
    reason: str | None
    policy: str | None
    dry_run: list[str]
    log: list[AuthzLog] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """The error ztunnel logs for a denied connection (`error="..."` in the access log)."""
        return None if self.allowed else POLICY_REJECTION.format(reason=self.reason)


def applicable(policies: Iterable[Obj], workload: Obj) -> tuple[list[Obj], list[AuthzLog]]:
    """The policies that apply to a destination workload, as ztunnel gathers them: Namespace
    scope in the workload's namespace, Global scope, then those the workload lists by `ns/name`
    (whatever their namespace: istiod decides what a workload lists). A listed key ztunnel does
    not know is skipped with a warning."""
    by_key: dict[str, Obj] = {}
    for policy in policies:
        by_key[policy_key(policy)] = policy
    namespace = workload.get("namespace", "")
    keys = [k for k, p in by_key.items() if p.get("scope") == "Namespace" and p.get("namespace") == namespace]
    keys += [k for k, p in by_key.items() if p.get("scope") == "Global"]
    keys += workload.get("authorizationPolicies") or []
    result: list[Obj] = []
    log: list[AuthzLog] = []
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        if key not in by_key:
            log.append(AuthzLog("warn", f"skipping unknown policy {key}"))
            continue
        result.append(by_key[key])
    return result, log


def evaluate(policies: Iterable[Obj], workload: Obj, conn: Connection) -> Decision:
    """ztunnel's verdict on a connection to `workload`, given every policy it knows: any
    matching enforced DENY denies; else no enforced ALLOW allows; else a matching ALLOW allows;
    else denied. Dry-run policies are only reported."""
    found, log = applicable(policies, workload)
    deny = [p for p in found if p.get("action") == "Deny" and not p.get("dryRun")]
    allow = [p for p in found if p.get("action") == "Allow" and not p.get("dryRun")]
    dry_run: list[str] = []

    for policy in found:
        if policy.get("action") == "Deny" and policy.get("dryRun") and matches(policy, conn):
            dry_run.append(policy_key(policy))
            log.append(AuthzLog("debug", "dry-run: deny policy match", policy_key(policy)))
    for policy in deny:
        if matches(policy, conn):
            key = policy_key(policy)
            log.append(AuthzLog("debug", "deny policy match", key))
            reason = EXPLICITLY_DENIED.format(namespace=policy.get("namespace", ""), name=policy.get("name", ""))
            return Decision(False, reason, key, dry_run, log)

    allow_dry_run = [p for p in found if p.get("action") == "Allow" and p.get("dryRun")]
    dry_run_allowed = False
    for policy in allow_dry_run:
        if matches(policy, conn):
            dry_run_allowed = True
            dry_run.append(policy_key(policy))
            log.append(AuthzLog("debug", "dry-run: allow policy match", policy_key(policy)))
    if not allow and allow_dry_run and not dry_run_allowed:
        log.append(AuthzLog("debug", "dry-run: no allow policies match"))

    if not allow:
        log.append(AuthzLog("debug", "no allow policies, allow"))
        return Decision(True, None, None, dry_run, log)
    for policy in allow:
        if matches(policy, conn):
            log.append(AuthzLog("debug", "allow policy match", policy_key(policy)))
            return Decision(True, None, policy_key(policy), dry_run, log)
    log.append(AuthzLog("debug", "no allow policies matched"))
    return Decision(False, NOT_ALLOWED, None, dry_run, log)


def matches(policy: Obj, conn: Connection) -> bool:
    """`Authorization::matches`: no rules never matches; rules ORed, clauses ANDed, the matches
    of a clause ORed. An empty clause list matches; an empty match is skipped (never matches)."""
    return any(all(not clause or any(_match(m, conn) for m in clause) for clause in rule)
               for rule in policy.get("rules") or [])


def string_matches(matcher: Obj, value: str) -> bool:
    """One StringMatch against a value; Presence means any non-empty value."""
    if "Exact" in matcher:
        return value == matcher["Exact"]
    if "Prefix" in matcher:
        return value.startswith(matcher["Prefix"])
    if "Suffix" in matcher:
        return value.endswith(matcher["Suffix"])
    if "Presence" in matcher:
        return value != ""
    return False


_STRING_MATCH_KINDS = ("Exact", "Prefix", "Suffix", "Presence")


def _strings(values: Any) -> list[Obj]:
    return [v for v in values or () if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in _STRING_MATCH_KINDS]


def _service_accounts(values: Any) -> list[Obj]:
    return [v for v in values or () if isinstance(v, dict)]


@lru_cache(maxsize=4096)
def _network(cidr: str) -> IpNetwork | None:
    """A CIDR (a bare address is a host prefix); host bits are ignored, as IpNet::contains does."""
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _networks(values: Any) -> list[IpNetwork]:
    return [n for n in (_network(str(v)) for v in values or ()) if n is not None]


def _ports(values: Any) -> list[int]:
    return [int(v) for v in values or ()]


# (positive field, negative field, decoding, predicate) in the order ztunnel checks them.
_FIELDS: tuple[tuple[str, str, Callable[[Any], list[Any]], Callable[[Any, Connection], bool]], ...] = (
    ("destinationIps", "notDestinationIps", _networks, lambda net, c: c._dst in net),
    ("sourceIps", "notSourceIps", _networks, lambda net, c: c._src in net),
    ("destinationPorts", "notDestinationPorts", _ports, lambda port, c: port == c.dst_port),
    ("serviceAccounts", "notServiceAccounts", _service_accounts,
     lambda sa, c: c._service_account is not None
     and (sa.get("namespace"), sa.get("serviceAccount")) == (c._namespace, c._service_account)),
    ("principals", "notPrincipals", _strings,
     lambda m, c: c._principal is not None and string_matches(m, c._principal)),
    ("namespaces", "notNamespaces", _strings, lambda m, c: string_matches(m, c._namespace)),
)


def _match(match: Obj, conn: Connection) -> bool:
    """One RbacMatch: every populated field must hold (any positive value, no negative value).
    A match with no populated field is empty and does not match."""
    populated = False
    for positive_key, negative_key, decode, holds in _FIELDS:
        positive, negative = decode(match.get(positive_key)), decode(match.get(negative_key))
        if not positive and not negative:
            continue
        populated = True
        if positive and not any(holds(v, conn) for v in positive):
            return False
        if any(holds(v, conn) for v in negative):
            return False
    return populated
