"""The waypoint's L7 authorization: AuthorizationPolicy as istiod compiles it into Envoy RBAC HTTP
filters for a waypoint, and as those filters decide a request. No I/O.

Where the semantics come from (istio/istio unless noted):
- validation, what istiod rejects: `pkg/config/validation/validation.go` (ValidateAuthorizationPolicy)
  and `pkg/config/security/security.go` (ValidateAttribute, ValidateIPs, ValidatePorts,
  CheckServiceAccount, CheckTrustDomainValues, CheckValidPathTemplate);
- rules to RBAC policies, their names `ns[<ns>]-policy[<name>]-rule[<i>]`, dry-run as shadow rules,
  the filter order CUSTOM, AUDIT, DENY, ALLOW, and CUSTOM without a usable ext-authz provider
  turned into DENY rules: `pilot/pkg/security/authz/builder/{builder,extauthz}.go`;
- what each field and `when` key matches: `pilot/pkg/security/authz/model/{model,generator,util}.go`
  and `matcher/{header,string,template}.go`;
- the RBAC filter: policies kept in a name-ordered map, the first match is the effective policy,
  403 with `rbac_access_denied_matched_policy[<id>|none]`, the `shadow allowed|denied, matched
  policy <id>|none` debug lines (envoyproxy/envoy `source/extensions/filters/http/rbac/`,
  `filters/common/rbac/{engine_impl,utility}.cc`); `{*}`/`{**}` path templates as Envoy's
  `source/extensions/path/uri_template_lib/uri_template_internal.cc` turns them into regexes;
- path normalization BASE (Istio's default): istio.io `reference/config/security/normalization`.

AUDIT policies never change a decision and are not evaluated. No ext-authz provider exists here, so
a CUSTOM policy's rules deny what they match, as istiod makes them when the provider is unknown
(`custom_action_errors` gives the error istiod logs for it).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

ALLOW, DENY, AUDIT, CUSTOM = "ALLOW", "DENY", "AUDIT", "CUSTOM"
ACTIONS = (ALLOW, DENY, AUDIT, CUSTOM)
DRY_RUN_ANNOTATION = "istio.io/dry-run"
DENIED_DETAILS = "rbac_access_denied_matched_policy[{policy}]"
_SPIFFE = "spiffe://"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_EXT_AUTHZ_PREFIX = "istio-ext-authz"
_BAD_CUSTOM_SUFFIX = "-deny-due-to-bad-CUSTOM-action"

Matcher = Callable[["RequestAttributes"], bool]
# Builds the matcher of one policy value; the second argument is the policy's namespace.
_ValueMatcher = Callable[[str, str], Matcher]


class PolicyError(ValueError):
    """A policy istiod's validation would reject; the message names the policy and the field."""


