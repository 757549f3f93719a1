"""CoreDNS's Prometheus metrics (the `prometheus :9153` plugin), for the queries this server answers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest

VERSION = "1.11.1"
GO_VERSION = "go1.20.7"
REVISION = "ae2bbc2"

disable_created_metrics()


class Metrics:
    """coredns_build_info, coredns_dns_requests_total and coredns_dns_responses_total."""

    def __init__(self, server: str):
        self.server = server
        self.registry = CollectorRegistry()
        build_info = Gauge("coredns_build_info", "A metric with a constant '1' value labeled by version, "
                           "revision, and goversion from which CoreDNS was built.",
                           ["goversion", "revision", "version"], registry=self.registry)
        build_info.labels(GO_VERSION, REVISION, VERSION).set(1)
        self.requests = Counter("coredns_dns_requests", "Counter of DNS requests made per zone, protocol and "
                                "family.", ["server", "zone", "view", "proto", "family", "type"],
                                registry=self.registry)
        self.responses = Counter("coredns_dns_responses", "Counter of response status codes.",
                                 ["server", "zone", "view", "rcode", "plugin"], registry=self.registry)

    def observe(self, proto: str, family: int, qtype: str, rcode: str) -> None:
        self.requests.labels(self.server, ".", "", proto, str(family), qtype).inc()
        self.responses.labels(self.server, ".", "", rcode, "kubernetes").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
