"""Istio's TCP metrics as ztunnel exports them (`src/proxy/metrics.rs`, `src/metrics/meta.rs`,
`src/inpod/metrics.rs`), served on 15020 at `/metrics` and `/stats/prometheus`.

Byte counters follow Istio's convention, the reverse of the access log's (istio/istio#32399):
`istio_tcp_received_bytes_total` counts client→server bytes and `istio_tcp_sent_bytes_total`
server→client bytes, on both reporters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric

Obj = dict[str, Any]

SOURCE = "source"
DESTINATION = "destination"
MUTUAL_TLS = "mutual_tls"
UNKNOWN = "unknown"
NO_FLAGS = "-"
# response_flags that also count in istio_tcp_connections_failed_total.
FAILURE_FLAGS = frozenset({
    "CONNECT", "DENY", "TLS_FAILURE", "H2_HANDSHAKE_FAILURE", "NETWORK_POLICY", "IDENTITY_ERROR",
    "CERT_REVOKED",
})
ISTIO_VERSION = "1.24.0"

PLAIN_TEXT = "text/plain; charset=utf-8"
OPEN_METRICS = "application/openmetrics-text;charset=utf-8;version=1.0.0"


@dataclass(frozen=True)
class TrafficLabels:
    """CommonTrafficLabels in ztunnel's order; a missing value is `unknown`. The locality labels
    come last: ztunnel adds them whenever it knows a source or destination workload, which is
    every connection it reports."""

    reporter: str
    source_workload: str = UNKNOWN
    source_canonical_service: str = UNKNOWN
    source_canonical_revision: str = UNKNOWN
    source_workload_namespace: str = UNKNOWN
    source_principal: str = UNKNOWN
    source_app: str = UNKNOWN
    source_version: str = UNKNOWN
    source_cluster: str = UNKNOWN
    destination_service: str = UNKNOWN
    destination_service_namespace: str = UNKNOWN
    destination_service_name: str = UNKNOWN
    destination_workload: str = UNKNOWN
    destination_canonical_service: str = UNKNOWN
    destination_canonical_revision: str = UNKNOWN
    destination_workload_namespace: str = UNKNOWN
    destination_principal: str = UNKNOWN
    destination_app: str = UNKNOWN
    destination_version: str = UNKNOWN
    destination_cluster: str = UNKNOWN
    request_protocol: str = "tcp"
    response_flags: str = NO_FLAGS
    connection_security_policy: str = UNKNOWN
    source_region: str = UNKNOWN
    source_zone: str = UNKNOWN
    destination_region: str = UNKNOWN
    destination_zone: str = UNKNOWN

    def __post_init__(self) -> None:
        values = tuple(getattr(self, f.name) for f in dataclasses.fields(self))
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_hash", hash(values))

    def __hash__(self) -> int:  # cached: labels are dict keys on the data path
        return self._hash  # type: ignore[attr-defined,no-any-return]

    def values(self) -> tuple[str, ...]:
        """The label values in LABEL_NAMES order."""
        return self._values  # type: ignore[attr-defined,no-any-return]

    def with_flags(self, flags: str) -> TrafficLabels:
        """The same labels with another response_flags (ztunnel sets it when a connection ends)."""
        return dataclasses.replace(self, response_flags=flags)


LABEL_NAMES = tuple(f.name for f in dataclasses.fields(TrafficLabels))


def _known(value: Any) -> str:
    """ztunnel's DefaultedUnknown: an empty or missing value is `unknown`."""
    return value if isinstance(value, str) and value else UNKNOWN


def workload_identity(workload: Obj) -> str:
    """A workload's SPIFFE identity, with ztunnel's defaults for a missing trust domain and
    service account."""
    return (f"spiffe://{workload.get('trustDomain') or 'cluster.local'}/ns/{workload.get('namespace', '')}"
            f"/sa/{workload.get('serviceAccount') or 'default'}")


def labels_for(reporter: str, source_workload: Obj | None, source_identity: str | None,
               destination_workload: Obj | None, destination_service: Obj | None,
               destination_identity: str | None, security: str, flags: str = NO_FLAGS) -> TrafficLabels:
    """The labels of one connection from ztunnel's Workload and Service dicts.

    `source_identity` is the peer's verified identity (inbound HBONE) or our own (outbound HBONE),
    else None: ztunnel never takes source_principal from the workload. destination_principal is
    `destination_identity` when given (an identity verified in the handshake), else the
    destination workload's identity. `security` is `mutual_tls` for HBONE, else `unknown`.
    """
    fields: dict[str, str] = {}
    if source_workload is not None:
        src = source_workload
        locality = src.get("locality") or {}
        fields.update(
            source_workload=_known(src.get("workloadName")),
            source_canonical_service=_known(src.get("canonicalName")),
            source_canonical_revision=_known(src.get("canonicalRevision")),
            source_workload_namespace=_known(src.get("namespace")),
            source_app=_known(src.get("canonicalName")),
            source_version=_known(src.get("canonicalRevision")),
            source_cluster=_known(src.get("clusterId")),
            source_region=_known(locality.get("region")),
            source_zone=_known(locality.get("zone")),
        )
    if source_identity:
        fields["source_principal"] = source_identity
    if destination_workload is not None:
        dst = destination_workload
        locality = dst.get("locality") or {}
        fields.update(
            destination_workload=_known(dst.get("workloadName")),
            destination_canonical_service=_known(dst.get("canonicalName")),
            destination_canonical_revision=_known(dst.get("canonicalRevision")),
            destination_workload_namespace=_known(dst.get("namespace")),
            destination_principal=workload_identity(dst),
            destination_app=_known(dst.get("canonicalName")),
            destination_version=_known(dst.get("canonicalRevision")),
            destination_cluster=_known(dst.get("clusterId")),
            destination_region=_known(locality.get("region")),
            destination_zone=_known(locality.get("zone")),
        )
    if destination_identity:
        fields["destination_principal"] = destination_identity
    if destination_service is not None:
        fields.update(
            destination_service=_known(destination_service.get("hostname")),
            destination_service_name=_known(destination_service.get("name")),
            destination_service_namespace=_known(destination_service.get("namespace")),
        )
    return TrafficLabels(reporter, response_flags=flags, connection_security_policy=security, **fields)