@dataclass(frozen=True)
class RequestAttributes:
    """What the RBAC filter sees of one request. `request_principal` and `request_claims` come
    from the JWT a RequestAuthentication verified (`<iss>/<sub>` and its payload); both None when
    no JWT was verified."""

    source_principal: str | None
    source_ip: str
    destination_ip: str
    destination_port: int
    method: str
    path: str
    host: str
    headers: Mapping[str, str]
    remote_ip: str | None = None
    request_principal: str | None = None
    sni: str = ""
    request_claims: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Policy:
    """One AuthorizationPolicy as it applies at the waypoint (the caller picks them by
    targetRefs). Validated and compiled on construction: PolicyError if istiod would reject it."""

    namespace: str
    name: str
    action: str
    rules: tuple[Mapping, ...] | None
    dry_run: bool = False
    provider: str = ""
    _compiled: tuple[tuple[str, Matcher], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate_policy(self)
        object.__setattr__(self, "_compiled", tuple(_compile_policy(self)))

    @classmethod
    def from_spec(cls, namespace: str, name: str, spec: Mapping,
                  annotations: Mapping[str, str] = {}) -> "Policy":
        """From an AuthorizationPolicy's metadata and spec (camelCase, as stored)."""
        fail = _failer(namespace, name)
        _check_fields(spec, _SPEC_FIELDS, "spec", fail)
        rules = spec.get("rules")
        if rules is not None and not isinstance(rules, list):
            fail("spec.rules: must be a list")
        provider = spec.get("provider")
        if provider is not None and not isinstance(provider, Mapping):
            fail("spec.provider: must be an object")
        return cls(namespace=namespace, name=name, action=spec.get("action") or ALLOW,
                   rules=None if rules is None else tuple(rules),
                   dry_run=annotations.get(DRY_RUN_ANNOTATION, "") in _TRUE,
                   provider=str((provider or {}).get("name") or ""))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Decision:
    """`details` is Envoy's response code details for the 403 ("" when allowed); `shadow` the RBAC
    filter's debug lines for dry-run policies, in filter order."""

    allowed: bool
    policy: str | None
    details: str
    shadow: tuple[str, ...] = ()


def policy_id(namespace: str, name: str, rule: int) -> str:
    """The RBAC policy name istiod gives a rule (`builder.go` policyName)."""
    return f"ns[{namespace}]-policy[{name}]-rule[{rule}]"


def custom_action_errors(policies: Sequence[Policy]) -> list[str]:
    """What istiod logs for each ext-authz provider CUSTOM policies name: none is configured here,
    so their rules are enforced as DENY."""
    providers = sorted({p.provider for p in policies if p.action == CUSTOM})
    return [f"failed to process CUSTOM action for provider {p}, will generate deny configs: "
            f'available providers are [] but found "{p}"' for p in providers]


def evaluate(policies: Sequence[Policy], request: RequestAttributes) -> Decision:
    """The waypoint's RBAC filters in order: CUSTOM (as DENY), DENY, then ALLOW. The first filter
    that denies decides; without enforced ALLOW policies the request is allowed."""
    shadow: list[str] = []
    for engine in _custom_engines(policies):
        rule = _first_match(engine, request)
        if rule is not None:
            return _denied(rule, tuple(shadow))
    deny = [p for p in policies if p.action == DENY]
    shadow += _shadow_lines(DENY, [p for p in deny if p.dry_run], request)
    rule = _first_match(_rules_of(p for p in deny if not p.dry_run), request)
    if rule is not None:
        return _denied(rule, tuple(shadow))
    allow = [p for p in policies if p.action == ALLOW]
    shadow += _shadow_lines(ALLOW, [p for p in allow if p.dry_run], request)
    enforced = [p for p in allow if not p.dry_run]
    if not enforced:
        return Decision(True, None, "", tuple(shadow))
    rule = _first_match(_rules_of(enforced), request)
    if rule is None:
        return Decision(False, None, DENIED_DETAILS.format(policy="none"), tuple(shadow))
    return Decision(True, rule.policy, "", tuple(shadow))


def normalize_path(target: str) -> str:
    """A request target after Istio's default (BASE) normalization, which Envoy applies before
    any filter and forwards upstream: the fragment dropped; in the path, percent-encoded unreserved
    characters decoded, backslashes made slashes, dot segments resolved. The query is kept."""
    target = target.partition("#")[0]
    path, question, query = target.partition("?")
    path = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path).replace("\\", "/")
    return _remove_dot_segments(path) + question + query


# --- evaluation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rule:
    """One RBAC policy: its name in the filter and the `ns/name` of the AuthorizationPolicy."""

    name: str
    policy: str
    matches: Matcher


def _rules_of(policies: Iterable[Policy], name: Callable[[str], str] = lambda n: n) -> list[_Rule]:
    """The RBAC policies of one filter, in the order Envoy's name-keyed map holds them."""
    rules = [_Rule(name(rule_name), p.key, matcher) for p in policies for rule_name, matcher in p._compiled]
    return sorted(rules, key=lambda r: r.name)


def _first_match(rules: list[_Rule], request: RequestAttributes) -> _Rule | None:
    return next((r for r in rules if r.matches(request)), None)


def _denied(rule: _Rule, shadow: tuple[str, ...]) -> Decision:
    return Decision(False, rule.policy, DENIED_DETAILS.format(policy=rule.name), shadow)


def _custom_engines(policies: Sequence[Policy]) -> list[list[_Rule]]:
    """One DENY filter per provider (sorted), holding its enforced CUSTOM policies' rules."""
    custom = [p for p in policies if p.action == CUSTOM]
    engines = []
    for provider in sorted({p.provider for p in custom}):
        prefix = f"{_EXT_AUTHZ_PREFIX}-{provider}-"
        enforced = (p for p in custom if p.provider == provider and not p.dry_run)
        engines.append(_rules_of(enforced, lambda n, prefix=prefix: prefix + n + _BAD_CUSTOM_SUFFIX))
    return engines


