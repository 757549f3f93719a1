"""The waypoint's L7 authorization: precedence, rule structure, every Source/Operation field and
`when` key, istiod's validation, path normalization and templates, and the Envoy details strings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from components.waypoint.authz import (
    Decision, Policy, PolicyError, RequestAttributes, custom_action_errors, evaluate, normalize_path,
)

SLEEP = "cluster.local/ns/default/sa/sleep"


def request(**changes: Any) -> RequestAttributes:
    base = RequestAttributes(source_principal=SLEEP, source_ip="10.244.1.5", destination_ip="10.96.0.20",
                             destination_port=8000, method="GET", path="/get", host="httpbin:8000",
                             headers={"user-agent": "curl/8.5.0"})
    return dataclasses.replace(base, **changes)


def policy(*rules: Any, action: str = "ALLOW", name: str = "pol", namespace: str = "default",
           annotations: dict[str, str] | None = None, **spec: Any) -> Policy:
    body: dict[str, Any] = {"action": action, **spec}
    if rules:
        body["rules"] = list(rules)
    return Policy.from_spec(namespace, name, body, annotations or {})


def source(**fields: Any) -> dict[str, Any]:
    return {"from": [{"source": fields}]}


def operation(**fields: Any) -> dict[str, Any]:
    return {"to": [{"operation": fields}]}


def when(key: str, values: list[str] | None = None, not_values: list[str] | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"key": key}
    if values is not None:
        condition["values"] = values
    if not_values is not None:
        condition["notValues"] = not_values
    return {"when": [condition]}


def allows(rule: dict[str, Any], req: RequestAttributes, namespace: str = "default") -> bool:
    """Whether one ALLOW rule matches the request."""
    return evaluate([policy(rule, namespace=namespace)], req).allowed


# --- precedence ---------------------------------------------------------------------------------

def test_no_policies_allow():
    assert evaluate([], request()) == Decision(True, None, "", ())


def test_empty_spec_is_allow_nothing():
    decision = evaluate([Policy.from_spec("default", "deny-all", {})], request())
    assert decision == Decision(False, None, "rbac_access_denied_matched_policy[none]", ())


def test_empty_rule_always_matches():
    decision = evaluate([policy({})], request())
    assert decision == Decision(True, "default/pol", "", ())


def test_allow_policies_exist_but_none_match_denies_with_none():
    decision = evaluate([policy(operation(methods=["POST"]))], request())
    assert (decision.allowed, decision.policy, decision.details) == (
        False, None, "rbac_access_denied_matched_policy[none]")


def test_deny_match_wins_over_allow_and_names_rule():
    deny = policy({"to": [{"operation": {"methods": ["POST"]}}]}, operation(methods=["GET"]),
                  action="DENY", name="deny-get")
    decision = evaluate([policy({}), deny], request())
    assert decision == Decision(False, "default/deny-get",
                                "rbac_access_denied_matched_policy[ns[default]-policy[deny-get]-rule[1]]", ())


def test_deny_not_matching_falls_through_to_allow():
    deny = policy(operation(methods=["DELETE"]), action="DENY", name="deny-delete")
    assert evaluate([deny], request()).allowed
    assert evaluate([deny, policy(operation(methods=["POST"]))], request()).details == (
        "rbac_access_denied_matched_policy[none]")


def test_first_matching_policy_by_envoy_name_order():
    """Envoy keeps RBAC policies in a map ordered by name: rule[10] sorts before rule[2]."""
    rules = [{} if i in (2, 10) else operation(methods=["POST"]) for i in range(11)]
    decision = evaluate([policy(*rules, action="DENY", name="many"),
                         policy({}, action="DENY", name="zzz")], request())
    assert decision.details == "rbac_access_denied_matched_policy[ns[default]-policy[many]-rule[10]]"
    other = evaluate([policy({}, action="DENY", name="b", namespace="ns2"),
                      policy({}, action="DENY", name="a", namespace="ns2")], request())
    assert other.policy == "ns2/a"


def test_allow_match_reports_policy():
    decision = evaluate([policy(operation(methods=["POST"]), name="a"), policy({}, name="b")], request())
    assert decision == Decision(True, "default/b", "", ())


def test_audit_never_changes_decision():
    audit = policy({}, action="AUDIT")
    assert evaluate([audit], request()).allowed
    assert not evaluate([audit, policy(operation(methods=["POST"]))], request()).allowed


def test_rules_absent_never_match():
    allow_nothing = policy(action="ALLOW")
    assert not evaluate([allow_nothing], request()).allowed
    assert evaluate([allow_nothing, policy({}, name="other")], request()).allowed


def test_explicit_empty_rules_list_is_the_same_as_absent():
    empty = Policy.from_spec("default", "empty", {"rules": []})
    assert empty.rules == ()
    assert not evaluate([empty], request()).allowed


# --- dry run ------------------------------------------------------------------------------------

DRY = {"istio.io/dry-run": "true"}


def test_dry_run_deny_only_logged():
    deny = policy({}, action="DENY", name="deny-path-headers", annotations=DRY)
    decision = evaluate([deny], request())
    assert decision == Decision(True, None, "", (
        "shadow denied, matched policy ns[default]-policy[deny-path-headers]-rule[0]",))


def test_dry_run_deny_not_matching():
    deny = policy(operation(methods=["POST"]), action="DENY", annotations=DRY)
    assert evaluate([deny], request()).shadow == ("shadow allowed, matched policy none",)


def test_dry_run_allow_policies_do_not_count_as_allow_policies():
    allow = policy(operation(methods=["POST"]), annotations=DRY)
    decision = evaluate([allow], request())
    assert decision.allowed
    assert decision.shadow == ("shadow denied, matched policy none",)
    match = evaluate([policy({}, annotations=DRY)], request())
    assert match.shadow == ("shadow allowed, matched policy ns[default]-policy[pol]-rule[0]",)


def test_dry_run_with_enforced_policies_in_filter_order():
    dry_deny = policy({}, action="DENY", name="dry-deny", annotations=DRY)
    dry_allow = policy(operation(methods=["POST"]), name="dry-allow", annotations=DRY)
    enforced = policy({}, name="enforced")
    decision = evaluate([dry_allow, enforced, dry_deny], request())
    assert decision.allowed and decision.policy == "default/enforced"
    assert decision.shadow == ("shadow denied, matched policy ns[default]-policy[dry-deny]-rule[0]",
                               "shadow denied, matched policy none")


def test_enforced_deny_stops_before_allow_shadow():
    decision = evaluate([policy({}, action="DENY", name="deny"), policy({}, annotations=DRY)], request())
    assert not decision.allowed and decision.shadow == ()


@pytest.mark.parametrize("value,dry_run", [("true", True), ("True", True), ("1", True), ("t", True),
                                           ("false", False), ("yes", False), ("", False)])
def test_dry_run_annotation_parsed_as_go_parse_bool(value: str, dry_run: bool):
    assert policy({}, annotations={"istio.io/dry-run": value}).dry_run is dry_run


# --- CUSTOM -------------------------------------------------------------------------------------

def custom(*rules: Any, provider: str = "ext-authz", name: str = "ext", dry_run: bool = False) -> Policy:
    return policy(*rules, action="CUSTOM", name=name, provider={"name": provider},
                  annotations=DRY if dry_run else None)


def test_custom_without_provider_denies_what_it_matches():
    decision = evaluate([custom(operation(paths=["/admin*"]))], request(path="/admin/x"))
    assert decision == Decision(False, "default/ext", "rbac_access_denied_matched_policy["
                                "istio-ext-authz-ext-authz-ns[default]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action]", ())


def test_custom_not_matching_and_dry_run_custom_do_not_deny():
    assert evaluate([custom(operation(paths=["/admin*"]))], request()).allowed
    assert evaluate([custom({}, dry_run=True)], request()).allowed


def test_custom_runs_before_deny():
    decision = evaluate([policy({}, action="DENY", name="a-deny"), custom({})], request())
    assert decision.policy == "default/ext"


def test_custom_action_errors_name_each_provider():
    errors = custom_action_errors([custom({}, provider="b"), custom({}, provider="a", name="x"),
                                   custom({}, provider="a", name="y"), policy({})])
    assert errors == [
        'failed to process CUSTOM action for provider a, will generate deny configs: available providers are [] but found "a"',
        'failed to process CUSTOM action for provider b, will generate deny configs: available providers are [] but found "b"',
    ]
    assert custom_action_errors([policy({})]) == []


# --- rule structure -----------------------------------------------------------------------------

def test_from_to_when_are_anded():
    rule = {**source(principals=[SLEEP]), **operation(methods=["GET"]), **when("request.headers[x-a]", ["1"])}
    assert allows(rule, request(headers={"x-a": "1"}))
    assert not allows(rule, request(headers={"x-a": "2"}))
    assert not allows(rule, request(headers={"x-a": "1"}, method="POST"))
    assert not allows(rule, request(headers={"x-a": "1"}, source_principal=None))


def test_several_sources_or_operations_are_ored():
    rule = {"from": [{"source": {"namespaces": ["other"]}}, {"source": {"principals": [SLEEP]}}],
            "to": [{"operation": {"methods": ["POST"]}}, {"operation": {"paths": ["/get"]}}]}
    assert allows(rule, request())
    assert not allows(rule, request(path="/ip"))
    assert not allows(rule, request(source_principal="cluster.local/ns/x/sa/y"))


def test_fields_in_one_source_are_anded_values_ored():
    rule = source(namespaces=["default", "prod"], notPrincipals=[SLEEP])
    assert allows(rule, request(source_principal="cluster.local/ns/prod/sa/a"))
    assert not allows(rule, request())
    assert not allows(rule, request(source_principal="cluster.local/ns/dev/sa/a"))


def test_multiple_when_conditions_are_anded():
    rule = {"when": [{"key": "request.headers[a]", "values": ["1"]}, {"key": "request.headers[b]", "values": ["2"]}]}
    assert allows(rule, request(headers={"a": "1", "b": "2"}))
    assert not allows(rule, request(headers={"a": "1"}))


# --- source fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("value,principal,expected", [
    (SLEEP, SLEEP, True),
    ("spiffe://" + SLEEP, SLEEP, False),
    ("cluster.local/ns/default/*", SLEEP, True),
    ("*/sa/sleep", SLEEP, True),
    ("*/sa/other", SLEEP, False),
    ("*", SLEEP, True),
    ("*", None, False),
    (SLEEP, None, False),
])
def test_principals(value: str, principal: str | None, expected: bool):
    assert allows(source(principals=[value]), request(source_principal=principal)) is expected


def test_not_principals_match_a_request_without_identity():
    assert allows(source(notPrincipals=["*"]), request(source_principal=None))
    assert not allows(source(notPrincipals=["*"]), request())
    assert allows(source(notPrincipals=["cluster.local/ns/x/sa/y"]), request())


@pytest.mark.parametrize("value,expected", [
    ("default", True), ("def*", True), ("*ault", True), ("*", True), ("prod", False), ("defaul", False),
])
def test_namespaces(value: str, expected: bool):
    assert allows(source(namespaces=[value]), request()) is expected


def test_namespaces_need_an_identity():
    assert not allows(source(namespaces=["*"]), request(source_principal=None))
    assert allows(source(notNamespaces=["default"]), request(source_principal=None))
    assert not allows(source(notNamespaces=["default"]), request())


@pytest.mark.parametrize("value,policy_namespace,expected", [
    ("default/sleep", "other", True),
    ("sleep", "default", True),
    ("sleep", "other", False),
    ("default/sleep2", "default", False),
    ("default/slee", "default", False),
    ("other/sleep", "default", False),
])
def test_service_accounts(value: str, policy_namespace: str, expected: bool):
    assert allows(source(serviceAccounts=[value]), request(), namespace=policy_namespace) is expected


def test_service_accounts_need_an_identity_and_exclude():
    assert not allows(source(serviceAccounts=["default/sleep"]), request(source_principal=None))
    assert not allows(source(notServiceAccounts=["sleep"]), request())
    assert allows(source(notServiceAccounts=["sleep"]), request(source_principal=None))


@pytest.mark.parametrize("value,expected", [
    ("cluster.local", True), ("cluster.*", True), ("*.local", True), ("*", True),
    ("cluster", False), ("other.local", False), ("*.other", False),
])
def test_trust_domains(value: str, expected: bool):
    assert allows(source(trustDomains=[value]), request()) is expected


def test_not_trust_domains():
    assert not allows(source(notTrustDomains=["cluster.local"]), request())
    assert allows(source(notTrustDomains=["other"]), request())
    assert not allows(source(trustDomains=["*"]), request(source_principal=None))


@pytest.mark.parametrize("value,expected", [
    ("10.244.1.5", True), ("10.244.0.0/16", True), ("10.244.1.7/16", True),
    ("10.245.0.0/16", False), ("10.244.1.6", False), ("::1", False),
])
def test_ip_blocks_use_the_tunnel_source(value: str, expected: bool):
    assert allows(source(ipBlocks=[value]), request(remote_ip="192.0.2.1")) is expected


def test_not_ip_blocks():
    assert not allows(source(notIpBlocks=["10.244.0.0/16"]), request())
    assert allows(source(notIpBlocks=["10.245.0.0/16"]), request())


def test_remote_ip_blocks_use_remote_ip_else_source_ip():
    rule = source(remoteIpBlocks=["192.0.2.0/24"])
    assert allows(rule, request(remote_ip="192.0.2.9"))
    assert not allows(rule, request())
    assert allows(source(remoteIpBlocks=["10.244.1.5"]), request())
    assert not allows(source(notRemoteIpBlocks=["192.0.2.0/24"]), request(remote_ip="192.0.2.9"))


JWT = {"iss": "issuer.example.com", "sub": "subject-admin", "aud": ["app", "other"], "azp": "presenter",
       "groups": ["admins", "dev"], "nested": {"key": "value"}, "level": 3}


def jwt_request(**changes: Any) -> RequestAttributes:
    return request(request_principal="issuer.example.com/subject-admin", request_claims=JWT, **changes)


@pytest.mark.parametrize("value,expected", [
    ("issuer.example.com/subject-admin", True),
    ("issuer.example.com/subject-other", False),
    ("*", True),
    ("*/subject-admin", True),
    ("*.com/subject-admin", True),
    ("*.org/subject-admin", False),
    ("*admin", True),
    ("issuer.example.com/*", True),
    ("issuer.example.com/subject-*", True),
    ("issuer.example.com/other-*", False),
    ("issuer.*", True),
    ("issuer.example.com", False),
])
def test_request_principals(value: str, expected: bool):
    assert allows(source(requestPrincipals=[value]), jwt_request()) is expected


def test_request_principals_without_jwt():
    assert not allows(source(requestPrincipals=["*"]), request())
    assert allows(source(notRequestPrincipals=["*"]), request())
    assert not allows(source(notRequestPrincipals=["*"]), jwt_request())


def test_request_principal_alone_gives_issuer_and_subject():
    req = request(request_principal="https://accounts.example.com/1234")
    assert allows(source(requestPrincipals=["https://accounts.example.com/1234"]), req)
    assert allows(when("request.auth.principal", ["https://accounts.example.com/*"]), req)


# --- operation fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("value,host,expected", [
    ("httpbin:8000", "httpbin:8000", True),
    ("HTTPBIN:8000", "httpbin:8000", True),
    ("httpbin", "httpbin:8000", False),
    ("httpbin:*", "httpbin:8000", True),
    ("httpbin*", "HttpBin.default:8000", True),
    ("*.example.com", "www.EXAMPLE.com", True),
    ("*.example.com", "www.example.com:443", False),
    ("*", "anything", True),
])
def test_hosts_match_authority_as_sent_case_insensitively(value: str, host: str, expected: bool):
    assert allows(operation(hosts=[value]), request(host=host)) is expected


def test_not_hosts():
    assert not allows(operation(notHosts=["httpbin:8000"]), request())
    assert allows(operation(notHosts=["other"]), request())


def test_ports_and_not_ports():
    assert allows(operation(ports=["8000"]), request())
    assert not allows(operation(ports=["9000"]), request())
    assert not allows(operation(notPorts=["8000"]), request())
    assert allows(operation(notPorts=["9000", "9001"]), request())


@pytest.mark.parametrize("value,expected", [("GET", True), ("get", False), ("G*", True), ("*T", True),
                                            ("*", True), ("POST", False)])
def test_methods(value: str, expected: bool):
    assert allows(operation(methods=[value]), request()) is expected


def test_not_methods():
    assert not allows(operation(notMethods=["GET", "HEAD"]), request())
    assert allows(operation(notMethods=["POST"]), request())


@pytest.mark.parametrize("value,path,expected", [
    ("/get", "/get?show_env=1", True),
    ("/get", "/get#frag", True),
    ("/get", "/GET", False),
    ("/headers", "/get", False),
    ("/admin*", "/admin/users", True),
    ("/admin*", "/public/../admin/users", True),
    ("/admin*", "/%61dmin", True),
    ("/admin*", "/%2561dmin", False),
    ("/admin/*", "\\admin\\users", True),
    ("/admin/users", "/admin/./users/", False),
    ("*.txt", "/a/b.txt?x=y.json", True),
    ("*", "/", True),
])
def test_paths_on_the_normalized_path_without_query(value: str, path: str, expected: bool):
    assert allows(operation(paths=[value]), request(path=path)) is expected


def test_not_paths():
    assert not allows(operation(notPaths=["/admin*"]), request(path="/admin"))
    assert allows(operation(notPaths=["/admin*"]), request(path="/public"))


@pytest.mark.parametrize("template,path,expected", [
    ("/foo/{*}", "/foo/bar", True),
    ("/foo/{*}", "/foo/bar/baz", False),
    ("/foo/{*}", "/foo/", False),
    ("/foo/{**}", "/foo/bar/baz", True),
    ("/foo/{**}", "/foo/", True),
    ("/foo/{**}/", "/foo/bar/", True),
    ("/foo/{**}/", "/foo//", True),
    ("/foo/{**}/", "/foo/bar", False),
    ("/foo/{*}/bar/{**}", "/foo/buzz/bar/", True),
    ("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz", True),
    ("/foo/{*}/bar/{**}", "/foo/buzz/qux/baz", False),
    ("/{*}/v1.0", "/api/v1.0", True),
    ("/{*}/v1.0", "/api/v1x0", False),
    ("/foo/{*}", "/foo/b=r", False),
    ("/foo/{*}", "/foo/bar?x=1/2", True),
])
def test_path_templates_as_envoy_uri_templates(template: str, path: str, expected: bool):
    assert allows(operation(paths=[template]), request(path=path)) is expected


@pytest.mark.parametrize("target,normalized", [
    ("/a/b/../c", "/a/c"),
    ("/a/./b/.", "/a/b/"),
    ("/..", "/"),
    ("/a/..", "/"),
    ("/%2e%2E/x", "/x"),
    ("/%41%7e%5F%2D%39", "/A~_-9"),
    ("/a%2fb%5cc", "/a%2fb%5cc"),
    ("/a\\b", "/a/b"),
    ("//a//b", "//a//b"),
    ("/p?q=/../x#frag", "/p?q=/../x"),
])
def test_normalize_path_base(target: str, normalized: str):
    assert normalize_path(target) == normalized


# --- when conditions ----------------------------------------------------------------------------

def test_request_headers_condition():
    assert allows(when("request.headers[User-Agent]", ["curl/*"]), request())
    assert not allows(when("request.headers[user-agent]", ["Mozilla/*"]), request())
    assert not allows(when("request.headers[x-missing]", ["*"]), request())
    assert allows(when("request.headers[x-empty]", ["*"]), request(headers={"x-empty": ""}))
    assert allows(when("request.headers[x-missing]", not_values=["v"]), request())
    assert not allows(when("request.headers[x-token]", not_values=["*"]), request(headers={"x-token": "t"}))


def test_repeated_headers_are_matched_joined():
    assert allows(when("request.headers[x-a]", ["1,2"]), request(headers={"x-a": "1,2"}))
    assert not allows(when("request.headers[x-a]", ["1"]), request(headers={"x-a": "1,2"}))


def test_pseudo_headers():
    assert allows(when("request.headers[:authority]", ["httpbin:*"]), request())
    assert allows(when("request.headers[:method]", ["GET"]), request())
    assert allows(when("request.headers[:path]", ["/get?x=1"]), request(path="/a/../get?x=1"))


@pytest.mark.parametrize("key,values,expected", [
    ("source.ip", ["10.244.1.0/24"], True),
    ("source.ip", ["10.244.2.0/24"], False),
    ("remote.ip", ["10.244.1.5"], True),
    ("destination.ip", ["10.96.0.20"], True),
    ("destination.ip", ["10.96.0.0/12"], True),
    ("destination.ip", ["10.244.1.5"], False),
    ("destination.port", ["8000"], True),
    ("destination.port", ["80"], False),
    ("source.namespace", ["default"], True),
    ("source.namespace", ["prod"], False),
    ("source.principal", [SLEEP], True),
    ("source.principal", ["*/sa/other"], False),
    ("source.serviceAccount", ["default/sleep"], True),
    ("source.serviceAccount", ["sleep"], True),
    ("source.serviceAccount", ["prod/sleep"], False),
    ("source.trustDomain", ["cluster.local"], True),
    ("source.trustDomain", ["other"], False),
    ("connection.sni", ["*"], False),
])
def test_connection_conditions(key: str, values: list[str], expected: bool):
    assert allows(when(key, values), request()) is expected


def test_connection_sni():
    assert allows(when("connection.sni", ["*.example.com"]), request(sni="www.example.com"))
    assert allows(when("connection.sni", not_values=["www.example.com"]), request())


def test_remote_ip_condition_prefers_remote_ip():
    assert allows(when("remote.ip", ["192.0.2.1"]), request(remote_ip="192.0.2.1"))
    assert not allows(when("remote.ip", ["10.244.1.5"]), request(remote_ip="192.0.2.1"))


@pytest.mark.parametrize("key,values,expected", [
    ("request.auth.principal", ["issuer.example.com/subject-admin"], True),
    ("request.auth.principal", ["issuer.example.com/other"], False),
    ("request.auth.audiences", ["app"], True),
    ("request.auth.audiences", ["oth*"], True),
    ("request.auth.audiences", ["nope"], False),
    ("request.auth.presenter", ["presenter"], True),
    ("request.auth.presenter", ["other"], False),
    ("request.auth.claims[iss]", ["*.example.com"], True),
    ("request.auth.claims[groups]", ["admins"], True),
    ("request.auth.claims[groups]", ["ops"], False),
    ("request.auth.claims[nested][key]", ["value"], True),
    ("request.auth.claims[nested][other]", ["*"], False),
    ("request.auth.claims[level]", ["3"], False),
    ("request.auth.claims[missing]", ["*"], False),
])
def test_jwt_conditions(key: str, values: list[str], expected: bool):
    assert allows(when(key, values), jwt_request()) is expected


def test_jwt_conditions_without_jwt():
    assert not allows(when("request.auth.claims[iss]", ["*"]), request())
    assert allows(when("request.auth.claims[iss]", not_values=["*"]), request())
    assert not allows(when("request.auth.audiences", ["app"]), request())


def test_notvalues_exclude():
    rule = when("request.headers[x-env]", ["*"], ["prod"])
    assert allows(rule, request(headers={"x-env": "dev"}))
    assert not allows(rule, request(headers={"x-env": "prod"}))


# --- validation (what istiod rejects) -----------------------------------------------------------

def rejected(spec: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as caught:
        Policy.from_spec("default", "bad", spec)
    message = str(caught.value)
    assert message.startswith("invalid policy bad.default: "), message
    return message


def test_policy_error_is_value_error():
    assert issubclass(PolicyError, ValueError)


@pytest.mark.parametrize("key,reason", [
    ("request.foo", "unknown attribute: request.foo"),
    ("source.user", "unknown attribute: source.user"),
    ("destination.namespace", "replaced by the metadata.namespace"),
    ("destination.labels[app]", "replaced by the workload selector"),
    ("destination.name", "only supported in v1alpha1"),
    ("request.headers", "bad key (request.headers): should have format a[b]"),
    ("request.headers[]", "should have format a[b]"),
    ("request.headers[a][b]", "should have format a[b]"),
    ("request.auth.claims", "should have format a[b]"),
    ("experimental.envoy.filters.network.mysql_proxy[db.table]", "Envoy filter metadata"),
])
def test_unknown_or_unsupported_when_key(key: str, reason: str):
    message = rejected({"rules": [when(key, ["x"])]})
    assert "spec.rules[0].when[0].key" in message and reason in message


@pytest.mark.parametrize("rule,field", [
    (source(ipBlocks=["10.0.0.0/33"]), "ipBlocks: bad CIDR range (10.0.0.0/33)"),
    (source(notIpBlocks=["10.0.0"]), "notIpBlocks: bad IP address (10.0.0)"),
    (source(remoteIpBlocks=["x/8"]), "remoteIpBlocks: bad CIDR range (x/8)"),
    (operation(ports=["http"]), "ports: bad port (http)"),
    (operation(notPorts=["65536"]), "notPorts: bad port (65536)"),
    (when("destination.port", ["-1"]), "invalid value for key destination.port: bad port (-1)"),
    (when("source.ip", ["10.0.0.1/40"]), "bad CIDR range"),
    (source(principals=["a"], serviceAccounts=["b"]), "cannot set serviceAccounts with namespaces or principals"),
    (source(notNamespaces=["a"], notServiceAccounts=["b"]), "cannot set serviceAccounts"),
    (source(serviceAccounts=["ns/*"]), "serviceAccounts: wildcard not allowed"),
    (source(serviceAccounts=["a/b/c"]), "expected format 'serviceAccount' or 'namespace/serviceAccount'"),
    (source(serviceAccounts=["/b"]), "expected format"),
    (source(serviceAccounts=[f"sa{i}" for i in range(17)]), "may not have more than 16 values"),
    (source(trustDomains=["a/b"]), "trust domain must not contain '/'"),
    (source(trustDomains=["a*b"]), "wildcard is only allowed at the start or end"),
    (source(notTrustDomains=["*a*"]), "at most one wildcard is allowed"),
    (source(principals=[""]), "principals: empty value not allowed"),
    (source(principals="cluster.local/ns/a/sa/b"), "principals: must be a list of strings"),
    (operation(ports=[8000]), "ports: must be a list of strings"),
    (operation(paths=["/a/{**}/{*}"]), "{**} is not the last operator"),
    (operation(paths=["/foo/{*}.txt"]), "beyond a supported path template"),
    (operation(notPaths=["/*/baz/{*}"]), "with invalid string literal"),
    (operation(paths=["/a{b}"]), "beyond a supported path template"),
    ({"from": [{"source": {}}]}, "spec.rules[0].from[0].source: must not be empty"),
    ({"to": [{"operation": {}}]}, "spec.rules[0].to[0].operation: must not be empty"),
    ({"from": []}, "spec.rules[0].from: must be a non-empty list"),
    ({"from": [{}]}, "`from.source` must not be nil"),
    ({"to": [{"operation": None}]}, "`to.operation` must not be nil"),
    (source(principal=["typo"]), 'spec.rules[0].from[0].source: unknown field "principal"'),
    (operation(method=["GET"]), 'unknown field "method"'),
    ({"form": []}, 'spec.rules[0]: unknown field "form"'),
    ({"when": [{"key": "source.ip"}]}, "at least one of `values` or `notValues` must be set for key source.ip"),
    ({"when": [{"key": "", "values": ["a"]}]}, "`key` must not be empty"),
    ({"when": [{"key": "source.ip", "value": ["a"]}]}, 'unknown field "value"'),
])
def test_malformed_rules_rejected_naming_the_field(rule: dict[str, Any], field: str):
    assert field in rejected({"rules": [rule]})


def test_null_rule_rejected():
    assert "spec.rules[1]: `rule` must not be nil" in rejected({"rules": [{}, None]})


@pytest.mark.parametrize("spec,reason", [
    ({"action": "DENY"}, "DENY action without `rules` is meaningless"),
    ({"action": "DENY", "rules": []}, "DENY action without `rules` is meaningless"),
    ({"action": "CUSTOM", "provider": {"name": "p"}}, "CUSTOM action without `rules` is meaningless"),
    ({"action": "CUSTOM", "rules": [{}]}, "`provider.name` must not be empty"),
    ({"action": "ALLOW", "provider": {"name": "p"}, "rules": [{}]}, "`provider` must not be with non CUSTOM action"),
    ({"action": "REJECT"}, "spec.action: unsupported value 'REJECT'"),
    ({"rules": {}}, "spec.rules: must be a list"),
    ({"rule": []}, 'spec: unknown field "rule"'),
    ({"action": "CUSTOM", "provider": {"name": "p"}, "rules": [source(principals=["a"])]},
     "principals: is currently not supported with CUSTOM action"),
    ({"action": "CUSTOM", "provider": {"name": "p"}, "rules": [when("request.auth.claims[iss]", ["a"])]},
     "request.auth.claims[iss] is currently not supported with CUSTOM action"),
])
def test_policy_level_rejections(spec: dict[str, Any], reason: str):
    assert reason in rejected(spec)


def test_valid_policies_accepted():
    policies = [
        policy(source(serviceAccounts=["default/sleep"]), operation(paths=["/api/{*}/items/{**}"]),
               when("request.headers[x]", not_values=["y"]), action="DENY"),
        custom(source(ipBlocks=["10.0.0.0/8"]), when("request.headers[x]", ["y"])),
        policy({}, action="AUDIT", selector={"matchLabels": {"app": "a"}}),
        policy({}, targetRefs=[{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"}]),
    ]
    assert [p.action for p in policies] == ["DENY", "CUSTOM", "AUDIT", "ALLOW"]


def test_constructing_policy_directly_validates():
    with pytest.raises(PolicyError, match="invalid policy p.ns: .*unknown attribute: nope"):
        Policy("ns", "p", "ALLOW", ({"when": [{"key": "nope", "values": ["a"]}]},))
    assert Policy("ns", "p", "ALLOW", None).key == "ns/p"