class _Family:
    """A labelled counter with its children cached by TrafficLabels: a prometheus `labels()`
    lookup per write would dominate the cost of counting bytes. Children are made on first use,
    so only series that happened are exported, as ztunnel's `get_or_create` does."""

    __slots__ = ("metric", "_children")

    def __init__(self, metric: Counter) -> None:
        self.metric = metric
        self._children: dict[TrafficLabels, Counter] = {}

    def of(self, labels: TrafficLabels) -> Counter:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels.values())
        return child


class Metrics:
    """ztunnel's registry: istio_build, the TCP metrics, and the in-pod workload manager's."""

    def __init__(self, istio_version: str = ISTIO_VERSION) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        build = Gauge("istio_build", "Istio component build info", ["component", "tag"], registry=r)
        build.labels("ztunnel", istio_version).set(1)
        self.connections_opened = _Family(Counter(
            "istio_tcp_connections_opened", "The total number of TCP connections opened", LABEL_NAMES, registry=r))
        self.connections_closed = _Family(Counter(
            "istio_tcp_connections_closed", "The total number of TCP connections closed", LABEL_NAMES, registry=r))
        self.received_bytes = _Family(Counter(
            "istio_tcp_received_bytes",
            "The size of total bytes received during request in case of a TCP connection", LABEL_NAMES, registry=r))
        self.sent_bytes = _Family(Counter(
            "istio_tcp_sent_bytes",
            "The size of total bytes sent during response in case of a TCP connection", LABEL_NAMES, registry=r))
        self.connections_failed = _Family(Counter(
            "istio_tcp_connections_failed",
            "The total number of TCP connections that failed to establish (unstable)", LABEL_NAMES, registry=r))
        self.sockets_open = Gauge(
            "istio_tcp_sockets_open", "The current number of open TCP sockets (unstable)", ["reporter"], registry=r)
        self.active_proxies = Gauge(
            "workload_manager_active_proxy_count",
            "The total number current workloads with active proxies (unstable)", registry=r)
        self.pending_proxies = Gauge(
            "workload_manager_pending_proxy_count",
            "The total number current workloads with pending proxies (unstable)", registry=r)
        self.proxies_started = Counter(
            "workload_manager_proxies_started", "The total number of proxies that were started (unstable)", registry=r)
        self.proxies_stopped = Counter(
            "workload_manager_proxies_stopped", "The total number of proxies that were stopped (unstable)", registry=r)

    def opened(self, labels: TrafficLabels) -> None:
        """A connection was accepted (ztunnel counts it with response_flags `-`). Its byte series
        appear now, at 0, as ztunnel binds them when the connection opens."""
        self.received_bytes.of(labels)
        self.sent_bytes.of(labels)
        self.connections_opened.of(labels).inc()

    def add_bytes(self, labels: TrafficLabels, received_from_client: int, sent_to_client: int) -> None:
        """Bytes as they flow, so a long connection's progress shows. Use the labels the
        connection opened with: ztunnel binds its byte counters before the final flags are known."""
        if received_from_client:
            self.received_bytes.of(labels).inc(received_from_client)
        if sent_to_client:
            self.sent_bytes.of(labels).inc(sent_to_client)

    def closed(self, labels: TrafficLabels) -> None:
        """A connection ended, with its final response_flags. ztunnel also calls `failed` then."""
        self.connections_closed.of(labels).inc()

    def failed(self, labels: TrafficLabels) -> bool:
        """Count a failure if the flags are one ztunnel counts (FAILURE_FLAGS); whether it did."""
        if labels.response_flags not in FAILURE_FLAGS:
            return False
        self.connections_failed.of(labels).inc()
        return True

    def socket_opened(self, reporter: str) -> None:
        self.sockets_open.labels(reporter).inc()

    def socket_closed(self, reporter: str) -> None:
        self.sockets_open.labels(reporter).dec()

    def set_proxy_counts(self, active: int, pending: int) -> None:
        """The in-pod state manager's current workloads with a running and a pending proxy."""
        self.active_proxies.set(active)
        self.pending_proxies.set(pending)

    def proxy_started(self) -> None:
        self.proxies_started.inc()

    def proxy_stopped(self) -> None:
        self.proxies_stopped.inc()

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The body and Content-Type ztunnel answers a scrape with: always the OpenMetrics text
        its encoder writes, labelled as OpenMetrics only when the Accept header asks for it."""
        return encode(self.registry.collect()).encode(), content_type(accept)


def content_type(accept: str | None) -> str:
    """ztunnel's choice: OpenMetrics if any comma-separated Accept entry's media type (before the
    first `;`, untrimmed) is application/openmetrics-text, else plain text."""
    for entry in (accept or "").split(","):
        if entry.lower().split(";")[0] == "application/openmetrics-text":
            return OPEN_METRICS
    return PLAIN_TEXT


def encode(families: Iterable[Metric]) -> str:
    """OpenMetrics text as the Rust prometheus-client writes it: help text ending in a period,
    integer values, no `_created` series, `# EOF` last."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.documentation}.")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            lines.append(f"{sample.name}{_label_set(sample.labels)} {_number(sample.value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _label_set(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)

