"""PeerAuthentication in ambient: the static STRICT policy, converted port-level policies (istiod's
own golden cases, pilot/pkg/serviceregistry/ambient/testdata/peer-authn-*), and which of them a
workload lists."""

from __future__ import annotations

from typing import Any

import pytest

from components.istiod.translate import peerauthentication
from tests.unit.istiod_objects import PRESENCE, Conn, allowed, peer_auth

ROOT = "istio-system"
STATIC = f"{ROOT}/istio_converted_static_strict"
NO_ID = {"notPrincipals": [PRESENCE]}
APP_A = {"matchLabels": {"app": "a"}}


def mtls(mode: str | None = None, ports: dict[int, str] | None = None, selector: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = selector
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if ports is not None:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return spec


def strict_on(port: int) -> dict[str, Any]:
    return {**NO_ID, "destinationPorts": [port]}


def except_port(port: int) -> dict[str, Any]:
    return {"notDestinationPorts": [port]}


# (case, root policy mode, namespace policy mode, workload policy mode, its ports, expected rules or None)
GOLDEN = [
    ("strict-and-permissive-port-mtls", None, None, "STRICT", {9090: "PERMISSIVE"},
     [[[NO_ID], [except_port(9090)]]]),
    ("strict-and-disable-port-mtls", None, None, "STRICT", {9090: "DISABLE"}, [[[NO_ID], [except_port(9090)]]]),
    ("strict-port-mtls-strict-and-permissive", None, None, "STRICT", {9090: "STRICT", 8080: "PERMISSIVE"},
     [[[NO_ID], [except_port(8080)]]]),
    ("strict-and-strict-port-mtls", None, None, "STRICT", {8080: "STRICT"}, None),
    ("disable-port-mtls-strict", None, None, "DISABLE", {9090: "STRICT"}, [[[strict_on(9090)]]]),
    ("permissive-port-mtls-strict", None, None, "PERMISSIVE", {9090: "STRICT"}, [[[strict_on(9090)]]]),
    ("permissive-port-mtls-strict-and-permissive", None, None, "PERMISSIVE", {9090: "STRICT", 8080: "PERMISSIVE"},
     [[[strict_on(9090)]]]),
    ("unset-port-mtls-strict", None, None, "UNSET", {8080: "STRICT"}, [[[strict_on(8080)]]]),
    ("permissive-root-permissive-namespace-strict-workload-ports", "PERMISSIVE", "PERMISSIVE", None,
     {9090: "STRICT", 8080: "STRICT"}, [[[strict_on(8080)]], [[strict_on(9090)]]]),
    ("permissive-root-permissive-workload", "PERMISSIVE", None, None, {9090: "PERMISSIVE"}, None),
    ("permissive-root-strict-namespace-permissive-workload", "PERMISSIVE", "STRICT", None, {9090: "PERMISSIVE"},
     [[[except_port(9090)], [NO_ID]]]),
    ("permissive-root-unset-namespace-mixed-workload-ports", "PERMISSIVE", "UNSET", None,
     {9090: "STRICT", 8080: "PERMISSIVE"}, [[[strict_on(9090)]]]),
    ("strict-root-permissive-namespace-strict-workload", "STRICT", "PERMISSIVE", None, {9090: "STRICT"},
     [[[strict_on(9090)]]]),
    ("strict-root-permissive-workload", "STRICT", None, None, {9090: "PERMISSIVE"}, [[[except_port(9090)], [NO_ID]]]),
    ("strict-root-unset-workload-port-mtls-strict-and-permissive", "STRICT", None, None,
     {9090: "PERMISSIVE", 8080: "STRICT"}, [[[except_port(9090)], [NO_ID]]]),
    ("strict-workload", None, None, "STRICT", None, None),
]


@pytest.mark.parametrize("case, root_mode, ns_mode, mode, ports, expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_converted_workload_policy(case, root_mode, ns_mode, mode, ports, expected):
    pas = [peer_auth("workload", "foo", mtls(mode, ports, APP_A))]
    if root_mode:
        pas.append(peer_auth("default-mesh", ROOT, mtls(root_mode)))
    if ns_mode:
        pas.append(peer_auth("default-foo", "foo", mtls(ns_mode)))
    policies = peerauthentication.policies(pas, ROOT)
    assert policies[0] == {"name": "istio_converted_static_strict", "namespace": ROOT, "scope": "WorkloadSelector",
                           "action": "Deny", "rules": [[[NO_ID]]], "dryRun": False}
    converted = policies[1:]
    if expected is None:
        assert converted == []
    else:
        assert converted == [{"name": "converted_peer_authentication_workload", "namespace": "foo",
                              "scope": "WorkloadSelector", "action": "Deny", "rules": expected, "dryRun": False}]


@pytest.mark.parametrize("spec", [mtls("STRICT"), mtls("PERMISSIVE"), mtls("DISABLE")])
def test_namespace_and_mesh_policies_are_not_converted(spec):
    for ns in ("foo", ROOT):
        assert [p["name"] for p in peerauthentication.policies([peer_auth("p", ns, spec)], ROOT)] \
            == ["istio_converted_static_strict"]


def test_root_namespace_selector_policies_are_not_converted():
    pa = peer_auth("w", ROOT, mtls("STRICT", {9090: "PERMISSIVE"}, APP_A))
    assert [p["name"] for p in peerauthentication.policies([pa], ROOT)] == ["istio_converted_static_strict"]


def test_no_peer_authentication_no_policy():
    assert peerauthentication.policies([], ROOT) == []


def test_strict_with_permissive_port_semantics():
    """STRICT with port 9090 PERMISSIVE: one rule, two clauses (no identity AND not 9090)."""
    pa = peer_auth("strict", "foo", mtls("STRICT", {9090: "PERMISSIVE"}, APP_A))
    (_, converted) = peerauthentication.policies([pa], ROOT)
    assert converted["action"] == "Deny"
    assert converted["rules"] == [[[{"notPrincipals": [{"Presence": []}]}], [{"notDestinationPorts": [9090]}]]]
    assert allowed([converted], Conn(identity=None, dst_port=9090))
    assert not allowed([converted], Conn(identity=None, dst_port=8080))
    assert allowed([converted], Conn(dst_port=8080))


# (case, policies, workload namespace, workload labels, expected keys)
KEYS = [
    ("nothing", [], "foo", {}, []),
    ("mesh STRICT", [peer_auth("m", ROOT, mtls("STRICT"))], "foo", {}, [STATIC]),
    ("mesh PERMISSIVE", [peer_auth("m", ROOT, mtls("PERMISSIVE"))], "foo", {}, []),
    ("namespace STRICT", [peer_auth("n", "foo", mtls("STRICT"))], "foo", {}, [STATIC]),
    ("other namespace STRICT", [peer_auth("n", "bar", mtls("STRICT"))], "foo", {}, []),
    ("namespace PERMISSIVE beats mesh STRICT",
     [peer_auth("m", ROOT, mtls("STRICT")), peer_auth("n", "foo", mtls("PERMISSIVE"))], "foo", {}, []),
    ("namespace DISABLE beats mesh STRICT",
     [peer_auth("m", ROOT, mtls("STRICT")), peer_auth("n", "foo", mtls("DISABLE"))], "foo", {}, []),
    ("namespace UNSET inherits mesh STRICT",
     [peer_auth("m", ROOT, mtls("STRICT")), peer_auth("n", "foo", mtls())], "foo", {}, [STATIC]),
    ("oldest namespace policy wins",
     [peer_auth("new", "foo", mtls("PERMISSIVE"), "2026-02-01T00:00:00Z"),
      peer_auth("old", "foo", mtls("STRICT"), "2026-01-01T00:00:00Z")], "foo", {}, [STATIC]),
    ("workload STRICT selects", [peer_auth("w", "foo", mtls("STRICT", selector=APP_A))], "foo", {"app": "a"}, [STATIC]),
    ("workload STRICT does not select", [peer_auth("w", "foo", mtls("STRICT", selector=APP_A))], "foo",
     {"app": "b"}, []),
    ("workload PERMISSIVE beats namespace STRICT",
     [peer_auth("n", "foo", mtls("STRICT")), peer_auth("w", "foo", mtls("PERMISSIVE", selector=APP_A))],
     "foo", {"app": "a"}, []),
    ("STRICT with PERMISSIVE port uses its own policy",
     [peer_auth("w", "foo", mtls("STRICT", {9090: "PERMISSIVE"}, APP_A))], "foo", {"app": "a"},
     ["foo/converted_peer_authentication_w"]),
    ("inherited STRICT with PERMISSIVE port",
     [peer_auth("m", ROOT, mtls("STRICT")), peer_auth("w", "foo", mtls(None, {9090: "PERMISSIVE"}, APP_A))],
     "foo", {"app": "a"}, ["foo/converted_peer_authentication_w"]),
    ("inherited STRICT with DISABLE port stays STRICT (istiod checks PERMISSIVE only)",
     [peer_auth("m", ROOT, mtls("STRICT")), peer_auth("w", "foo", mtls(None, {9090: "DISABLE"}, APP_A))],
     "foo", {"app": "a"}, [STATIC]),
    ("PERMISSIVE with STRICT port",
     [peer_auth("w", "foo", mtls("PERMISSIVE", {9090: "STRICT"}, APP_A))], "foo", {"app": "a"},
     ["foo/converted_peer_authentication_w"]),
    ("inherited PERMISSIVE with STRICT port",
     [peer_auth("m", ROOT, mtls("PERMISSIVE")), peer_auth("w", "foo", mtls(None, {9090: "STRICT"}, APP_A))],
     "foo", {"app": "a"}, ["foo/converted_peer_authentication_w"]),
    ("mesh selector policy applies nowhere",
     [peer_auth("m", ROOT, mtls("STRICT", selector=APP_A))], "foo", {"app": "a"}, []),
]


@pytest.mark.parametrize("case, pas, ns, labels, expected", KEYS, ids=[k[0] for k in KEYS])
def test_workload_policy_keys(case, pas, ns, labels, expected):
    assert peerauthentication.workload_policy_keys(pas, ns, labels, ROOT) == expected
