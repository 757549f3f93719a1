"""istioctl ztunnel-config's printers over a config the istiod translation really produces (an
ambient namespace with httpbin, sleep, a waypoint and an L4 policy), and over certificates."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import yaml

from components.istiod.translate import Snapshot, build_config
from harness.istioctl.configdump import (ZtunnelDump, WorkloadFilter, certificate_summary, dump_text, full_summary,
                                         go_json, policy_summary, service_summary, workload_summary)
from tests.unit.istiod_objects import authz, namespace, pod, service, waypoint_gateway

AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def demo_config() -> dict:
    """What istiod's /debug/config_dump carries under "config", through JSON as served."""
    objects = [
        namespace("ambient-demo", **AMBIENT), namespace("default"),
        pod("httpbin-5c779fc757-9dxfm", "ambient-demo", "10.244.2.6", node="ambient-worker2", sa="httpbin",
            labels={"app": "httpbin"}, ports=[{"containerPort": 8080}]),
        pod("sleep-7656cf8794-lxcmx", "ambient-demo", "10.244.1.7", node="ambient-worker", sa="sleep",
            labels={"app": "sleep", "istio.io/use-waypoint": "waypoint"}),
        pod("notready-1", "ambient-demo", "10.244.1.8", node="ambient-worker", labels={"app": "httpbin"},
            ready=False),
        pod("outside", "default", "10.244.1.9", node="ambient-worker", labels={"app": "outside"}),
        service("httpbin", "ambient-demo", "10.96.12.34", selector={"app": "httpbin"},
                ports=[{"name": "http", "port": 8000, "targetPort": 8080}]),
        service("sleep", "ambient-demo", "10.96.0.50", selector={"app": "sleep"}),
        waypoint_gateway("waypoint", "ambient-demo", waypoint_for="workload"),
        service("waypoint", "ambient-demo", "10.96.0.60", selector={"gateway.networking.k8s.io/gateway-name": "x"}),
        authz("allow-sleep-to-httpbin", "ambient-demo", {
            "selector": {"matchLabels": {"app": "httpbin"}}, "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/ambient-demo/sa/sleep"]}}]}]}),
        authz("deny-all", "istio-system", {"action": "DENY", "rules": [{}]}),
    ]
    return json.loads(json.dumps(build_config(Snapshot.from_objects(objects))))


def demo_dump(certificates: list | None = None) -> ZtunnelDump:
    return ZtunnelDump.parse(json.dumps({**demo_config(), "certificates": certificates or []}))


def test_workload_summary_is_istioctls_table():
    assert workload_summary(demo_dump()).splitlines() == [
        "NAMESPACE    POD NAME                 ADDRESS    NODE            WAYPOINT PROTOCOL",
        "ambient-demo httpbin-5c779fc757-9dxfm 10.244.2.6 ambient-worker2 None     HBONE",
        "ambient-demo notready-1               10.244.1.8 ambient-worker  None     HBONE",
        "ambient-demo sleep-7656cf8794-lxcmx   10.244.1.7 ambient-worker  waypoint HBONE",
        "default      outside                  10.244.1.9 ambient-worker  None     TCP",
    ]


def test_workload_filters_are_case_insensitive():
    dump = demo_dump()
    by_namespace = workload_summary(dump, WorkloadFilter(namespace="DEFAULT")).splitlines()
    assert [line.split()[1] for line in by_namespace[1:]] == ["outside"]
    by_node = workload_summary(dump, WorkloadFilter(node="ambient-worker2")).splitlines()
    assert [line.split()[1] for line in by_node[1:]] == ["httpbin-5c779fc757-9dxfm"]
    by_address = workload_summary(dump, WorkloadFilter(address="10.244.1.7")).splitlines()
    assert [line.split()[1] for line in by_address[1:]] == ["sleep-7656cf8794-lxcmx"]


def test_service_summary_counts_healthy_endpoints():
    assert service_summary(demo_dump()).splitlines() == [
        "NAMESPACE    SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS",
        "ambient-demo httpbin      10.96.12.34 None     1/2",
        "ambient-demo sleep        10.96.0.50  None     1/1",
        "ambient-demo waypoint     10.96.0.60  None     0/0",
    ]
    assert service_summary(demo_dump(), "nowhere").splitlines() == [
        "NAMESPACE SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS"]


def test_policy_summary():
    assert policy_summary(demo_dump()).splitlines() == [
        "NAMESPACE    POLICY NAME            ACTION SCOPE",
        "ambient-demo allow-sleep-to-httpbin Allow  WorkloadSelector",
        "istio-system deny-all               Deny   Global",
    ]


