"""The waypoint's request telemetry: Istio's standard HTTP metrics with `reporter="waypoint"`
(served on 15020 at /stats/prometheus) and Envoy's access-log line for each request.

Labels are those of Istio's stats plugin for HTTP (istio.io reference/config/metrics), in the
order Envoy prints them; an unknown peer value is `unknown`. Durations are in milliseconds with
Envoy's default histogram buckets. The text is Envoy's `/stats/prometheus`: `# TYPE` lines, no
HELP, integer counters.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from components.waypoint.mesh import Service, Workload

UNKNOWN = "unknown"
WAYPOINT = "waypoint"
SOURCE = "source"
MUTUAL_TLS = "mutual_tls"
NO_FLAGS = "-"
ENVOY_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                 600000, 1800000, 3600000)
LABELS = (
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
    "destination_version", "destination_service", "destination_canonical_service",
    "destination_canonical_revision", "destination_service_name", "destination_service_namespace",
    "destination_cluster", "request_protocol", "response_code", "grpc_response_status", "response_flags",
    "connection_security_policy",
)


@dataclass(frozen=True)
class Exchange:
    """One request as the waypoint saw it, for its metrics and its log line."""

    method: str
    path: str
    protocol: str
    authority: str
    status: int
    flags: str
    details: str
    bytes_received: int
    bytes_sent: int
    duration_ms: float
    upstream_time_ms: float | None
    source: Workload | None
    source_principal: str | None          # the peer's SPIFFE id (None: plain HTTP to a gateway)
    source_address: str
    destination: Workload | None
    service: Service | None
    cluster: str                          # Envoy's upstream cluster name, "" if none was chosen
    upstream_host: str
    local_address: str
    user_agent: str
    request_id: str
    forwarded_for: str
    route_name: str


def _known(value: str | None) -> str:
    return value or UNKNOWN


def metric_labels(exchange: Exchange, reporter: str = WAYPOINT) -> dict[str, str]:
    """A waypoint reports `waypoint` and mutual TLS (it only takes HBONE); an ingress gateway
    reports as the source of the request, with the client connection's security `unknown`."""
    src, dst, svc = exchange.source, exchange.destination, exchange.service
    return {
        "reporter": reporter,
        "source_workload": _known(src.workload_name if src else None),
        "source_canonical_service": _known(src.canonical_name if src else None),
        "source_canonical_revision": _known(src.canonical_revision if src else None),
        "source_workload_namespace": _known(src.namespace if src else None),
        "source_principal": _known(exchange.source_principal),
        "source_app": _known(src.canonical_name if src else None),
        "source_version": _known(src.canonical_revision if src else None),
        "source_cluster": _known(src.cluster_id if src else None),
        "destination_workload": _known(dst.workload_name if dst else None),
        "destination_workload_namespace": _known(dst.namespace if dst else None),
        "destination_principal": _known(dst.spiffe_id if dst else None),
        "destination_app": _known(dst.canonical_name if dst else None),
        "destination_version": _known(dst.canonical_revision if dst else None),
        "destination_service": _known(svc.hostname if svc else None),
        "destination_canonical_service": _known(dst.canonical_name if dst else None),
        "destination_canonical_revision": _known(dst.canonical_revision if dst else None),
        "destination_service_name": _known(svc.name if svc else None),
        "destination_service_namespace": _known(svc.namespace if svc else None),
        "destination_cluster": _known(dst.cluster_id if dst else None),
        "request_protocol": "http",
        "response_code": str(exchange.status),
        "grpc_response_status": "",
        "response_flags": exchange.flags,
        "connection_security_policy": MUTUAL_TLS if reporter == WAYPOINT else UNKNOWN,
    }


class _Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * len(ENVOY_BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(ENVOY_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
        self.total += value
        self.count += 1


def _label_text(labels: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{name}="{value}"' for name, value in zip(LABELS, labels)]
    return "{" + ",".join(pairs + ([extra] if extra else [])) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


class Metrics:
    HISTOGRAMS = ("istio_request_bytes", "istio_request_duration_milliseconds", "istio_response_bytes")

    def __init__(self, reporter: str = WAYPOINT) -> None:
        self.reporter = reporter
        self.requests: dict[tuple[str, ...], int] = {}
        self.histograms: dict[str, dict[tuple[str, ...], _Histogram]] = {name: {} for name in self.HISTOGRAMS}

    def record(self, exchange: Exchange) -> None:
        all_labels = metric_labels(exchange, self.reporter)
        labels = tuple(all_labels[name] for name in LABELS)
        self.requests[labels] = self.requests.get(labels, 0) + 1
        for name, value in (("istio_request_bytes", exchange.bytes_received),
                            ("istio_request_duration_milliseconds", exchange.duration_ms),
                            ("istio_response_bytes", exchange.bytes_sent)):
            self.histograms[name].setdefault(labels, _Histogram()).observe(value)

    def render(self) -> bytes:
        lines = ["# TYPE istio_requests_total counter"]
        lines += [f"istio_requests_total{_label_text(labels)} {count}" for labels, count in self.requests.items()]
        for name in self.HISTOGRAMS:
            lines.append(f"# TYPE {name} histogram")
            for labels, histogram in self.histograms[name].items():
                bounds = [_number(b) for b in ENVOY_BUCKETS] + ["+Inf"]
                for bound, count in zip(bounds, histogram.buckets + [histogram.count]):
                    le = 'le="' + bound + '"'
                    lines.append(f"{name}_bucket{_label_text(labels, le)} {count}")
                lines.append(f"{name}_sum{_label_text(labels)} {_number(histogram.total)}")
                lines.append(f"{name}_count{_label_text(labels)} {histogram.count}")
        return ("\n".join(lines) + "\n").encode()


def _quoted(value: str) -> str:
    return f'"{value or "-"}"'


def access_log_line(exchange: Exchange, start: datetime.datetime) -> str:
    """Istio's default Envoy access-log format (TEXT), one request."""
    stamp = start.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
    upstream_time = f"{exchange.upstream_time_ms:.0f}" if exchange.upstream_time_ms is not None else "-"
    return (f'[{stamp}] "{exchange.method} {exchange.path} {exchange.protocol}" {exchange.status} {exchange.flags} '
            f'{exchange.details or "-"} - "-" {exchange.bytes_received} {exchange.bytes_sent} '
            f'{exchange.duration_ms:.0f} {upstream_time} {_quoted(exchange.forwarded_for)} '
            f'{_quoted(exchange.user_agent)} {_quoted(exchange.request_id)} {_quoted(exchange.authority)} '
            f'{_quoted(exchange.upstream_host)} {exchange.cluster or "-"} - {exchange.local_address} {exchange.source_address} - '
            f'{exchange.route_name or "default"}')