def _shadow_lines(action: str, dry_run: list[Policy], request: RequestAttributes) -> list[str]:
    """The shadow engine's debug line: allowed/denied as the action would have had it."""
    if not dry_run:
        return []
    rule = _first_match(_rules_of(dry_run), request)
    allowed = (rule is not None) == (action == ALLOW)
    return [f"shadow {'allowed' if allowed else 'denied'}, matched policy {rule.name if rule else 'none'}"]


# --- compilation -------------------------------------------------------------------------------

def _compile_policy(policy: Policy) -> list[tuple[str, Matcher]]:
    """Rules absent or empty: one RBAC policy that never matches (`rbacPolicyMatchNever`)."""
    if not policy.rules:
        return [(policy_id(policy.namespace, policy.name, 0), lambda request: False)]
    return [(policy_id(policy.namespace, policy.name, i), _compile_rule(rule, policy.namespace))
            for i, rule in enumerate(policy.rules)]


def _compile_rule(rule: Mapping, namespace: str) -> Matcher:
    """from × to × when ANDed; the `from` entries ORed, the `to` entries ORed."""
    sources = [_compile_fields(entry["source"], _SOURCE_FIELDS, namespace) for entry in rule.get("from") or ()]
    operations = [_compile_fields(entry["operation"], _OPERATION_FIELDS, namespace) for entry in rule.get("to") or ()]
    conditions = [_compile_condition(c, namespace) for c in rule.get("when") or ()]

    def matches(request: RequestAttributes) -> bool:
        return ((not sources or any(s(request) for s in sources))
                and (not operations or any(o(request) for o in operations))
                and all(c(request) for c in conditions))
    return matches


def _compile_fields(entry: Mapping, fields: Mapping[str, tuple[str, "_Kind"]], namespace: str) -> Matcher:
    """A Source or Operation: every field set must hold, each as `_either`."""
    parts = [_either(entry.get(positive) or (), entry.get(negative) or (), kind.matcher, namespace)
             for positive, (negative, kind) in fields.items() if entry.get(positive) or entry.get(negative)]
    return lambda request: all(part(request) for part in parts)


def _compile_condition(condition: Mapping, namespace: str) -> Matcher:
    matcher = _condition_kind(condition["key"]).matcher
    return _either(condition.get("values") or (), condition.get("notValues") or (), matcher, namespace)


def _either(values: Sequence[str], not_values: Sequence[str], make: _ValueMatcher, namespace: str) -> Matcher:
    """Some value matches (when values are given) and no notValue does."""
    positive = [make(v, namespace) for v in values]
    negative = [make(v, namespace) for v in not_values]
    return lambda request: ((not positive or any(m(request) for m in positive))
                            and not any(m(request) for m in negative))


def _string_match(pattern: str, ignore_case: bool = False) -> Callable[[str], bool]:
    """Istio's StringMatcher: `*` any non-empty value, `*x` suffix, `x*` prefix, else exact."""
    if ignore_case:
        match = _string_match(pattern.lower())
        return lambda value: match(value.lower())
    if pattern == "*":
        return lambda value: value != ""
    if pattern.startswith("*"):
        return lambda value: value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return lambda value: value.startswith(pattern[:-1])
    return lambda value: value == pattern


def _header_match(pattern: str, ignore_case: bool = False) -> Callable[[str | None], bool]:
    """A HeaderMatcher: `*` is presence (even an empty value), else `_string_match` of a present
    header."""
    if pattern == "*":
        return lambda value: value is not None
    match = _string_match(pattern, ignore_case)
    return lambda value: value is not None and match(value)


def _peer_regex(regex: str) -> Matcher:
    """Match the peer's URI SAN (`spiffe://...`) in full; no peer identity never matches."""
    compiled = re.compile(regex)
    return lambda request: (request.source_principal is not None
                            and compiled.fullmatch(_SPIFFE + request.source_principal) is not None)


def _principal(value: str, namespace: str) -> Matcher:
    match = _string_match(value)
    return lambda request: request.source_principal is not None and match(request.source_principal)


def _namespace(value: str, namespace: str) -> Matcher:
    return _peer_regex(f".*/ns/{'.*'.join(re.escape(part) for part in value.split('*'))}/.*")


def _service_account(value: str, namespace: str) -> Matcher:
    ns, slash, sa = value.partition("/")
    if not slash:
        ns, sa = namespace, value
    return _peer_regex(f"spiffe://.+/ns/{re.escape(ns)}/(.+/|)sa/{re.escape(sa)}(/.+)?")