CERTIFICATES = [
    {"identity": "spiffe://cluster.local/ns/ambient-demo/sa/sleep", "state": "Available", "certChain": [
        {"pem": "x", "serialNumber": "307564724378612391645160879542592778778", "validFrom": "2026-01-01T00:00:00Z",
         "expirationTime": "2026-01-02T00:00:00Z"},
        {"pem": "y", "serialNumber": "1", "validFrom": "2025-01-01T00:00:00Z",
         "expirationTime": "2035-01-01T00:00:00Z"}]},
    {"identity": "spiffe://cluster.local/ns/ambient-demo/sa/httpbin", "state": "Initializing", "certChain": []},
    {"identity": "spiffe://cluster.local/ns/default/sa/x", "state": "Unavailable: signing failed", "certChain": []},
]


def test_certificate_summary():
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    widths = (54, 9, 17, 15, 37, 25)  # the longest cell of each column, plus five spaces

    def row(*cells: str) -> str:
        return "".join(c.ljust(w) for c, w in zip(cells, widths)) + cells[-1]

    assert certificate_summary(demo_dump(CERTIFICATES), now).splitlines() == [
        row("CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"),
        row("spiffe://cluster.local/ns/ambient-demo/sa/sleep", "Leaf", "Available", "true",
            "e762cfae32a3b8e3e50cb9abad32b21a", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
        row("spiffe://cluster.local/ns/ambient-demo/sa/sleep", "Root", "Available", "true", "1",
            "2035-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        row("spiffe://cluster.local/ns/ambient-demo/sa/httpbin", "NA", "Initializing", "false", "NA", "NA", "NA"),
        row("spiffe://cluster.local/ns/default/sa/x", "NA", "Unavailable", "false", "NA", "NA", "NA"),
    ]


def test_full_summary_puts_a_blank_line_before_each_table():
    lines = full_summary(demo_dump(CERTIFICATES)).splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith(("NAMESPACE", "CERTIFICATE"))]
    assert [lines[i - 1] for i in headers] == ["", "", "", ""]
    assert lines[0] == ""


def test_json_has_istioctls_fields_in_order_with_go_zero_values():
    dump = demo_dump()
    sleep = next(w for w in dump.workloads if w["name"].startswith("sleep"))
    assert list(sleep) == ["uid", "workloadIps", "waypoint", "protocol", "name", "namespace", "serviceAccount",
                           "workloadName", "workloadType", "canonicalName", "canonicalRevision", "clusterId",
                           "trustDomain", "locality", "node", "status", "hostname", "applicationTunnel"]
    assert sleep["locality"] == {} and sleep["applicationTunnel"] == {"protocol": ""} and sleep["hostname"] == ""
    assert sleep["waypoint"] == {"destination": "/10.96.0.60"}  # hboneMtlsPort is not istioctl's
    httpbin = next(s for s in dump.services if s["name"] == "httpbin")
    assert list(httpbin) == ["name", "namespace", "hostname", "vips", "ports", "endpoints", "ipFamilies"]
    endpoint = next(iter(httpbin["endpoints"].values()))
    assert list(endpoint) == ["workloadUid", "service", "port"] and endpoint["port"] == {"8000": 8080}
    policy = next(p for p in dump.policies if p["name"] == "allow-sleep-to-httpbin")
    assert policy["rules"] == [[[{"principals": [{"Exact": "cluster.local/ns/ambient-demo/sa/sleep"}]}]]]
    text = dump_text(dump.policies, "json")
    assert text.startswith('[\n    {\n        "name": "allow-sleep-to-httpbin",\n') and text.endswith("]\n")


def test_json_escapes_html_and_sorts_map_keys_as_strings():
    assert go_json({"a": "<&>"}) == '{\n    "a": "\\u003c\\u0026\\u003e"\n}'
    service = ZtunnelDump.parse(json.dumps({"services": {"x": {"name": "s", "ports": {"9080": 1, "15008": 2, "80": 3},
                                                               "endpoints": None}}})).services[0]
    assert list(service["ports"]) == ["15008", "80", "9080"] and service["endpoints"] is None


def test_yaml_output_is_sorted_and_ends_with_a_blank_line():
    text = dump_text(demo_dump().policies, "yaml")
    assert text.endswith("\n\n")
    assert yaml.safe_load(text)[0]["action"] == "Allow"
    assert text.startswith("- action: Allow\n")
