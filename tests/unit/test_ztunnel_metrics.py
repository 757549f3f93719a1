"""Istio's TCP metrics as ztunnel exports them: names, label order and values, failures, bytes."""

from __future__ import annotations

from typing import Any

from components.ztunnel.metrics import (
    LABEL_NAMES, OPEN_METRICS, PLAIN_TEXT, Metrics, TrafficLabels, content_type, labels_for,
)

Obj = dict[str, Any]


def pod_workload(name: str, workload_name: str, sa: str, app: str, namespace: str = "default") -> Obj:
    """A Workload as istiod sends it (components/istiod/translate/workloads.py)."""
    return {
        "uid": f"Kubernetes//Pod/{namespace}/{name}", "name": name, "namespace": namespace,
        "workloadIps": ["10.244.1.5"], "serviceAccount": sa, "trustDomain": "cluster.local", "node": "worker",
        "protocol": "HBONE", "networkMode": "Standard", "workloadName": workload_name, "workloadType": "pod",
        "canonicalName": app, "canonicalRevision": "v1", "clusterId": "Kubernetes", "status": "Healthy",
        "authorizationPolicies": [], "services": [f"{namespace}/{app}.{namespace}.svc.cluster.local"],
    }


SLEEP = pod_workload("sleep-7656cf8794-8fhdk", "sleep", "sleep", "sleep")
HTTPBIN = pod_workload("httpbin-65975d4c6f-96kgw", "httpbin", "httpbin", "httpbin")
HTTPBIN_SERVICE = {"name": "httpbin", "namespace": "default", "hostname": "httpbin.default.svc.cluster.local",
                   "vips": ["/10.96.0.20"], "ports": {"8000": 8080}}
SLEEP_ID = "spiffe://cluster.local/ns/default/sa/sleep"
HTTPBIN_ID = "spiffe://cluster.local/ns/default/sa/httpbin"

OUTBOUND_LABELS = (
    'reporter="source",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="v1",'
    'source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",'
    'source_app="sleep",source_version="v1",source_cluster="Kubernetes",'
    'destination_service="httpbin.default.svc.cluster.local",destination_service_namespace="default",'
    'destination_service_name="httpbin",destination_workload="httpbin",destination_canonical_service="httpbin",'
    'destination_canonical_revision="v1",destination_workload_namespace="default",'
    'destination_principal="spiffe://cluster.local/ns/default/sa/httpbin",destination_app="httpbin",'
    'destination_version="v1",destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",'
    'connection_security_policy="mutual_tls",source_region="unknown",source_zone="unknown",'
    'destination_region="unknown",destination_zone="unknown"'
)


def series(metrics: Metrics) -> dict[str, str]:
    """`name{labels}` -> value of every sample rendered."""
    body, _ = metrics.render()
    result = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            result[name] = value
    return result


def outbound() -> TrafficLabels:
    return labels_for("source", SLEEP, SLEEP_ID, HTTPBIN, HTTPBIN_SERVICE, None, "mutual_tls")


def test_label_names_in_ztunnel_order() -> None:
    assert LABEL_NAMES == (
        "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
        "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
        "destination_service", "destination_service_namespace", "destination_service_name",
        "destination_workload", "destination_canonical_service", "destination_canonical_revision",
        "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
        "destination_cluster", "request_protocol", "response_flags", "connection_security_policy",
        "source_region", "source_zone", "destination_region", "destination_zone")


def test_defaults() -> None:
    labels = TrafficLabels("destination")
    assert labels.values() == ("destination",) + ("unknown",) * 19 + ("tcp", "-", "unknown") + ("unknown",) * 4


def test_outbound_hbone_connection() -> None:
    metrics = Metrics()
    metrics.opened(outbound())
    assert series(metrics)["istio_tcp_connections_opened_total{" + OUTBOUND_LABELS + "}"] == "1"