def _trust_domain(value: str, namespace: str) -> Matcher:
    if value == "*":
        return _peer_regex("spiffe://.*")
    if "*" not in value:
        return _peer_regex(f"spiffe://{re.escape(value)}/.*")
    before, _, after = value.partition("*")
    return _peer_regex(f"spiffe://{re.escape(before)}[^/]*{re.escape(after)}/.*")


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR (host bits ignored) or a single address."""
    return ipaddress.ip_network(value, strict=False)


def _address_in(value: str, address_of: Callable[[RequestAttributes], str]) -> Matcher:
    network = _cidr(value)
    return lambda request: ipaddress.ip_address(address_of(request)) in network


def _source_ip(value: str, namespace: str) -> Matcher:
    return _address_in(value, lambda request: request.source_ip)


def _remote_ip(value: str, namespace: str) -> Matcher:
    return _address_in(value, lambda request: request.remote_ip or request.source_ip)


def _destination_ip(value: str, namespace: str) -> Matcher:
    return _address_in(value, lambda request: request.destination_ip)


def _port(value: str, namespace: str) -> Matcher:
    port = int(value)
    return lambda request: request.destination_port == port


def _host(value: str, namespace: str) -> Matcher:
    """`:authority` as sent, port included, compared case-insensitively (`HostMatcher`)."""
    match = _header_match(value, ignore_case=True)
    return lambda request: match(request.host)


def _method(value: str, namespace: str) -> Matcher:
    match = _header_match(value)
    return lambda request: match(request.method)


def _path(value: str, namespace: str) -> Matcher:
    """The normalized path without query, by StringMatcher, or by Envoy's URI template regex."""
    if _is_path_template(value):
        compiled = re.compile(_template_regex(value))
        return lambda request: compiled.fullmatch(_url_path(request)) is not None
    match = _string_match(value)
    return lambda request: match(_url_path(request))


def _sni(value: str, namespace: str) -> Matcher:
    match = _string_match(value)
    return lambda request: match(request.sni)


def _request_header(name: str) -> _ValueMatcher:
    def make(value: str, namespace: str) -> Matcher:
        match = _header_match(value)
        return lambda request: match(_header(request, name))
    return make


def _request_principal(value: str, namespace: str) -> Matcher:
    """`<iss>/<sub>` split at the last `/`, each side matched against the JWT's own claim
    (`requestPrincipalGenerator`): a leading `*` widens the issuer, a trailing one the subject."""
    issuer, slash, subject = value.rpartition("/")
    if not slash:
        issuer, subject = value, ""
    if value == "*":
        match_iss = match_sub = _string_match("*")
    elif value.startswith("*"):
        match_iss, match_sub = (_string_match(issuer), _exact(subject)) if slash else (_string_match("*"), _string_match(value))
    elif value.endswith("*"):
        match_iss, match_sub = (_exact(issuer), _string_match(subject)) if slash else (_string_match(value), _string_match("*"))
    else:
        match_iss, match_sub = _exact(issuer), _exact(subject)
    return lambda request: _jwt_string(request, ("iss",), match_iss) and _jwt_string(request, ("sub",), match_sub)


def _exact(expected: str) -> Callable[[str], bool]:
    return lambda value: value == expected


def _claim(path: tuple[str, ...]) -> _ValueMatcher:
    """A JWT claim: a string that matches, or a list holding one (`MetadataListValueMatcher`)."""
    def make(value: str, namespace: str) -> Matcher:
        match = _string_match(value)
        return lambda request: _jwt_string(request, path, match, lists=True)
    return make


def _jwt_string(request: RequestAttributes, path: tuple[str, ...], match: Callable[[str], bool],
                lists: bool = False) -> bool:
    claims = _jwt_claims(request)
    if claims is None:
        return False
    value: Any = claims
    for segment in path:
        if not isinstance(value, Mapping) or segment not in value:
            return False
        value = value[segment]
    if isinstance(value, str):
        return match(value)
    return lists and isinstance(value, list) and any(isinstance(v, str) and match(v) for v in value)


def _jwt_claims(request: RequestAttributes) -> Mapping[str, Any] | None:
    """The verified JWT's payload; iss and sub from `request_principal` when only it is given."""
    if request.request_claims is not None:
        return request.request_claims
    if request.request_principal is None:
        return None
    issuer, _, subject = request.request_principal.rpartition("/")
    return {"iss": issuer, "sub": subject}


