"""ztunnel's L4 authorization: the tests of ztunnel's `src/rbac.rs` and `src/state.rs`, the
precedence rows of the AuthorizationPolicy semantics, dry-run and policy scope."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from components.istiod.translate import authorization
from components.ztunnel.rbac import (
    AuthzLog, Connection, Decision, NOT_ALLOWED, applicable, evaluate, matches, string_matches,
)
from tests.unit import istiod_objects as k8s

Obj = dict[str, Any]

PLAINTEXT = Connection("127.0.0.1", 1234, "127.0.0.2", 8080, None)
TLS = Connection("127.0.0.1", 1234, "127.0.0.2", 8080, "spiffe://td/ns/namespace/sa/account")
TLS_ALT = Connection("127.0.0.3", 1234, "127.0.0.4", 9090, "spiffe://td-alt/ns/ns-alt/sa/sa=alt")


def policy(name: str = "pol", rules: list[Any] | None = None, action: str = "Allow", scope: str = "Global",
           namespace: str = "namespace", dry_run: bool = False) -> Obj:
    return {"name": name, "namespace": namespace, "scope": scope, "action": action,
            "rules": rules if rules is not None else [], "dryRun": dry_run}


def one_match(**fields: Any) -> list[Any]:
    return [[[fields]]]


def workload(namespace: str = "ns1", policies: list[str] | None = None) -> Obj:
    return {"uid": f"Kubernetes//Pod/{namespace}/server", "name": "server", "namespace": namespace,
            "workloadIps": ["10.244.1.5"], "authorizationPolicies": policies or []}


def tls_from(sa: str, namespace: str = "default", port: int = 8080, src: str = "10.244.1.9") -> Connection:
    return Connection(src, 40000, "10.244.1.5", port, f"spiffe://cluster.local/ns/{namespace}/sa/{sa}")


def principal(sa: str, namespace: str = "default") -> Obj:
    return {"Exact": f"cluster.local/ns/{namespace}/sa/{sa}"}


# --- src/rbac.rs ---------------------------------------------------------------------------------

def test_rbac_empty_policy() -> None:
    assert not matches(policy(rules=[[[{}]]]), PLAINTEXT)
    assert matches(policy(rules=[[[]]]), PLAINTEXT)
    assert matches(policy(rules=[[]]), PLAINTEXT)
    assert not matches(policy(rules=[]), PLAINTEXT)


def test_rbac_empty_match_fields_are_empty() -> None:
    """A match whose lists are all empty is as empty as `{}`: skipped."""
    assert not matches(policy(rules=one_match(namespaces=[], destinationPorts=[])), TLS)


def test_rbac_nesting() -> None:
    pol = policy(rules=[[
        [{"namespaces": [{"Exact": "a"}]}, {"namespaces": [{"Exact": "b"}]}],
        [{"destinationPorts": [80]}],
    ]])

    def conn(namespace: str, port: int) -> Connection:
        return Connection("127.0.0.1", 1234, "127.0.0.2", port, f"spiffe://td/ns/{namespace}/sa/account")

    assert matches(pol, conn("a", 80))
    assert matches(pol, conn("b", 80))
    assert not matches(pol, conn("bad", 80))
    assert not matches(pol, conn("b", 12345))


def test_rbac_multi_rule() -> None:
    pol = policy(rules=[[[{"namespaces": [{"Exact": "a"}]}]], [[{"namespaces": [{"Exact": "b"}]}]]])

    def conn(namespace: str) -> Connection:
        return Connection("127.0.0.1", 1234, "127.0.0.2", 80, f"spiffe://td/ns/{namespace}/sa/account")

    assert matches(pol, conn("a"))
    assert matches(pol, conn("b"))
    assert not matches(pol, conn("bad"))


SA = {"namespace": "namespace", "serviceAccount": "account"}


@pytest.mark.parametrize("field, values, plaintext, tls, tls_alt", [
    ("namespaces", [{"Exact": "namespace"}], False, True, False),
    ("notNamespaces", [{"Exact": "namespace"}], True, False, True),
    ("serviceAccounts", [SA], False, True, False),
    ("notServiceAccounts", [SA], True, False, True),
    ("principals", [{"Exact": "td/ns/namespace/sa/account"}], False, True, False),
    ("notPrincipals", [{"Exact": "td/ns/namespace/sa/account"}], True, False, True),
    ("sourceIps", ["127.0.0.1/32"], True, True, False),
    ("notSourceIps", ["127.0.0.1/32"], False, False, True),
    ("destinationIps", ["127.0.0.2/32"], True, True, False),
    ("notDestinationIps", ["127.0.0.2/32"], False, False, True),
    ("destinationIps", ["127.0.0.1/24"], True, True, True),  # cidr_range: host bits ignored
    ("destinationPorts", [8080], True, True, False),
    ("notDestinationPorts", [8080], False, False, True),
], ids=["namespaces", "not_namespaces", "service_accounts", "not_service_accounts", "principals",
        "not_principals", "source_ips", "not_source_ips", "destination_ips", "not_destination_ips",
        "cidr_range", "destination_ports", "not_destination_ports"])
def test_rbac_field(field: str, values: list[Any], plaintext: bool, tls: bool, tls_alt: bool) -> None:
    pol = policy(field, one_match(**{field: values}))
    assert [matches(pol, c) for c in (PLAINTEXT, TLS, TLS_ALT)] == [plaintext, tls, tls_alt]


@pytest.mark.parametrize("matcher, value, expected", [
    ({"Exact": "foo"}, "foo", True),
    ({"Exact": "foo"}, "not", False),
    ({"Exact": "foo"}, "", False),
    ({"Prefix": "foo"}, "foobar", True),
    ({"Prefix": "foo"}, "notfoo", False),
    ({"Prefix": "foo"}, "", False),
    ({"Suffix": "foo"}, "barfoo", True),
    ({"Suffix": "foo"}, "foonot", False),
    ({"Suffix": "foo"}, "", False),
    ({"Presence": []}, "foo", True),
    ({"Presence": []}, "", False),
], ids=["exact match", "exact mismatch", "exact empty mismatch", "prefix match", "prefix mismatch",
        "prefix empty mismatch", "suffix match", "suffix mismatch", "suffix empty mismatch",
        "presence match", "presence mismatch"])
def test_string_match(matcher: Obj, value: str, expected: bool) -> None:
    assert string_matches(matcher, value) is expected


def test_bare_ip_is_a_host_prefix() -> None:
    pol = policy(rules=one_match(sourceIps=["127.0.0.1"]))
    assert matches(pol, PLAINTEXT) and not matches(pol, TLS_ALT)


def test_ipv4_mapped_source_is_ipv4() -> None:
    conn = Connection("::ffff:127.0.0.1", 1234, "::ffff:127.0.0.2", 8080, None)
    assert matches(policy(rules=one_match(sourceIps=["127.0.0.0/8"], destinationIps=["127.0.0.2/32"])), conn)


def test_undecodable_entries_are_dropped() -> None:
    """As ztunnel's xDS conversion drops them: the field then constrains nothing, and a match
    left with nothing is empty."""
    assert matches(policy(rules=one_match(sourceIps=["not-an-ip"], destinationPorts=[8080])), PLAINTEXT)
    assert not matches(policy(rules=one_match(namespaces=[{"Regex": ".*"}])), TLS)


def test_principals_prefix_and_presence() -> None:
    assert matches(policy(rules=one_match(principals=[{"Prefix": "td/ns/namespace/"}])), TLS)
    assert matches(policy(rules=one_match(principals=[{"Presence": []}])), TLS)
    assert not matches(policy(rules=one_match(principals=[{"Presence": []}])), PLAINTEXT)
    assert matches(policy(rules=one_match(notPrincipals=[{"Presence": []}])), PLAINTEXT)


def test_service_accounts_ignore_trust_domain() -> None:
    other_td = Connection("127.0.0.1", 1234, "127.0.0.2", 8080, "spiffe://other.td/ns/namespace/sa/account")
    assert matches(policy(rules=one_match(serviceAccounts=[SA])), other_td)


def test_identity_must_be_spiffe() -> None:
    with pytest.raises(ValueError):
        Connection("127.0.0.1", 1, "127.0.0.2", 2, "cluster.local/ns/a/sa/b")
    with pytest.raises(ValueError):
        Connection("127.0.0.1", 1, "127.0.0.2", 2, "spiffe://cluster.local/ns/a")


# --- src/state.rs assert_rbac ------------------------------------------------------------------

def test_assert_rbac_logic_deny_allow() -> None:
    policies = [
        policy("wildcard-allow", [[]], "Allow", "Namespace", "ns1", dry_run=True),
        policy("wildcard-deny", [[]], "Deny", "Namespace", "ns1", dry_run=True),
        policy("foo", one_match(principals=[principal("defaultacct")]), "Allow", "Namespace", "ns1"),
        policy("deny", one_match(principals=[principal("denyacct")]), "Deny", "Namespace", "ns1"),
    ]
    # A namespace without policies allows.
    assert evaluate(policies, workload("ns2"), tls_from("not-defaultacct")).allowed
    assert evaluate(policies, workload("ns1"), tls_from("defaultacct")) == Decision(
        True, None, "ns1/foo", ["ns1/wildcard-deny", "ns1/wildcard-allow"], [
            AuthzLog("debug", "dry-run: deny policy match", "ns1/wildcard-deny"),
            AuthzLog("debug", "dry-run: allow policy match", "ns1/wildcard-allow"),
            AuthzLog("debug", "allow policy match", "ns1/foo"),
        ])
    denied = evaluate(policies, workload("ns1"), tls_from("not-defaultacct"))
    assert (denied.allowed, denied.reason, denied.policy) == (False, NOT_ALLOWED, None)
    assert denied.error == "connection closed due to policy rejection: allow policies exist, but none allowed"
    assert denied.log[-1] == AuthzLog("debug", "no allow policies matched")
    explicit = evaluate(policies, workload("ns1"), tls_from("denyacct"))
    assert (explicit.allowed, explicit.reason, explicit.policy) == (False, "explicitly denied by: ns1/deny", "ns1/deny")
    assert explicit.error == "connection closed due to policy rejection: explicitly denied by: ns1/deny"


def test_assert_rbac_dry_run_with_real_policies() -> None:
    policies = [
        policy("real-deny", one_match(principals=[principal("denyacct")]), "Deny", "Namespace", "ns1"),
        policy("dry-run-deny", [[[{"principals": [principal("defaultacct")]}]],
                                [[{"principals": [principal("denyacct")]}]]], "Deny", "Namespace", "ns1", True),
        policy("real-allow", one_match(principals=[principal("defaultacct")]), "Allow", "Namespace", "ns1"),
        policy("dry-run-allow", one_match(principals=[principal("defaultacct")]), "Allow", "Namespace", "ns1", True),
    ]
    decision = evaluate(policies, workload("ns1"), tls_from("defaultacct"))
    assert decision.allowed and decision.policy == "ns1/real-allow"
    assert decision.dry_run == ["ns1/dry-run-deny", "ns1/dry-run-allow"]
    assert AuthzLog("debug", "dry-run: deny policy match", "ns1/dry-run-deny") in decision.log


def test_dry_run_only_policies_allow_and_report() -> None:
    deny_all = policy("deny-all", [[]], "Deny", "Namespace", "ns1", dry_run=True)
    allow_other = policy("allow-other", one_match(principals=[principal("other")]), "Allow", "Namespace", "ns1",
                         dry_run=True)
    decision = evaluate([deny_all, allow_other], workload("ns1"), tls_from("sleep"))
    assert decision.allowed and decision.reason is None and decision.policy is None
    assert decision.dry_run == ["ns1/deny-all"]
    assert [entry.message for entry in decision.log] == [
        "dry-run: deny policy match", "dry-run: no allow policies match", "no allow policies, allow"]


# --- precedence (AuthorizationPolicy semantics, table 2.1) ---------------------------------------

def test_deny_wins_over_allow() -> None:
    policies = [policy("allow-all", [[]], "Allow", "Namespace", "ns1"),
                policy("deny-sleep", one_match(principals=[principal("sleep")]), "Deny", "Namespace", "ns1")]
    decision = evaluate(policies, workload("ns1"), tls_from("sleep"))
    assert (decision.allowed, decision.reason) == (False, "explicitly denied by: ns1/deny-sleep")
    assert evaluate(policies, workload("ns1"), tls_from("other")).allowed


def test_no_policies_allow() -> None:
    assert evaluate([], workload(), PLAINTEXT) == Decision(True, None, None, [], [
        AuthzLog("debug", "no allow policies, allow")])


def test_only_deny_policies_allow_what_they_do_not_match() -> None:
    deny = policy("deny-8080", one_match(destinationPorts=[8080]), "Deny", "Namespace", "ns1")
    assert evaluate([deny], workload("ns1"), tls_from("sleep", port=9090)).allowed
    assert not evaluate([deny], workload("ns1"), tls_from("sleep", port=8080)).allowed


def test_allow_without_rules_denies_everything() -> None:
    """`spec: {}`: an ALLOW that never matches, so nothing is allowed."""
    decision = evaluate([policy("allow-nothing", [], "Allow", "Namespace", "ns1")], workload("ns1"), tls_from("sleep"))
    assert (decision.allowed, decision.reason) == (False, NOT_ALLOWED)


def test_allow_with_an_empty_rule_allows_everything() -> None:
    """`rules: [{}]`, which istiod sends as one rule without clauses."""
    decision = evaluate([policy("allow-all", [[]], "Allow", "Namespace", "ns1")], workload("ns1"), PLAINTEXT)
    assert (decision.allowed, decision.policy) == (True, "ns1/allow-all")


def test_plaintext_never_matches_identity_fields() -> None:
    """An out-of-mesh client has no identity: principals/namespaces ALLOWs reject it, a namespaces
    DENY does not block it, notPrincipals Presence (PeerAuthentication STRICT) does."""
    allow = policy("allow-sleep", [[[{"principals": [principal("sleep")]}, {"namespaces": [{"Exact": "default"}]}]]],
                   "Allow", "Namespace", "ns1")
    assert not evaluate([allow], workload("ns1"), PLAINTEXT).allowed
    ip_allow = policy("allow-ip", one_match(sourceIps=["127.0.0.1/32"]), "Allow", "Namespace", "ns1")
    assert evaluate([allow, ip_allow], workload("ns1"), PLAINTEXT).allowed
    deny_ns = policy("deny-default", one_match(namespaces=[{"Exact": "default"}]), "Deny", "Namespace", "ns1")
    assert evaluate([deny_ns], workload("ns1"), PLAINTEXT).allowed
    strict = policy("strict", one_match(notPrincipals=[{"Presence": []}]), "Deny", "Namespace", "ns1")
    assert not evaluate([strict], workload("ns1"), PLAINTEXT).allowed
    assert evaluate([strict], workload("ns1"), TLS).allowed


def test_deny_left_with_an_empty_match_never_fires() -> None:
    """A DENY whose only rule had HTTP attributes (istio/istio#61126): istiod keeps an empty match."""
    deny = policy("deny-get", [[[{}]]], "Deny", "Namespace", "ns1")
    assert evaluate([deny], workload("ns1"), tls_from("sleep")).allowed


# --- scope --------------------------------------------------------------------------------------

def test_scope_selection() -> None:
    policies = [
        policy("ns1-wide", [[]], "Deny", "Namespace", "ns1"),
        policy("ns2-wide", [[]], "Deny", "Namespace", "ns2"),
        policy("mesh-wide", [[]], "Deny", "Global", "istio-system"),
        policy("selected", [[]], "Deny", "WorkloadSelector", "ns1"),
        policy("not-selected", [[]], "Deny", "WorkloadSelector", "ns1"),
        policy("other-ns-selector", [[]], "Deny", "WorkloadSelector", "ns2"),
        policy("istio_converted_static_strict", [[]], "Deny", "WorkloadSelector", "istio-system"),
    ]
    found, log = applicable(policies, workload("ns1", ["ns1/selected", "istio-system/istio_converted_static_strict"]))
    assert [f"{p['namespace']}/{p['name']}" for p in found] == [
        "ns1/ns1-wide", "istio-system/mesh-wide", "ns1/selected", "istio-system/istio_converted_static_strict"]
    assert log == []


def test_selector_policy_of_another_namespace_does_not_apply() -> None:
    """Same labels in two namespaces: a selector DENY of ns-a is not listed by the ns-b workload."""
    deny = policy("deny-all", [[]], "Deny", "WorkloadSelector", "ns-a")
    assert not evaluate([deny], workload("ns-a", ["ns-a/deny-all"]), TLS).allowed
    assert evaluate([deny], workload("ns-b"), TLS).allowed


def test_namespace_policy_applies_only_to_its_namespace() -> None:
    allow = policy("allow-sleep", one_match(principals=[principal("sleep")]), "Allow", "Namespace", "ns-a")
    assert not evaluate([allow], workload("ns-a"), tls_from("other")).allowed
    assert evaluate([allow], workload("ns-b"), tls_from("other")).allowed


def test_global_policy_applies_everywhere() -> None:
    deny = policy("deny-9999", one_match(destinationPorts=[9999]), "Deny", "Global", "istio-system")
    for namespace in ("ns-a", "ns-b", "istio-system"):
        decision = evaluate([deny], workload(namespace), tls_from("sleep", port=9999))
        assert (decision.allowed, decision.policy) == (False, "istio-system/deny-9999")


def test_unknown_listed_policy_is_skipped() -> None:
    decision = evaluate([], workload("ns1", ["ns1/gone"]), TLS)
    assert decision.allowed
    assert decision.log[0] == AuthzLog("warn", "skipping unknown policy ns1/gone")


def test_unknown_scope_attaches_only_when_listed() -> None:
    odd = policy("odd", [[]], "Deny", "Cluster", "ns1")
    assert evaluate([odd], workload("ns1"), TLS).allowed
    assert not evaluate([odd], workload("ns1", ["ns1/odd"]), TLS).allowed


# --- agreement with istiod's translation and the evaluator of its tests -------------------------

POLICIES = [
    k8s.authz("allow-sleep", "default", {"rules": [{"from": [{"source": {"principals": [
        "cluster.local/ns/default/sa/sleep"]}}]}]}),
    k8s.authz("allow-ns", "default", {"rules": [{"from": [{"source": {"namespaces": ["other*"]}}],
                                                 "to": [{"operation": {"ports": ["8080"]}}]}]}),
    k8s.authz("deny-ip", "default", {"action": "DENY", "rules": [{"from": [{"source": {
        "ipBlocks": ["10.244.2.0/24"], "notPrincipals": ["*"]}}]}]}),
    k8s.authz("deny-get", "default", {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}),
    k8s.authz("allow-when", "default", {"rules": [{"when": [{"key": "source.namespace", "values": ["ops"]},
                                                            {"key": "destination.port", "notValues": ["9090"]}]}]}),
    k8s.authz("allow-sa", "default", {"rules": [{"from": [{"source": {"serviceAccounts": ["ops/admin", "sleep"],
                                                                      "notIpBlocks": ["10.244.3.9"]}}]}]}),
]
IDENTITIES = [None, "spiffe://cluster.local/ns/default/sa/sleep", "spiffe://cluster.local/ns/other-1/sa/x",
              "spiffe://cluster.local/ns/ops/sa/admin"]


@pytest.mark.parametrize("subset", [p for n in (1, 2, 3) for p in itertools.combinations(range(len(POLICIES)), n)])
def test_agrees_with_istiod_test_evaluator(subset: tuple[int, ...]) -> None:
    converted = [authorization.convert(POLICIES[i], "istio-system") for i in subset]
    policies = [c.authorization for c in converted if c is not None and c.authorization is not None]
    for identity, src, port in itertools.product(IDENTITIES, ("10.244.1.9", "10.244.2.7", "10.244.3.9"),
                                                 (8080, 9090)):
        ours = evaluate(policies, workload("default"), Connection(src, 40000, "10.244.1.5", port, identity))
        theirs = k8s.allowed(policies, k8s.Conn(src=src, dst_port=port, identity=identity))
        assert ours.allowed is theirs, (subset, identity, src, port)
