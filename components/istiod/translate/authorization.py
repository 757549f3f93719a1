"""AuthorizationPolicy to ztunnel Authorization, by istiod's rules (`convertAuthorizationPolicy` and
`handleRule` in pilot/pkg/serviceregistry/ambient/authorization.go), with the `ZtunnelAccepted`
status condition istiod writes back on each policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from components.istiod.translate import rbac
from components.istiod.translate.model import (
    DRY_RUN, Obj, annotations_of, metadata, name_of, namespace_of, selects, spec_of,
)

HTTP_OPERATION_FIELDS = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
HTTP_SOURCE_FIELDS = ("remoteIpBlocks", "notRemoteIpBlocks", "requestPrincipals", "notRequestPrincipals")

# `when` keys ztunnel can enforce: key -> (positive field, negative field, value conversion).
L4_WHEN: dict[str, tuple[str, str, Callable[[Any], list[Any]]]] = {
    "source.ip": ("sourceIps", "notSourceIps", rbac.ip_nets),
    "source.namespace": ("namespaces", "notNamespaces", rbac.string_matches),
    "source.principal": ("principals", "notPrincipals", rbac.string_matches),
    "destination.ip": ("destinationIps", "notDestinationIps", rbac.ip_nets),
    "destination.port": ("destinationPorts", "notDestinationPorts", rbac.ports),
}

ZTUNNEL_ACCEPTED = "ZtunnelAccepted"
UNSUPPORTED = "UnsupportedValue"
HTTP_RULE_MESSAGE = ("ztunnel does not support HTTP attributes (found: {found}). "
                     "In ambient mode you must use a waypoint proxy to enforce HTTP rules. {consequence}")
HTTP_ALLOW = ("Within an ALLOW policy, rules matching HTTP attributes are omitted. "
              "This will be more restrictive than requested.")
HTTP_DENY_MIXED = ("DENY policy with HTTP attributes is enforced without the HTTP rules. "
                   "This will be more restrictive than requested.")
HTTP_DENY_NO_EFFECT = ("After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules "
                       "at ztunnel and will have no effect. Deploy a waypoint proxy and use a targetRef to "
                       "enforce this policy.")

_TRUE = ("1", "t", "T", "TRUE", "true", "True")


@dataclass(frozen=True)
class Converted:
    """One AuthorizationPolicy as istiod sees it for ztunnel."""

    namespace: str
    name: str
    authorization: Obj | None             # what ztunnel gets; None when it gets nothing
    match_labels: Mapping[str, str] | None  # attaches to the pods it selects; None: attaches by scope
    condition: Obj                        # the ZtunnelAccepted status condition

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def convert(policy: Obj, root_namespace: str, dry_run_enabled: bool = True) -> Converted | None:
    """The policy for ztunnel, or None when it is not meant for ztunnel at all (`targetRef(s)`:
    a waypoint's policy, for which istiod writes no ztunnel status either)."""
    spec = spec_of(policy)
    ns, name = namespace_of(policy), name_of(policy)
    generation = metadata(policy).get("generation", 0)

    def result(authorization: Obj | None, reason: str, message: str) -> Converted:
        selector = spec.get("selector")
        labels = selector.get("matchLabels") if isinstance(selector, dict) else None
        return Converted(ns, name, authorization, labels,
                         condition(authorization is not None, reason, message, generation))

    dry_run = _dry_run(policy)
    if dry_run and not dry_run_enabled:
        return result(None, UNSUPPORTED,
                      f'found policy "{ns}/{name}" using dry-run annotation, but support for ambient '
                      "dry-run authorizationPolicies isn't enabled")
    if spec.get("targetRef") or spec.get("targetRefs"):
        return None
    action = spec.get("action") or "ALLOW"
    if action not in ("ALLOW", "DENY"):
        return result(None, UNSUPPORTED, f"ztunnel does not support the {action} action")

    rules: list[list[list[Obj]]] = []
    http_found: set[str] = set()
    for rule in spec.get("rules") or []:
        clauses, found = _rule(action, rule or {}, ns)
        http_found |= found
        if clauses is not None:
            rules.append(clauses)
    authorization = {
        "name": name, "namespace": ns, "scope": _scope(spec, ns, root_namespace),
        "action": action.capitalize(), "rules": rules, "dryRun": dry_run,
    }
    if not http_found:
        return result(authorization, "Accepted", "attached to ztunnel")
    if action == "ALLOW":
        consequence = HTTP_ALLOW
    elif rbac.has_effective_rules(rules):
        consequence = HTTP_DENY_MIXED
    else:
        consequence = HTTP_DENY_NO_EFFECT
    return result(authorization, UNSUPPORTED,
                  HTTP_RULE_MESSAGE.format(found=", ".join(sorted(http_found)), consequence=consequence))


def condition(bound: bool, reason: str, message: str, generation: int) -> Obj:
    """The `ZtunnelAccepted` condition (without lastTransitionTime, which the writer stamps)."""
    return {"type": ZTUNNEL_ACCEPTED, "status": "True" if bound else "False", "reason": reason,
            "message": message, "observedGeneration": generation}


def _dry_run(policy: Obj) -> bool:
    """`istio.io/dry-run` parsed as Go's strconv.ParseBool; a bad value counts as false."""
    value = annotations_of(policy).get(DRY_RUN, "")
    return value in _TRUE


def _scope(spec: Obj, namespace: str, root_namespace: str) -> str:
    if spec.get("selector") is not None:
        return "WorkloadSelector"
    return "Global" if namespace == root_namespace else "Namespace"


def _rule(action: str, rule: Obj, namespace: str) -> tuple[list[list[Obj]] | None, set[str]]:
    """One rule as ztunnel clauses (ANDed): all `to` operations (ORed), all `from` sources (ORed),
    then one clause per `when` condition. HTTP-only attributes cannot be enforced at L4: an ALLOW
    rule using any is dropped whole (None); a DENY rule keeps the rest, and an entry left with
    nothing becomes an empty match, which ztunnel skips, so such a clause never matches."""
    found: set[str] = set()
    clauses: list[list[Obj]] = []
    to_matches = []
    for to in rule.get("to") or []:
        op = (to or {}).get("operation") or {}
        found.update(f for f in HTTP_OPERATION_FIELDS if op.get(f))
        to_matches.append(rbac.match(destinationPorts=rbac.ports(op.get("ports")),
                                     notDestinationPorts=rbac.ports(op.get("notPorts"))))
    from_matches = []
    for source in rule.get("from") or []:
        src = (source or {}).get("source") or {}
        found.update(f for f in HTTP_SOURCE_FIELDS if src.get(f))
        from_matches.append(rbac.match(
            sourceIps=rbac.ip_nets(src.get("ipBlocks")), notSourceIps=rbac.ip_nets(src.get("notIpBlocks")),
            namespaces=rbac.string_matches(src.get("namespaces")),
            notNamespaces=rbac.string_matches(src.get("notNamespaces")),
            serviceAccounts=rbac.service_accounts(src.get("serviceAccounts"), namespace),
            notServiceAccounts=rbac.service_accounts(src.get("notServiceAccounts"), namespace),
            principals=rbac.string_matches(src.get("principals")),
            notPrincipals=rbac.string_matches(src.get("notPrincipals"))))
    if to_matches:
        clauses.append(to_matches)
    if from_matches:
        clauses.append(from_matches)
    for when in rule.get("when") or []:
        key = when.get("key", "")
        if key not in L4_WHEN:
            found.add(key)
            clauses.append([rbac.match()])
            continue
        positive, negative, convert_values = L4_WHEN[key]
        clauses.append([rbac.match(**{positive: convert_values(when.get("values")),
                                      negative: convert_values(when.get("notValues"))})])
    if action == "ALLOW" and found:
        return None, found
    return clauses, found


def selected_policy_keys(policies: list[Converted], pod_namespace: str, pod_labels: Mapping[str, str],
                         root_namespace: str) -> list[str]:
    """The selector policies that select a pod, sorted: only those of the pod's own namespace or
    of the root namespace (istio/istio#51556); namespace and global ones attach by scope instead."""
    return sorted(
        p.key for p in policies
        if p.authorization is not None and p.match_labels is not None
        and p.namespace in (pod_namespace, root_namespace) and selects(p.match_labels, pod_labels))