def _header(request: RequestAttributes, name: str) -> str | None:
    """A request header by lower-case name; the pseudo-headers Envoy matches on are the request's
    own attributes."""
    pseudo = {":authority": request.host, ":method": request.method, ":path": normalize_path(request.path)}
    return pseudo[name] if name in pseudo else request.headers.get(name)


def _url_path(request: RequestAttributes) -> str:
    return normalize_path(request.path).partition("?")[0]


_UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|3[0-9]|4[1-9a-fA-F]|5[0-9aAfF]|6[1-9a-fA-F]|7[0-9aAeE])")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: `.` dropped, `..` drops the segment before it, never the root."""
    segments = path.split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")
            continue
        kept.append(segment)
    return "/".join(kept)


_TEMPLATE_LITERAL = r"a-zA-Z0-9\-._~%!$&'()+,;:@"


def _is_path_template(path: str) -> bool:
    return "{*}" in path or "{**}" in path


def _template_regex(template: str) -> str:
    """Envoy's regex for a URI template: `{*}` one segment of literal characters, `{**}` any
    number of them with their slashes; a trailing `/` must be there."""
    parts = []
    for segment in template.replace("{**}", "**").replace("{*}", "*")[1:].split("/"):
        if segment == "*":
            parts.append(f"[{_TEMPLATE_LITERAL}]+")
        elif segment == "**":
            parts.append(f"[{_TEMPLATE_LITERAL}/]*")
        else:
            parts.append(re.escape(segment))
    return "/" + "/".join(parts)


# --- validation (istiod's) ---------------------------------------------------------------------

def _failer(namespace: str, name: str) -> Callable[[str], Any]:
    def fail(detail: str) -> Any:
        raise PolicyError(f"invalid policy {name}.{namespace}: {detail}")
    return fail


def _check_fields(obj: Any, allowed: Iterable[str], where: str, fail: Callable[[str], Any]) -> None:
    if not isinstance(obj, Mapping):
        fail(f"{where}: must be an object")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        fail(f'{where}: unknown field "{unknown[0]}"')


def _check_strings(values: Any, where: str, fail: Callable[[str], Any]) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        fail(f"{where}: must be a list of strings")
    if "" in values:
        fail(f"{where}: empty value not allowed")
    return values


def _no_check(value: str) -> str | None:
    return None


def _check_ip(value: str) -> str | None:
    address, slash, bits = value.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"bad CIDR range ({value})" if slash else f"bad IP address ({value})"
    if slash and not (bits.isdigit() and int(bits) <= ip.max_prefixlen):
        return f"bad CIDR range ({value})"
    return None


def _check_port(value: str) -> str | None:
    if value.isdigit() and value.isascii() and int(value) <= 65535:
        return None
    return f"bad port ({value})"


def _check_service_account(value: str) -> str | None:
    if "*" in value:
        return "wildcard not allowed"
    if len(value) > 320:
        return f"value cannot exceed 320 characters, found {value!r}"
    ns, slash, sa = value.partition("/")
    if value.count("/") > 1 or (slash and not (ns and sa)):
        return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found {value!r}"
    return None


def _check_wildcard(value: str) -> str | None:
    if value.count("*") > 1:
        return f"at most one wildcard is allowed, found {value!r}"
    if "*" in value and value != "*" and not (value.startswith("*") or value.endswith("*")):
        return f"wildcard is only allowed at the start or end, found {value!r}"
    return None


def _check_trust_domain(value: str) -> str | None:
    if "/" in value:
        return f"trust domain must not contain '/', found {value!r}"
    return _check_wildcard(value)


_PATH_LITERAL = re.compile(r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]+")


def _check_path(path: str) -> str | None:
    """CheckValidPathTemplate: operators whole segments, `{**}` last, no other braces, and in a
    template only RFC 3986 pchars in the literal segments."""
    template = _is_path_template(path)
    seen_any = False
    for glob in path.strip("/").split("/"):
        if glob in ("{*}", "{**}"):
            if seen_any:
                return f"invalid or unsupported path {path}: {{**}} is not the last operator"
            seen_any = glob == "{**}"
            continue
        if "{" in glob or "}" in glob:
            return f"invalid or unsupported path {path}: contains '{{' or '}}' beyond a supported path template"
        if template and not _PATH_LITERAL.fullmatch(glob):
            return f"invalid or unsupported path {path}: contains segment {glob} with invalid string literal"
    return None


