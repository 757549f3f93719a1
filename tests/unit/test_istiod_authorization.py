"""AuthorizationPolicy to ztunnel Authorization: istiod's conversion rules, the L7 handling of
ALLOW and DENY (istio/istio#61126), scopes, unsupported actions, and the ZtunnelAccepted status.

The golden cases are istiod's own (pilot/pkg/serviceregistry/ambient/testdata/{allow-full,
allow-groups,deny-groups}*.yaml), transcribed into ztunnel's local-config shape.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.istiod.translate import authorization
from components.istiod.translate.authorization import (
    HTTP_ALLOW, HTTP_DENY_MIXED, HTTP_DENY_NO_EFFECT, HTTP_RULE_MESSAGE, convert,
)
from components.istiod.translate.rbac import string_matches
from tests.unit.istiod_objects import PRESENCE, Conn, allowed, authz

ROOT = "istio-system"
PLAINTEXT = Conn(identity=None)
SLEEP = Conn(identity="spiffe://cluster.local/ns/default/sa/sleep")
OTHER = Conn(identity="spiffe://cluster.local/ns/other/sa/client")


def converted(spec: dict[str, Any], ns: str = "default", **metadata: Any) -> authorization.Converted:
    result = convert(authz("p", ns, spec, **metadata), ROOT)
    assert result is not None
    return result


def rules_of(spec: dict[str, Any], ns: str = "default") -> list[Any]:
    pol = converted(spec, ns).authorization
    assert pol is not None
    return pol["rules"]


def http_message(found: str, consequence: str) -> str:
    return HTTP_RULE_MESSAGE.format(found=found, consequence=consequence)


@pytest.mark.parametrize("value, expected", [
    ("*", PRESENCE),
    ("*-suffix", {"Suffix": "-suffix"}),
    ("prefix-*", {"Prefix": "prefix-"}),
    ("exact", {"Exact": "exact"}),
    ("cluster.local/ns/default/sa/sleep", {"Exact": "cluster.local/ns/default/sa/sleep"}),
])
def test_string_match(value, expected):
    assert string_matches([value]) == [expected]


def test_golden_allow_full():
    spec = yaml.safe_load(ALLOW_FULL)
    pol = converted(spec, "cfg").authorization
    assert pol == {"name": "p", "namespace": "cfg", "scope": "Namespace", "action": "Allow", "dryRun": False,
                   "rules": ALLOW_FULL_RULES}


def test_golden_allow_groups():
    c = converted(yaml.safe_load(GROUPS.format(action="ALLOW")))
    assert c.authorization is not None and c.authorization["rules"] == [
        [[{"destinationPorts": [80]}], [{"namespaces": [{"Exact": "only-l4-ns"}],
                                         "principals": [{"Exact": "only-l4-principals"}]}]],
        [[{"namespaces": [{"Exact": "when-l4-ns"}]}], [{"sourceIps": ["10.10.10.10/32"]}]],
    ]
    assert c.condition["message"] == http_message(
        "connection.sni, methods, paths, request.headers[X-header], requestPrincipals", HTTP_ALLOW)


def test_golden_deny_groups():
    c = converted(yaml.safe_load(GROUPS.format(action="DENY")))
    ports_80 = [{"destinationPorts": [80]}]
    assert c.authorization is not None and c.authorization["rules"] == [
        [ports_80, [{"namespaces": [{"Exact": "from-mix-ns"}], "principals": [{"Exact": "from-mix-principal"}]}]],
        [ports_80, [{"namespaces": [{"Exact": "to-mix-ns"}], "principals": [{"Exact": "to-mix-principal"}]}]],
        [ports_80, [{"namespaces": [{"Exact": "only-l4-ns"}], "principals": [{"Exact": "only-l4-principals"}]}]],
        [[{}], [{}]],
        [[{"namespaces": [{"Exact": "when-l4-l7-ns"}]}], [{}]],
        [[{"namespaces": [{"Exact": "when-l4-ns"}]}], [{"sourceIps": ["10.10.10.10/32"]}]],
        [[{}], [{}]],
    ]
    assert c.condition["message"] == http_message(
        "connection.sni, methods, paths, request.headers[X-header], requestPrincipals", HTTP_DENY_MIXED)


def source(action: str = "ALLOW", **fields: Any) -> dict[str, Any]:
    """A policy with one rule of one `from.source`."""
    return {"action": action, "rules": [{"from": [{"source": fields}]}]}


# Reference table 2.1 (evaluation order and defaults), as far as ztunnel enforces it.
@pytest.mark.parametrize("case, policies, conn, expected", [
    ("spec {} allows nothing", [{}], SLEEP, False),
    ("rules [{}] allows everything", [{"rules": [{}]}], PLAINTEXT, True),
    ("DENY without rules never matches", [{"action": "DENY"}], SLEEP, True),
    ("no ALLOW policy allows", [source("DENY", namespaces=["other"])], SLEEP, True),
    ("DENY beats ALLOW", [{"rules": [{}]}, source("DENY", namespaces=["default"])], SLEEP, False),
    ("any ALLOW matching allows", [source(namespaces=["nope"]), source(namespaces=["default"])], SLEEP, True),
    ("ALLOW exists, none matches", [source(namespaces=["nope"])], SLEEP, False),
    ("from AND to", [{"rules": [{"from": [{"source": {"namespaces": ["default"]}}],
                                 "to": [{"operation": {"ports": ["9090"]}}]}]}], SLEEP, False),
    ("from entries ORed", [{"rules": [{"from": [{"source": {"namespaces": ["nope"]}},
                                                {"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}}]}]}],
     SLEEP, True),
    ("source fields ANDed", [source(namespaces=["default"], ipBlocks=["192.168.0.0/16"])], SLEEP, False),
    ("list values ORed", [source(namespaces=["nope", "default"])], SLEEP, True),
    ("principal prefix, spiffe:// stripped", [source(principals=["cluster.local/ns/default/*"])], SLEEP, True),
    ("plaintext never matches principals", [source(principals=["*"])], PLAINTEXT, False),
    ("plaintext matches notPrincipals", [source("DENY", notPrincipals=["*"])], PLAINTEXT, False),
    ("identity passes notPrincipals DENY", [source("DENY", notPrincipals=["*"])], SLEEP, True),
    ("plaintext namespace is empty", [source(namespaces=["*"])], PLAINTEXT, False),
    ("plaintext allowed by ipBlocks (#1901)", [source(ipBlocks=["10.244.1.0/24"])], PLAINTEXT, True),
    ("serviceAccounts", [source(serviceAccounts=["sleep"])], SLEEP, True),
    ("serviceAccounts of another namespace", [source(serviceAccounts=["sleep"])], OTHER, False),
    ("CUSTOM is not sent", [{"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]},
                            source(namespaces=["default"])], SLEEP, True),
    ("dry-run ALLOW only logs", [{**source(namespaces=["nope"]), "_dry_run": True}], SLEEP, True),
])
def test_policy_semantics(case, policies, conn, expected):
    sent = []
    for i, spec in enumerate(policies):
        spec = dict(spec)
        annotations = {"istio.io/dry-run": "true"} if spec.pop("_dry_run", False) else {}
        c = convert(authz(f"p{i}", "default", spec, annotations=annotations), ROOT)
        if c is not None and c.authorization is not None:
            sent.append(c.authorization)
    assert allowed(sent, conn) is expected, case


# Reference table 2.2 (field support at ztunnel): what each field becomes.
@pytest.mark.parametrize("source_or_operation, expected_match, http", [
    ({"source": {"principals": ["cluster.local/ns/a/sa/b"]}},
     {"principals": [{"Exact": "cluster.local/ns/a/sa/b"}]}, ""),
    ({"source": {"notPrincipals": ["*"]}}, {"notPrincipals": [PRESENCE]}, ""),
    ({"source": {"namespaces": ["a*"]}}, {"namespaces": [{"Prefix": "a"}]}, ""),
    ({"source": {"notNamespaces": ["*-x"]}}, {"notNamespaces": [{"Suffix": "-x"}]}, ""),
    ({"source": {"serviceAccounts": ["other/client", "sleep"]}},
     {"serviceAccounts": [{"namespace": "other", "serviceAccount": "client"},
                          {"namespace": "default", "serviceAccount": "sleep"}]}, ""),
    ({"source": {"notServiceAccounts": ["sleep"]}},
     {"notServiceAccounts": [{"namespace": "default", "serviceAccount": "sleep"}]}, ""),
    ({"source": {"ipBlocks": ["10.0.0.1", "10.1.0.0/16", "bogus", "fd00::/8"]}},
     {"sourceIps": ["10.0.0.1/32", "10.1.0.0/16", "fd00::/8"]}, ""),
    ({"source": {"notIpBlocks": ["10.0.0.5/24"]}}, {"notSourceIps": ["10.0.0.5/24"]}, ""),
    ({"source": {"trustDomains": ["td"]}}, {}, ""),
    ({"source": {"remoteIpBlocks": ["1.2.3.4"]}}, {}, "remoteIpBlocks"),
    ({"source": {"notRemoteIpBlocks": ["1.2.3.4"]}}, {}, "notRemoteIpBlocks"),
    ({"source": {"requestPrincipals": ["*"]}}, {}, "requestPrincipals"),
    ({"source": {"notRequestPrincipals": ["*"]}}, {}, "notRequestPrincipals"),
    ({"operation": {"ports": ["8080", "http", "70000"]}}, {"destinationPorts": [8080]}, ""),
    ({"operation": {"notPorts": ["9090"]}}, {"notDestinationPorts": [9090]}, ""),
    ({"operation": {"hosts": ["a.com"]}}, {}, "hosts"),
    ({"operation": {"notHosts": ["a.com"]}}, {}, "notHosts"),
    ({"operation": {"methods": ["GET"]}}, {}, "methods"),
    ({"operation": {"notMethods": ["GET"]}}, {}, "notMethods"),
    ({"operation": {"paths": ["/x"]}}, {}, "paths"),
    ({"operation": {"notPaths": ["/x"]}}, {}, "notPaths"),
])
def test_field_support(source_or_operation, expected_match, http):
    rule = ({"from": [source_or_operation]} if "source" in source_or_operation
            else {"to": [source_or_operation]})
    deny = converted({"action": "DENY", "rules": [rule]})
    assert deny.authorization is not None and deny.authorization["rules"] == [[[expected_match]]]
    allow = converted({"rules": [rule]})
    assert allow.authorization is not None
    assert allow.authorization["rules"] == ([] if http else [[[expected_match]]])
    if http:
        assert allow.condition["message"] == http_message(http, HTTP_ALLOW)
    else:
        assert allow.condition["reason"] == "Accepted"


@pytest.mark.parametrize("key, values, not_values, expected, http", [
    ("source.ip", ["10.0.0.1"], ["10.9.0.0/16"],
     {"sourceIps": ["10.0.0.1/32"], "notSourceIps": ["10.9.0.0/16"]}, False),
    ("source.namespace", ["default"], [], {"namespaces": [{"Exact": "default"}]}, False),
    ("source.principal", [], ["*"], {"notPrincipals": [PRESENCE]}, False),
    ("destination.ip", ["10.244.1.5"], [], {"destinationIps": ["10.244.1.5/32"]}, False),
    ("destination.port", ["8080"], ["9090"], {"destinationPorts": [8080], "notDestinationPorts": [9090]}, False),
    ("request.headers[x-token]", ["abc"], [], {}, True),
    ("remote.ip", ["1.2.3.4"], [], {}, True),
    ("connection.sni", ["a.com"], [], {}, True),
])
def test_when_conditions(key, values, not_values, expected, http):
    when = {"key": key, "values": values, "notValues": not_values}
    assert rules_of({"action": "DENY", "rules": [{"when": [when]}]}) == [[[expected]]]
    assert rules_of({"rules": [{"when": [when]}]}) == ([] if http else [[[expected]]])


def test_each_when_condition_is_its_own_clause():
    rules = rules_of({"rules": [{"to": [{"operation": {"ports": ["80"]}}, {"operation": {"ports": ["81"]}}],
                                 "from": [{"source": {"namespaces": ["a"]}}],
                                 "when": [{"key": "source.ip", "values": ["10.0.0.0/8"]},
                                          {"key": "destination.port", "values": ["80"]}]}]})
    assert rules == [[
        [{"destinationPorts": [80]}, {"destinationPorts": [81]}],
        [{"namespaces": [{"Exact": "a"}]}],
        [{"sourceIps": ["10.0.0.0/8"]}],
        [{"destinationPorts": [80]}],
    ]]


# L7 attributes in ALLOW and DENY policies (reference 1.C issues 12 and 13).
@pytest.mark.parametrize("case, spec, sleep_8080, sleep_9090, message", [
    ("ALLOW with L7: the rule is dropped, everything denied",
     {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}}],
                 "to": [{"operation": {"methods": ["GET"]}}]}]},
     False, False, http_message("methods", HTTP_ALLOW)),
    ("ALLOW keeps its L4-only rules",
     {"rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/x"]}}]},
                {"to": [{"operation": {"ports": ["9090"]}}]}]},
     False, True, http_message("methods, paths", HTTP_ALLOW)),
    ("DENY L7-only source is a no-op (#61126)",
     {"action": "DENY", "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]},
     True, True, http_message("notRequestPrincipals", HTTP_DENY_NO_EFFECT)),
    ("DENY methods-only is a no-op",
     {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]},
     True, True, http_message("methods", HTTP_DENY_NO_EFFECT)),
    ("DENY principals + methods in another entry never fires",
     {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}}],
                                   "to": [{"operation": {"methods": ["POST"]}}]}]},
     True, True, http_message("methods", HTTP_DENY_NO_EFFECT)),
    ("DENY ports + methods denies the whole port",
     {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["8080"], "methods": ["POST"]}}]}]},
     False, True, http_message("methods", HTTP_DENY_MIXED)),
])
def test_http_attributes(case, spec, sleep_8080, sleep_9090, message):
    c = converted(spec)
    assert c.authorization is not None
    assert allowed([c.authorization], Conn(dst_port=8080)) is sleep_8080, case
    assert allowed([c.authorization], Conn(dst_port=9090)) is sleep_9090, case
    assert c.condition == {"type": "ZtunnelAccepted", "status": "True", "reason": "UnsupportedValue",
                           "message": message, "observedGeneration": 0}


def test_mixed_deny_keeps_the_port_clause():
    assert rules_of({"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["8080"], "methods": ["POST"]}}]}]}) \
        == [[[{"destinationPorts": [8080]}]]]


def test_status_texts_are_istiods():
    assert http_message("methods, paths", HTTP_ALLOW) == (
        "ztunnel does not support HTTP attributes (found: methods, paths). In ambient mode you must use a "
        "waypoint proxy to enforce HTTP rules. Within an ALLOW policy, rules matching HTTP attributes are "
        "omitted. This will be more restrictive than requested.")
    assert http_message("methods", HTTP_DENY_MIXED).endswith(
        "DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive "
        "than requested.")


@pytest.mark.parametrize("action", ["CUSTOM", "AUDIT"])
def test_unsupported_actions_are_not_sent(action):
    c = converted({"action": action, "provider": {"name": "ext-authz"}, "rules": [{}]})
    assert c.authorization is None
    assert c.condition == {"type": "ZtunnelAccepted", "status": "False", "reason": "UnsupportedValue",
                           "message": f"ztunnel does not support the {action} action", "observedGeneration": 0}


@pytest.mark.parametrize("target", [
    {"targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"}},
    {"targetRefs": [{"kind": "Service", "group": "", "name": "productpage"}]},
])
def test_target_refs_are_for_waypoints_only(target):
    assert convert(authz("p", "default", {**target, "rules": [{}]}), ROOT) is None


@pytest.mark.parametrize("ns, spec, scope", [
    ("default", {"selector": {"matchLabels": {"app": "a"}}}, "WorkloadSelector"),
    ("default", {}, "Namespace"),
    (ROOT, {}, "Global"),
    (ROOT, {"selector": {"matchLabels": {"app": "a"}}}, "WorkloadSelector"),
])
def test_scope(ns, spec, scope):
    pol = converted({**spec, "rules": [{}]}, ns).authorization
    assert pol is not None and pol["scope"] == scope


@pytest.mark.parametrize("annotation, enabled, dry_run, sent", [
    ("true", True, True, True),
    ("True", True, True, True),
    ("false", True, False, True),
    ("yes", True, False, True),
    (None, True, False, True),
    ("true", False, None, False),
])
def test_dry_run(annotation, enabled, dry_run, sent):
    annotations = {"istio.io/dry-run": annotation} if annotation is not None else {}
    c = convert(authz("p", "default", {"rules": [{}]}, annotations=annotations, generation=3), ROOT, enabled)
    assert c is not None
    assert (c.authorization is not None) is sent
    if sent:
        assert c.authorization is not None and c.authorization["dryRun"] is dry_run
    else:
        assert c.condition == {
            "type": "ZtunnelAccepted", "status": "False", "reason": "UnsupportedValue", "observedGeneration": 3,
            "message": 'found policy "default/p" using dry-run annotation, but support for ambient '
                       "dry-run authorizationPolicies isn't enabled"}


def test_accepted_condition():
    c = converted({"rules": [{}]}, generation=7)
    assert c.condition == {"type": "ZtunnelAccepted", "status": "True", "reason": "Accepted",
                           "message": "attached to ztunnel", "observedGeneration": 7}


def test_selector_labels_decide_attachment():
    assert converted({"selector": {"matchLabels": {"app": "a"}}}).match_labels == {"app": "a"}
    assert converted({}).match_labels is None
    assert converted({"selector": {}}).match_labels is None


ALLOW_FULL = """
action: ALLOW
rules:
- from: [{source: {principals: ["principal", "principal-prefix-*", "*-suffix-principal", "*"],
                   notPrincipals: ["not-principal", "not-principal-prefix-*", "*-suffix-not-principal", "*"]}}]
