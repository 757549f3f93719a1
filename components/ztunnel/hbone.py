"""HBONE's HTTP/2 CONNECT, as pure functions: the request ztunnel sends and what it parses back.

The request (`outbound.rs::create_hbone_request`): `:method CONNECT`, `:authority <ip:port>` and
exactly three headers, `baggage` (the source workload), `forwarded` (`for="<client ip:port>"`,
plus `;host=<service hostname>` when the client addressed a service) and a fresh W3C
`traceparent` per connection. The inbound side reads the trace id for its log span and the
`host=` for the service it reports (reference 1.3).
"""

from __future__ import annotations

import http
import ipaddress
import secrets
from dataclasses import dataclass

from components.common.addresses import Address, format_address
from components.ztunnel.state import Service, Workload

Headers = list[tuple[str, str]]

BAGGAGE = "baggage"
FORWARDED = "forwarded"
TRACEPARENT = "traceparent"


@dataclass(frozen=True)
class TraceParent:
    """W3C trace context; ztunnel logs the trace id as the connection's `id`."""

    trace_id: int
    parent_id: int
    version: int = 0
    flags: int = 0

    @classmethod
    def new(cls) -> "TraceParent":
        return cls(secrets.randbits(128), secrets.randbits(64))

    @classmethod
    def parse(cls, text: str | None) -> "TraceParent | None":
        if text is None or len(text) != 55:
            return None
        parts = text.split("-")
        if len(parts) != 4 or [len(p) for p in parts] != [2, 32, 16, 2]:
            return None
        try:
            return cls(int(parts[1], 16), int(parts[2], 16), int(parts[0], 16), int(parts[3], 16))
        except ValueError:
            return None

    @property
    def id(self) -> str:
        return f"{self.trace_id:032x}"

    def header(self) -> str:
        return f"{self.version:02x}-{self.trace_id:032x}-{self.parent_id:016x}-{self.flags:02x}"


def baggage(workload: Workload) -> str:
    """`k8s.cluster.name=..,k8s.namespace.name=..,k8s.<type>.name=..,service.name=..,
    service.version=..[,cloud.region=..,cloud.availability_zone=..]`, empty entries left out."""
    entries = [
        ("k8s.cluster.name", workload.cluster_id),
        ("k8s.namespace.name", workload.namespace),
        (f"k8s.{workload.workload_type or 'pod'}.name", workload.workload_name),
        ("service.name", workload.canonical_name),
        ("service.version", workload.canonical_revision),
        ("cloud.region", workload.region),
        ("cloud.availability_zone", workload.zone),
    ]
    return ",".join(f"{key}={value}" for key, value in entries if value)


def forwarded(client: Address, service: Service | None) -> str:
    if service is None:
        return f'for="{format_address(client)}"'
    return f'for="{format_address(client)}";host={service.hostname}'


def parse_forwarded_host(value: str | None) -> str | None:
    """`host=` of a Forwarded header (quotes stripped), as ztunnel's `parse_forwarded_host`."""
    if value is None or not value.isascii():
        return None
    for part in value.split(";"):
        part = part.strip()
        if part.startswith("host="):
            host = part[len("host="):].removeprefix('"').removesuffix('"')
            return host or None
    return None


def connect_headers(source: Workload, client: Address, service: Service | None,
                    trace: TraceParent) -> Headers:
    """The CONNECT request's headers, in ztunnel's order."""
    return [(BAGGAGE, baggage(source)), (FORWARDED, forwarded(client, service)),
            (TRACEPARENT, trace.header())]


def status_text(status: int) -> str:
    """`401 Unauthorized`, as Rust's http::StatusCode displays."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} <unknown status code>"


@dataclass(frozen=True)
class Authority:
    """A CONNECT authority: an IP and port, or a service hostname and port."""

    host: str
    port: int
    is_ip: bool

    @property
    def address(self) -> Address:
        return self.host, self.port

    def __str__(self) -> str:
        return format_address(self.address) if self.is_ip else f"{self.host}:{self.port}"


class InvalidAuthority(ValueError):
    def __init__(self, text: str | None) -> None:
        super().__init__(f"no valid authority pseudo header: {text or ''}")


def parse_authority(text: str | None) -> Authority:
    """`ip:port`, `[ipv6]:port` or `host:port`; anything else is InvalidAuthority."""
    if not text or any(c in text for c in "/?#@ \t"):
        raise InvalidAuthority(text)
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise InvalidAuthority(text)
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise InvalidAuthority(text)
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise InvalidAuthority(text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if text.startswith("["):
            raise InvalidAuthority(text) from None
        return Authority(host.lower(), int(port), False)
    return Authority(str(ip), int(port), True)