@dataclass(frozen=True)
class _Kind:
    """How the values of one field or condition key match, and how istiod checks each value."""

    matcher: _ValueMatcher
    check: Callable[[str], str | None] = _no_check


_SPEC_FIELDS = ("selector", "targetRef", "targetRefs", "action", "provider", "rules")
_SOURCE_FIELDS: dict[str, tuple[str, _Kind]] = {
    "principals": ("notPrincipals", _Kind(_principal)),
    "requestPrincipals": ("notRequestPrincipals", _Kind(_request_principal)),
    "namespaces": ("notNamespaces", _Kind(_namespace)),
    "serviceAccounts": ("notServiceAccounts", _Kind(_service_account, _check_service_account)),
    "ipBlocks": ("notIpBlocks", _Kind(_source_ip, _check_ip)),
    "remoteIpBlocks": ("notRemoteIpBlocks", _Kind(_remote_ip, _check_ip)),
    "trustDomains": ("notTrustDomains", _Kind(_trust_domain, _check_trust_domain)),
}
_OPERATION_FIELDS: dict[str, tuple[str, _Kind]] = {
    "hosts": ("notHosts", _Kind(_host)),
    "ports": ("notPorts", _Kind(_port, _check_port)),
    "methods": ("notMethods", _Kind(_method)),
    "paths": ("notPaths", _Kind(_path, _check_path)),
}
_CONDITIONS: dict[str, _Kind] = {
    "source.ip": _Kind(_source_ip, _check_ip),
    "remote.ip": _Kind(_remote_ip, _check_ip),
    "source.namespace": _Kind(_namespace),
    "source.serviceAccount": _Kind(_service_account, _check_service_account),
    "source.principal": _Kind(_principal),
    "source.trustDomain": _Kind(_trust_domain, _check_wildcard),
    "request.auth.principal": _Kind(_request_principal),
    "request.auth.audiences": _Kind(_claim(("aud",))),
    "request.auth.presenter": _Kind(_claim(("azp",))),
    "destination.ip": _Kind(_destination_ip, _check_ip),
    "destination.port": _Kind(_port, _check_port),
    "connection.sni": _Kind(_sni),
}
_REJECTED_CONDITIONS = {
    "destination.namespace": "attribute destination.namespace is replaced by the metadata.namespace",
    "destination.name": "deprecated attribute destination.name: only supported in v1alpha1",
    "destination.user": "deprecated attribute destination.user: only supported in v1alpha1",
}
# What CUSTOM policies may not use (ValidateAuthorizationPolicy).
_NOT_WITH_CUSTOM = ("principals", "requestPrincipals", "namespaces", "serviceAccounts", "trustDomains")
_CONDITIONS_NOT_WITH_CUSTOM = ("source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal")


def _bracketed(text: str) -> list[str] | None:
    """`[a]` or `[a][b]...` as its names; None for anything else."""
    names = re.findall(r"\[([^\[\]]+)\]", text)
    return names if names and "".join(f"[{n}]" for n in names) == text else None


def _condition_kind(key: str) -> _Kind:
    """The kind of a `when` key; ValueError (istiod's reason) for a key it rejects or that needs
    Envoy filter metadata, which this waypoint does not have."""
    if key in _CONDITIONS:
        return _CONDITIONS[key]
    for prefix in ("request.headers", "request.auth.claims"):
        if key.startswith(prefix):
            names = _bracketed(key[len(prefix):])
            if names is None or (prefix == "request.headers" and len(names) != 1):
                raise ValueError(f"bad key ({key}): should have format a[b]")
            return _Kind(_request_header(names[0].lower()) if prefix == "request.headers" else _claim(tuple(names)))
    if key.startswith("experimental.envoy.filters."):
        raise ValueError(f"attribute {key} matches Envoy filter metadata, which this waypoint does not have")
    if key.startswith("destination.labels"):
        raise ValueError(f"attribute {key} is replaced by the workload selector")
    raise ValueError(_REJECTED_CONDITIONS.get(key, f"unknown attribute: {key}"))