- from: [{source: {serviceAccounts: ["ns/sa", "sa-only"], notServiceAccounts: ["ns/sa-not", "sa-not-only"]}}]
- from: [{source: {requestPrincipals: ["requestPrincipals", "*"],
                   notRequestPrincipals: ["not-requestPrincipals", "*"]}}]
- from: [{source: {namespaces: ["ns", "ns-prefix-*", "*-ns-suffix", "*"],
                   notNamespaces: ["not-ns", "not-ns-prefix-*", "*-not-ns-suffix", "*"]}}]
- from: [{source: {ipBlocks: ["1.2.3.4", "5.6.0.0/16"], notIpBlocks: ["2.2.3.4", "6.6.0.0/16"]}}]
- from: [{source: {remoteIpBlocks: ["1.2.3.4", "5.6.0.0/16"], notRemoteIpBlocks: ["2.2.3.4", "6.6.0.0/16"]}}]
- to: [{operation: {methods: ["method", "*"], notMethods: ["not-method", "*"]}}]
- to: [{operation: {hosts: ["exact.com", "*"], notHosts: ["not-exact.com", "*"]}}]
- to: [{operation: {ports: ["80", "90"], notPorts: ["800", "900"]}}]
- to: [{operation: {paths: ["/exact", "*"], notPaths: ["/not-exact", "*"]}}]
- when: [{key: "request.headers[X-header]", values: ["header"], notValues: ["not-header"]}]
- when: [{key: "source.ip", values: ["10.10.10.10", "192.168.10.0/24"],
          notValues: ["90.10.10.10", "90.168.10.0/24"]}]