def test_inbound_plaintext_connection() -> None:
    """From outside the mesh: no source workload or identity; the destination principal is the
    workload's own identity even without mTLS."""
    labels = labels_for("destination", None, None, HTTPBIN, None, None, "unknown")
    assert labels == TrafficLabels(
        "destination", destination_workload="httpbin", destination_canonical_service="httpbin",
        destination_canonical_revision="v1", destination_workload_namespace="default",
        destination_principal=HTTPBIN_ID, destination_app="httpbin", destination_version="v1",
        destination_cluster="Kubernetes")
    metrics = Metrics()
    metrics.opened(labels)
    metrics.closed(labels)
    rendered = series(metrics)
    expected = (
        '{reporter="destination",source_workload="unknown",source_canonical_service="unknown",'
        'source_canonical_revision="unknown",source_workload_namespace="unknown",source_principal="unknown",'
        'source_app="unknown",source_version="unknown",source_cluster="unknown",destination_service="unknown",'
        'destination_service_namespace="unknown",destination_service_name="unknown",'
        'destination_workload="httpbin",destination_canonical_service="httpbin",'
        'destination_canonical_revision="v1",destination_workload_namespace="default",'
        'destination_principal="spiffe://cluster.local/ns/default/sa/httpbin",destination_app="httpbin",'
        'destination_version="v1",destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",'
        'connection_security_policy="unknown",source_region="unknown",source_zone="unknown",'
        'destination_region="unknown",destination_zone="unknown"}')
    assert rendered["istio_tcp_connections_opened_total" + expected] == "1"
    assert rendered["istio_tcp_connections_closed_total" + expected] == "1"


def test_inbound_hbone_takes_the_peer_identity() -> None:
    labels = labels_for("destination", SLEEP, SLEEP_ID, HTTPBIN, None, HTTPBIN_ID, "mutual_tls")
    assert (labels.source_principal, labels.source_workload, labels.destination_principal) == (
        SLEEP_ID, "sleep", HTTPBIN_ID)
    assert labels_for("source", SLEEP, None, HTTPBIN, None, "spiffe://td/ns/x/sa/y", "mutual_tls") \
        .destination_principal == "spiffe://td/ns/x/sa/y"


def test_missing_workload_fields_are_unknown_and_identity_defaults() -> None:
    bare = {"name": "p", "namespace": "ns", "workloadIps": ["10.0.0.1"], "canonicalName": ""}
    labels = labels_for("source", bare, None, bare, None, None, "unknown")
    assert (labels.source_workload, labels.source_canonical_service, labels.source_cluster) == (
        "unknown", "unknown", "unknown")
    assert labels.destination_principal == "spiffe://cluster.local/ns/ns/sa/default"


def test_locality_labels() -> None:
    located = dict(HTTPBIN, locality={"region": "eu", "zone": "eu-1", "subzone": "a"})
    labels = labels_for("source", SLEEP, SLEEP_ID, located, HTTPBIN_SERVICE, None, "mutual_tls")
    assert (labels.source_region, labels.destination_region, labels.destination_zone) == ("unknown", "eu", "eu-1")


def test_deny_counts_as_failed() -> None:
    metrics = Metrics()
    labels = labels_for("destination", SLEEP, SLEEP_ID, HTTPBIN, None, None, "mutual_tls")
    denied = labels.with_flags("DENY")
    metrics.opened(labels)
    metrics.closed(denied)
    assert metrics.failed(denied)
    assert not metrics.failed(labels)
    rendered = series(metrics)
    flags = {name.split("{")[0]: name.split('response_flags="')[1].split('"')[0] for name in rendered
             if name.startswith("istio_tcp_connections_")}
    assert flags == {"istio_tcp_connections_opened_total": "-", "istio_tcp_connections_closed_total": "DENY",
                     "istio_tcp_connections_failed_total": "DENY"}
    assert sum(v == "1" for k, v in rendered.items() if k.startswith("istio_tcp_connections_failed_total")) == 1


def test_failure_flags() -> None:
    metrics = Metrics()
    labels = outbound()
    for flag in ("CONNECT", "DENY", "TLS_FAILURE", "H2_HANDSHAKE_FAILURE", "NETWORK_POLICY", "IDENTITY_ERROR",
                 "CERT_REVOKED"):
        assert metrics.failed(labels.with_flags(flag))
    assert not metrics.failed(labels)