def _validate_policy(policy: Policy) -> None:
    fail = _failer(policy.namespace, policy.name)
    if policy.action not in ACTIONS:
        fail(f"spec.action: unsupported value {policy.action!r}: supported values: {', '.join(ACTIONS)}")
    if policy.action in (CUSTOM, DENY) and not policy.rules:
        fail(f"{policy.action} action without `rules` is meaningless as it will never be triggered, "
             "add an empty rule `{}` if you want it be triggered for every request")
    if policy.action == CUSTOM and not policy.provider:
        fail("`provider.name` must not be empty")
    if policy.provider and policy.action != CUSTOM:
        fail(f"`provider` must not be with non CUSTOM action, found {policy.action}")
    for index, rule in enumerate(policy.rules or ()):
        _validate_rule(rule, f"spec.rules[{index}]", policy.action == CUSTOM, fail)


def _validate_rule(rule: Any, where: str, custom: bool, fail: Callable[[str], Any]) -> None:
    if rule is None:
        fail(f"{where}: `rule` must not be nil")
    _check_fields(rule, ("from", "to", "when"), where, fail)
    for key, inner, validate in (("from", "source", _validate_source), ("to", "operation", _validate_operation)):
        entries = rule.get(key)
        if entries is not None and (not isinstance(entries, list) or not entries):
            fail(f"{where}.{key}: must be a non-empty list")
        for index, entry in enumerate(entries or ()):
            _check_fields(entry, (inner,), f"{where}.{key}[{index}]", fail)
            if entry.get(inner) is None:
                fail(f"{where}.{key}[{index}]: `{key}.{inner}` must not be nil")
            validate(entry[inner], f"{where}.{key}[{index}].{inner}", custom, fail)
    conditions = rule.get("when")
    if conditions is not None and not isinstance(conditions, list):
        fail(f"{where}.when: must be a list")
    for index, condition in enumerate(conditions or ()):
        _validate_condition(condition, f"{where}.when[{index}]", custom, fail)


def _validate_fields(entry: Any, fields: dict[str, tuple[str, _Kind]], where: str, fail: Callable[[str], Any]) -> set[str]:
    """Each list of a Source or Operation checked value by value; returns the fields set."""
    _check_fields(entry, [name for positive, (negative, _) in fields.items() for name in (positive, negative)],
                  where, fail)
    present = set()
    for positive, (negative, kind) in fields.items():
        for name in (positive, negative):
            values = _check_strings(entry.get(name), f"{where}.{name}", fail)
            for value in values:
                problem = kind.check(value)
                if problem:
                    fail(f"{where}.{name}: {problem}")
            if values:
                present.add(name)
    if not present:
        fail(f"{where}: must not be empty")
    return present


def _validate_source(source: Any, where: str, custom: bool, fail: Callable[[str], Any]) -> None:
    present = _validate_fields(source, _SOURCE_FIELDS, where, fail)
    accounts = {"serviceAccounts", "notServiceAccounts"} & present
    if accounts and {"principals", "notPrincipals", "namespaces", "notNamespaces"} & present:
        fail(f"{where}: cannot set serviceAccounts with namespaces or principals")
    for name in accounts:
        if len(source[name]) > 16:
            fail(f"{where}.{name}: may not have more than 16 values")
    for positive in _NOT_WITH_CUSTOM:
        for name in (positive, _SOURCE_FIELDS[positive][0]):
            if custom and name in present:
                fail(f"{where}.{name}: is currently not supported with CUSTOM action")


def _validate_operation(operation: Any, where: str, custom: bool, fail: Callable[[str], Any]) -> None:
    _validate_fields(operation, _OPERATION_FIELDS, where, fail)


def _validate_condition(condition: Any, where: str, custom: bool, fail: Callable[[str], Any]) -> None:
    _check_fields(condition, ("key", "values", "notValues"), where, fail)
    key = condition.get("key")
    if not isinstance(key, str) or not key:
        fail(f"{where}: `key` must not be empty")
    try:
        kind = _condition_kind(key)
    except ValueError as error:
        fail(f"{where}.key: {error}")
    if custom and (key in _CONDITIONS_NOT_WITH_CUSTOM or key.startswith("request.auth.")):
        fail(f"{where}.key: {key} is currently not supported with CUSTOM action")
    values = _check_strings(condition.get("values"), f"{where}.values", fail)
    not_values = _check_strings(condition.get("notValues"), f"{where}.notValues", fail)
    if not values and not not_values:
        fail(f"{where}: at least one of `values` or `notValues` must be set for key {key}")
    for name, listed in (("values", values), ("notValues", not_values)):
        for value in listed:
            problem = kind.check(value)
            if problem:
                fail(f"{where}.{name}: invalid value for key {key}: {problem}")
