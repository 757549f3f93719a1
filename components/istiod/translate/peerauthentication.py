"""PeerAuthentication in ambient: STRICT becomes a DENY of connections without a peer identity.

By istiod's rules (pilot/pkg/serviceregistry/ambient/policies.go and authorization.go):
- Whenever any PeerAuthentication exists, one static policy `<root>/istio_converted_static_strict`
  (DENY unless the peer has an identity) is sent, and every workload whose effective mode is
  STRICT lists it in its `authorizationPolicies`.
- Only a workload-selector policy outside the root namespace with `portLevelMtls` is converted on
  its own, as `converted_peer_authentication_<name>`: port exceptions to a STRICT mode
  (`notDestinationPorts`), or STRICT ports in a PERMISSIVE one (`destinationPorts`). A workload
  using it lists it instead of the static policy, since ztunnel lets any matching DENY win.
- DISABLE has no effect of its own in ambient: it only means "not STRICT".
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from components.istiod.translate import rbac
from components.istiod.translate.model import Obj, metadata, name_of, namespace_of, selects, spec_of

STATIC_STRICT_NAME = "istio_converted_static_strict"
CONVERTED_PREFIX = "converted_peer_authentication_"
STRICT, PERMISSIVE, DISABLE, UNSET = "STRICT", "PERMISSIVE", "DISABLE", "UNSET"


def converted_name(name: str) -> str:
    return CONVERTED_PREFIX + name


def policies(peer_authentications: Sequence[Obj], root_namespace: str) -> list[Obj]:
    """The Authorizations PeerAuthentications add to ztunnel's config."""
    if not peer_authentications:
        return []
    result = [_deny_without_identity(STATIC_STRICT_NAME, root_namespace, [[[_no_identity()]]])]
    root_policy = _namespace_policy(peer_authentications, root_namespace)
    for pa in peer_authentications:
        converted = _convert(pa, _namespace_policy(peer_authentications, namespace_of(pa)), root_policy,
                             root_namespace)
        if converted is not None:
            result.append(converted)
    return result


def workload_policy_keys(peer_authentications: Sequence[Obj], namespace: str, labels: Mapping[str, str],
                         root_namespace: str) -> list[str]:
    """The PeerAuthentication-derived policies a workload lists (`convertedSelectorPeerAuthentications`)."""
    applicable = [pa for pa in peer_authentications if _applies(pa, namespace, labels, root_namespace)]
    mesh = _oldest(pa for pa in applicable if not _match_labels(pa) and namespace_of(pa) == root_namespace)
    ns_wide = _oldest(pa for pa in applicable if not _match_labels(pa) and namespace_of(pa) != root_namespace)
    workload = _oldest(pa for pa in applicable if _match_labels(pa) and namespace_of(pa) != root_namespace)

    strict = mesh is not None and _mode(mesh) == STRICT
    if ns_wide is not None and _mode(ns_wide) != UNSET:
        strict = _mode(ns_wide) == STRICT
    port_policy = ""
    if workload is not None:
        mode = _mode(workload)
        if mode in (STRICT, PERMISSIVE, DISABLE):
            strict = mode == STRICT
        port_level = spec_of(workload).get("portLevelMtls")
        if port_level is not None:
            port_modes = {_mode_of(m) for m in port_level.values()}
            own_key = f"{namespace_of(workload)}/{converted_name(name_of(workload))}"
            if mode == STRICT:
                if port_modes & {PERMISSIVE, DISABLE}:
                    port_policy, strict = own_key, False
            elif mode in (PERMISSIVE, DISABLE) or not strict:
                if STRICT in port_modes:
                    port_policy = own_key
            elif PERMISSIVE in port_modes:
                # istiod checks only PERMISSIVE here: a DISABLE port under an inherited STRICT stays STRICT.
                port_policy, strict = own_key, False
    keys = {f"{root_namespace}/{STATIC_STRICT_NAME}"} if strict else set()
    if port_policy:
        keys.add(port_policy)
    return sorted(keys)