- when: [{key: "remote.ip", values: ["10.10.10.10"], notValues: ["90.10.10.10"]}]
- when: [{key: "source.namespace", values: ["ns", "ns-prefix-*", "*-ns-suffix", "*"],
          notValues: ["not-ns", "not-ns-prefix-*", "*-not-ns-suffix", "*"]}]
- when: [{key: "source.principal", values: ["principal", "principal-prefix-*", "*-suffix-principal", "*"],
          notValues: ["not-principal", "not-principal-prefix-*", "*-not-suffix-principal", "*"]}]
- when: [{key: "request.auth.principal", values: ["requestPrincipals"]}]
- when: [{key: "request.auth.audiences", values: ["audiences"]}]
- when: [{key: "request.auth.presenter", values: ["presenter"]}]
- when: [{key: "request.auth.claims[iss]", values: ["iss"]}]
- when: [{key: "request.auth.claims[nested1][nested2]", values: ["nested"]}]
- when: [{key: "destination.ip", values: ["10.10.10.10", "192.168.10.0/24"],
          notValues: ["90.10.10.10", "90.168.10.0/24"]}]
- when: [{key: "destination.port", values: ["91", "92"], notValues: ["9001", "9002"]}]
- when: [{key: "connection.sni", values: ["exact.com"]}]
- when: [{key: "experimental.envoy.filters.a.b[c]", values: ["exact"]}]
"""


def _sm(exact: str, prefix: str, suffix: str) -> list[dict[str, Any]]:
    return [{"Exact": exact}, {"Prefix": prefix}, {"Suffix": suffix}, PRESENCE]


ALLOW_FULL_RULES = [
    [[{"principals": _sm("principal", "principal-prefix-", "-suffix-principal"),
       "notPrincipals": _sm("not-principal", "not-principal-prefix-", "-suffix-not-principal")}]],
    [[{"serviceAccounts": [{"namespace": "ns", "serviceAccount": "sa"},
                           {"namespace": "cfg", "serviceAccount": "sa-only"}],
       "notServiceAccounts": [{"namespace": "ns", "serviceAccount": "sa-not"},
                              {"namespace": "cfg", "serviceAccount": "sa-not-only"}]}]],
    [[{"namespaces": _sm("ns", "ns-prefix-", "-ns-suffix"),
       "notNamespaces": _sm("not-ns", "not-ns-prefix-", "-not-ns-suffix")}]],
    [[{"sourceIps": ["1.2.3.4/32", "5.6.0.0/16"], "notSourceIps": ["2.2.3.4/32", "6.6.0.0/16"]}]],
    [[{"destinationPorts": [80, 90], "notDestinationPorts": [800, 900]}]],
    [[{"sourceIps": ["10.10.10.10/32", "192.168.10.0/24"], "notSourceIps": ["90.10.10.10/32", "90.168.10.0/24"]}]],
    [[{"namespaces": _sm("ns", "ns-prefix-", "-ns-suffix"),
       "notNamespaces": _sm("not-ns", "not-ns-prefix-", "-not-ns-suffix")}]],
    [[{"principals": _sm("principal", "principal-prefix-", "-suffix-principal"),
       "notPrincipals": _sm("not-principal", "not-principal-prefix-", "-not-suffix-principal")}]],
    [[{"destinationIps": ["10.10.10.10/32", "192.168.10.0/24"],
       "notDestinationIps": ["90.10.10.10/32", "90.168.10.0/24"]}]],
    [[{"destinationPorts": [91, 92], "notDestinationPorts": [9001, 9002]}]],
]

GROUPS = """
action: {action}
rules:
- from: [{{source: {{principals: ["from-mix-principal"], requestPrincipals: ["from-mix-requestPrincipals"],
                     namespaces: ["from-mix-ns"]}}}}]
  to: [{{operation: {{ports: ["80"]}}}}]
- from: [{{source: {{principals: ["to-mix-principal"], namespaces: ["to-mix-ns"]}}}}]
  to: [{{operation: {{ports: ["80"], methods: ["to-mix-method"]}}}}]
- from: [{{source: {{principals: ["only-l4-principals"], namespaces: ["only-l4-ns"]}}}}]
  to: [{{operation: {{ports: ["80"]}}}}]
- from: [{{source: {{requestPrincipals: ["l7-principal"]}}}}]
  to: [{{operation: {{paths: ["/l7-foo"], methods: ["l7-method"]}}}}]
- when: [{{key: "source.namespace", values: ["when-l4-l7-ns"]}}, {{key: "connection.sni", values: ["when-l4-l7-sni"]}}]
- when: [{{key: "source.namespace", values: ["when-l4-ns"]}}, {{key: "source.ip", values: ["10.10.10.10"]}}]
- when: [{{key: "connection.sni", values: ["when-l7-sni"]}},
         {{key: "request.headers[X-header]", values: ["when-l7-header"]}}]
"""