def test_bytes_are_reported_backwards_on_both_sides() -> None:
    """ztunnel's service_loadbalancing test: the client sends 11 bytes and receives 22."""
    metrics = Metrics()
    src = outbound()
    dst = labels_for("destination", SLEEP, SLEEP_ID, HTTPBIN, None, HTTPBIN_ID, "mutual_tls")
    for labels in (src, dst):
        metrics.add_bytes(labels, received_from_client=5, sent_to_client=0)
        metrics.add_bytes(labels, received_from_client=6, sent_to_client=22)
    rendered = series(metrics)
    for reporter in ("source", "destination"):
        received = [v for k, v in rendered.items()
                    if k.startswith("istio_tcp_received_bytes_total") and f'reporter="{reporter}"' in k]
        sent = [v for k, v in rendered.items()
                if k.startswith("istio_tcp_sent_bytes_total") and f'reporter="{reporter}"' in k]
        assert (received, sent) == (["11"], ["22"])


def test_equal_labels_share_a_series() -> None:
    metrics = Metrics()
    metrics.add_bytes(outbound(), 1, 2)
    metrics.add_bytes(outbound(), 3, 4)
    assert series(metrics)["istio_tcp_received_bytes_total{" + OUTBOUND_LABELS + "}"] == "4"
    assert hash(outbound()) == hash(outbound())


def test_render_format() -> None:
    metrics = Metrics()
    metrics.socket_opened("source")
    metrics.socket_opened("source")
    metrics.socket_closed("source")
    metrics.set_proxy_counts(active=2, pending=1)
    metrics.proxy_started()
    metrics.proxy_started()
    metrics.proxy_stopped()
    body, kind = metrics.render()
    assert kind == PLAIN_TEXT
    assert body.decode() == (
        "# HELP istio_build Istio component build info.\n"
        "# TYPE istio_build gauge\n"
        'istio_build{component="ztunnel",tag="1.24.0"} 1\n'
        "# HELP istio_tcp_connections_opened The total number of TCP connections opened.\n"
        "# TYPE istio_tcp_connections_opened counter\n"
        "# HELP istio_tcp_connections_closed The total number of TCP connections closed.\n"
        "# TYPE istio_tcp_connections_closed counter\n"
        "# HELP istio_tcp_received_bytes The size of total bytes received during request in case of a TCP "
        "connection.\n"
        "# TYPE istio_tcp_received_bytes counter\n"
        "# HELP istio_tcp_sent_bytes The size of total bytes sent during response in case of a TCP connection.\n"
        "# TYPE istio_tcp_sent_bytes counter\n"
        "# HELP istio_tcp_connections_failed The total number of TCP connections that failed to establish "
        "(unstable).\n"
        "# TYPE istio_tcp_connections_failed counter\n"
        "# HELP istio_tcp_sockets_open The current number of open TCP sockets (unstable).\n"
        "# TYPE istio_tcp_sockets_open gauge\n"
        'istio_tcp_sockets_open{reporter="source"} 1\n'
        "# HELP workload_manager_active_proxy_count The total number current workloads with active proxies "
        "(unstable).\n"
        "# TYPE workload_manager_active_proxy_count gauge\n"
        "workload_manager_active_proxy_count 2\n"
        "# HELP workload_manager_pending_proxy_count The total number current workloads with pending proxies "
        "(unstable).\n"
        "# TYPE workload_manager_pending_proxy_count gauge\n"
        "workload_manager_pending_proxy_count 1\n"
        "# HELP workload_manager_proxies_started The total number of proxies that were started (unstable).\n"
        "# TYPE workload_manager_proxies_started counter\n"
        "workload_manager_proxies_started_total 2\n"
        "# HELP workload_manager_proxies_stopped The total number of proxies that were stopped (unstable).\n"
        "# TYPE workload_manager_proxies_stopped counter\n"
        "workload_manager_proxies_stopped_total 1\n"
        "# EOF\n")


def test_content_type_follows_accept() -> None:
    assert content_type(None) == PLAIN_TEXT
    assert content_type("application/json") == PLAIN_TEXT
    assert content_type("application/openmetrics-text; other stuff") == OPEN_METRICS
    assert content_type("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;q=0.6,"
                        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2") \
        == OPEN_METRICS
    assert Metrics().render("application/openmetrics-text")[1] == OPEN_METRICS


def test_istio_version_is_a_parameter() -> None:
    assert b'istio_build{component="ztunnel",tag="1.25.1"} 1' in Metrics("1.25.1").render()[0]