def _convert(pa: Obj, ns_policy: Obj | None, root_policy: Obj | None, root_namespace: str) -> Obj | None:
    """`convertPeerAuthentication`: a workload policy's port-level settings against its parents."""
    spec = spec_of(pa)
    if namespace_of(pa) == root_namespace or spec.get("selector") is None or not spec.get("portLevelMtls"):
        return None
    mode = _mode(pa)
    ns_mode = _mode(ns_policy) if ns_policy is not None else None
    root_mode = _mode(root_policy) if root_policy is not None else None
    exceptions: list[list[Obj]] = [[_no_identity()]] if mode == STRICT else []
    rules: list[list[list[Obj]]] = []
    found_non_strict = False
    for port, port_mtls in sorted((int(p), m) for p, m in spec["portLevelMtls"].items()):
        port_mode = _mode_of(port_mtls)
        if port_mode == STRICT:
            # Already enforced by the workload's own or an inherited STRICT (the last test is
            # istiod's as written: it does not require the workload's mode to be unset).
            if (mode == STRICT or (mode == UNSET and ns_mode == STRICT)
                    or (ns_mode in (None, UNSET) and root_mode == STRICT)):
                continue
            rules.append([[rbac.match(notPrincipals=[rbac.presence()], destinationPorts=[port])]])
        elif port_mode in (PERMISSIVE, DISABLE):
            if mode in (PERMISSIVE, DISABLE):
                continue
            if mode == UNSET and ((ns_mode is not None and ns_mode != STRICT)
                                  or (ns_mode is None and root_mode is not None and root_mode != STRICT)
                                  or (ns_mode is None and root_mode is None)):
                continue
            found_non_strict = True
            exceptions.append([rbac.match(notDestinationPorts=[port])])
    if mode == STRICT and not found_non_strict:
        return None
    if not exceptions and not rules:
        return None
    inherited_strict = ((root_mode == STRICT and ns_mode in (None, UNSET, STRICT)) or ns_mode == STRICT)
    if inherited_strict and found_non_strict:
        exceptions.append([_no_identity()])
    if exceptions:
        rules.append(exceptions)
    return _deny_without_identity(converted_name(name_of(pa)), namespace_of(pa), rules)


def _no_identity() -> Obj:
    return rbac.match(notPrincipals=[rbac.presence()])


def _deny_without_identity(name: str, namespace: str, rules: list[list[list[Obj]]]) -> Obj:
    return {"name": name, "namespace": namespace, "scope": "WorkloadSelector", "action": "Deny",
            "rules": rules, "dryRun": False}


def _applies(pa: Obj, namespace: str, labels: Mapping[str, str], root_namespace: str) -> bool:
    """`fetchPeerAuthentications`: the workload's namespace (no selector, or a matching one), and
    mesh-wide policies (root namespace, no selector)."""
    selector = spec_of(pa).get("selector")
    if namespace_of(pa) == namespace:
        return selector is None or selects(selector.get("matchLabels") or {}, labels)
    return namespace_of(pa) == root_namespace and selector is None


def _namespace_policy(peer_authentications: Sequence[Obj], namespace: str) -> Obj | None:
    """The oldest selector-less policy of a namespace."""
    return _oldest(pa for pa in peer_authentications
                   if namespace_of(pa) == namespace and spec_of(pa).get("selector") is None)


def _match_labels(pa: Obj) -> dict[str, str]:
    return (spec_of(pa).get("selector") or {}).get("matchLabels") or {}


def _oldest(candidates: Iterable[Obj]) -> Obj | None:
    """The oldest policy wins a conflict (ties broken by name, so the result is deterministic)."""
    return min(candidates, key=lambda pa: (metadata(pa).get("creationTimestamp") or "", name_of(pa)),
               default=None)


def _mode(pa: Obj) -> str:
    return _mode_of(spec_of(pa).get("mtls"))


def _mode_of(mtls: Obj | None) -> str:
    return (mtls or {}).get("mode") or UNSET
