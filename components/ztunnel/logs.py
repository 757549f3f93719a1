"""ztunnel's log lines: its plain format (`src/telemetry.rs`), access logs (`src/proxy/metrics.rs`)
and the other lines people grep for (listeners, in-pod state manager, xDS, policy decisions).

A line is `<RFC3339 UTC, µs>Z\\t<level>\\t<target>[:<span>{fields}]...\\t<message>\\t<k=v k=v ...>`,
the tab after the message written even when no field follows. Values print as Rust's Debug:
strings quoted and escaped, numbers and booleans bare; what ztunnel records with `%` (addresses,
ids) prints bare, marked here with `Display`. A field whose value is None is left out, as tracing
leaves out an Option that is None: that is how unknown workloads, identities and clusters vanish.

Targets are Rust module paths printed without `ztunnel::`; access logs use `access`. Python
loggers map onto them: `components.ztunnel.a.b` is `ztunnel::a::b` (so this package's own
`logging.getLogger(__name__)` lines look like ztunnel's) and any other `x.y` is `x::y`.
"""

from __future__ import annotations

import dataclasses
import datetime
import http
import logging
import sys
from dataclasses import dataclass
from typing import Callable, TextIO

from components.ztunnel.metrics import MUTUAL_TLS, SOURCE, UNKNOWN, TrafficLabels
from components.ztunnel.rbac import AuthzLog, Connection

TRACE = 5
OFF = logging.CRITICAL + 10

ACCESS = "access"
INBOUND = "ztunnel::proxy::inbound"
INBOUND_PASSTHROUGH = "ztunnel::proxy::inbound_passthrough"
OUTBOUND = "ztunnel::proxy::outbound"
SOCKS5 = "ztunnel::proxy::socks5"
CONNECTION_MANAGER = "ztunnel::proxy::connection_manager"
STATE = "ztunnel::state"
STATE_MANAGER = "ztunnel::inpod::statemanager"
WORKLOAD_MANAGER = "ztunnel::inpod::workloadmanager"
XDS_CLIENT = "ztunnel::xds::client"

_LISTENER_TARGETS = {"inbound": INBOUND, "inbound plaintext": INBOUND_PASSTHROUGH, "outbound": OUTBOUND,
                     "socks5": SOCKS5}
_LEVEL_NAMES = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                "error": logging.ERROR, "off": OFF}
_PREFIX = "ztunnel::"
_PACKAGE = "components.ztunnel"

# Proxy error texts ztunnel logs (`src/proxy.rs` Error); the policy ones are in rbac.
SELF_CALL = "attempted recursive call to ourselves"
CONNECTION_DRAIN = "connection closed due to connection drain"


def ip_mismatch(sent_to: str, authority: str) -> str:
    """A CONNECT whose authority is not the address it was sent to (answered with 400)."""
    return f"ip mismatch: {sent_to} != {authority}"


def http_status(code: int) -> str:
    """What the client's ztunnel logs for a non-200 CONNECT answer, e.g. 401 on a policy denial."""
    return f"http status: {code} {http.HTTPStatus(code).phrase}"


def no_healthy_upstream(address: str) -> str:
    return f"no healthy upstream: {address}"


def network_policy_timeout(detail: str) -> str:
    """A HBONE connect that timed out."""
    return f"connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008: {detail}"


def os_error(err: OSError) -> str:
    """Rust's io::Error text for an OS error: `Connection refused (os error 111)`."""
    if err.errno is None:
        return str(err)
    return f"{err.strerror} (os error {err.errno})"


def connection_failed_error(err: OSError) -> str:
    """An upstream connect that failed (response_flags CONNECT)."""
    return f"connection failed: {os_error(err)}"


class Display(str):
    """A value ztunnel records with `%`: printed as is, not quoted."""


Field = tuple[str, object]


@dataclass(frozen=True)
class Span:
    """A tracing span the event happened in: `name{k=v ...}` after the target."""

    name: str
    fields: tuple[Field, ...] = ()


def outbound_span(trace_id: str) -> Span:
    return Span("outbound", (("id", Display(trace_id)),))


def inbound_span(trace_id: str, peer: str) -> Span:
    return Span("inbound", (("id", Display(trace_id)), ("peer", Display(peer))))


def proxy_span(namespace: str, name: str) -> Span:
    """The span of an in-pod proxy's tasks."""
    return Span("proxy", (("wl", Display(f"{namespace}/{name}")),))


@dataclass(frozen=True)
class Event:
    """One log line before it is timestamped: a `logging` level, a Rust target, message, fields."""

    level: int
    target: str
    message: str
    fields: tuple[Field, ...] = ()
    spans: tuple[Span, ...] = ()

    def within(self, *spans: Span) -> Event:
        """The event inside these spans (outermost first)."""
        return dataclasses.replace(self, spans=spans + self.spans)

    def line(self, when: float) -> str:
        return format_line(when, self.level, self.target, self.message, self.fields, self.spans)


def level_name(level: int) -> str:
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warn"
    if level >= logging.INFO:
        return "info"
    return "debug" if level >= logging.DEBUG else "trace"


def debug_str(value: str) -> str:
    """Rust's `{:?}` of a string."""
    out = ['"']
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def format_value(value: object) -> str:
    if isinstance(value, Display):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return debug_str(value)
    return str(value)


def format_fields(fields: tuple[Field, ...]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in fields if value is not None)


def format_line(when: float, level: int, target: str, message: str, fields: tuple[Field, ...] = (),
                spans: tuple[Span, ...] = ()) -> str:
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = target.removeprefix(_PREFIX)
    for span in spans:
        span_fields = format_fields(span.fields)
        head += f":{span.name}{{{span_fields}}}" if span_fields else f":{span.name}"
    return f"{stamp}\t{level_name(level)}\t{head}\t{message}\t{format_fields(fields)}"


def logger_name(target: str) -> str:
    """The Python logger of a Rust target."""
    if target == "ztunnel" or target.startswith(_PREFIX):
        return _PACKAGE + target.removeprefix("ztunnel").replace("::", ".")
    return target.replace("::", ".")


def target_of(name: str) -> str:
    """The Rust target of a Python logger."""
    if name == _PACKAGE or name.startswith(_PACKAGE + "."):
        return "ztunnel" + name.removeprefix(_PACKAGE).replace(".", "::")
    return name.replace(".", "::")


def enabled(target: str, level: int) -> bool:
    """Whether an event would be written: check before building costly debug events."""
    return logging.getLogger(logger_name(target)).isEnabledFor(level)


def emit(event: Event) -> None:
    logger = logging.getLogger(logger_name(event.target))
    if logger.isEnabledFor(event.level):
        logger.log(event.level, event.message, extra={"ztunnel_fields": event.fields, "ztunnel_spans": event.spans})


class PlainFormatter(logging.Formatter):
    """ztunnel's plain format for any record; `clock` (seconds since the epoch) replaces the
    record's creation time, for tests."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self._clock = clock

    def format(self, record: logging.LogRecord) -> str:
        when = self._clock() if self._clock is not None else record.created
        line = format_line(when, record.levelno, target_of(record.name), record.getMessage(),
                           getattr(record, "ztunnel_fields", ()), getattr(record, "ztunnel_spans", ()))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_filtered: set[str] = set()


def apply_filter(spec: str) -> None:
    """A RUST_LOG-style filter (`info,access=debug,ztunnel::proxy=trace`) as logger levels: a
    bare level is the default (none: everything off), `target=level` sets a target and what is
    below it (by path component, where tracing compares string prefixes), a bare target enables
    all its levels. Replaces the previous filter."""
    for name in _filtered:
        logging.getLogger(name).setLevel(logging.NOTSET)
    _filtered.clear()
    default = OFF
    for directive in (d.strip() for d in spec.split(",")):
        if not directive:
            continue
        target, eq, level = directive.partition("=")
        if not eq and target.lower() in _LEVEL_NAMES:
            default = _LEVEL_NAMES[target.lower()]
            continue
        if eq and level.lower() not in _LEVEL_NAMES:
            raise ValueError(f"invalid log level in {directive!r}")
        name = logger_name(target)
        logging.getLogger(name).setLevel(_LEVEL_NAMES[level.lower()] if eq else TRACE)
        _filtered.add(name)
    logging.getLogger().setLevel(default)


def setup(spec: str = "info", stream: TextIO | None = None,
          clock: Callable[[], float] | None = None) -> logging.Handler:
    """Send every log record to `stream` (stderr) in ztunnel's plain format, filtered by `spec`
    (pass RUST_LOG when set)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(PlainFormatter(clock))
    logging.getLogger().handlers[:] = [handler]
    apply_filter(spec)
    return handler


def socket_addr(ip: str, port: int) -> str:
    """Rust's SocketAddr display: `10.0.0.1:80`, `[fd00::1]:80`."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def listener_established(address: str, component: str, transparent: bool) -> Event:
    """A proxy listener bound: component `inbound` (15008), `inbound plaintext` (15006),
    `outbound` (15001) or `socks5` (15080), each logged by its own module."""
    if component not in _LISTENER_TARGETS:
        raise ValueError(f"unknown listener component {component!r}")
    return Event(logging.INFO, _LISTENER_TARGETS[component], "listener established",
                 (("address", Display(address)), ("component", component), ("transparent", transparent)))


def log_bytes(direction: str, received_from_client: int, sent_to_client: int) -> tuple[int, int]:
    """(bytes_sent, bytes_recv) as the access log prints them, from the reporting proxy's side:
    the reverse of the metrics' naming for outbound."""
    if direction == "outbound":
        return received_from_client, sent_to_client
    return sent_to_client, received_from_client


@dataclass(frozen=True)
class AccessLog:
    """What ztunnel's access-log lines say about one connection. Workloads are pod names;
    identities are set only for mTLS connections; None fields are not printed."""

    direction: str  # "outbound" (reporter source) or "inbound" (reporter destination)
    src_addr: str
    dst_addr: str  # the L4 next hop: for HBONE `podIP:15008`
    dst_hbone_addr: str | None = None  # the CONNECT authority
    src_workload: str | None = None
    src_namespace: str | None = None
    src_identity: str | None = None
    src_cluster: str | None = None
    dst_service: str | None = None
    dst_workload: str | None = None
    dst_namespace: str | None = None
    dst_identity: str | None = None
    dst_cluster: str | None = None

    @classmethod
    def from_labels(cls, labels: TrafficLabels, src_addr: str, dst_addr: str, dst_hbone_addr: str | None = None,
                    src_pod: str | None = None, dst_pod: str | None = None) -> AccessLog:
        """As ztunnel derives the fields from a connection's metric labels: a workload without
        a pod name falls back to its canonical service, identities only show for mutual_tls."""
        mtls = labels.connection_security_policy == MUTUAL_TLS
        return cls(
            direction="outbound" if labels.reporter == SOURCE else "inbound",
            src_addr=src_addr, dst_addr=dst_addr, dst_hbone_addr=dst_hbone_addr,
            src_workload=src_pod or _known(labels.source_canonical_service),
            src_namespace=_known(labels.source_workload_namespace),
            src_identity=_known(labels.source_principal) if mtls else None,
            src_cluster=_known(labels.source_cluster),
            dst_service=_known(labels.destination_service),
            dst_workload=dst_pod or _known(labels.destination_canonical_service),
            dst_namespace=_known(labels.destination_workload_namespace),
            dst_identity=_known(labels.destination_principal) if mtls else None,
            dst_cluster=_known(labels.destination_cluster),
        )

    def fields(self) -> tuple[Field, ...]:
        return (
            ("src.addr", Display(self.src_addr)),
            ("src.workload", self.src_workload),
            ("src.namespace", self.src_namespace),
            ("src.identity", self.src_identity),
            ("src.cluster", self.src_cluster),
            ("dst.addr", Display(self.dst_addr)),
            ("dst.hbone_addr", None if self.dst_hbone_addr is None else Display(self.dst_hbone_addr)),
            ("dst.service", self.dst_service),
            ("dst.workload", self.dst_workload),
            ("dst.namespace", self.dst_namespace),
            ("dst.identity", self.dst_identity),
            ("dst.cluster", self.dst_cluster),
            ("direction", self.direction),
        )


def _known(value: str) -> str | None:
    return None if value == UNKNOWN else value


def connection_opened(access: AccessLog) -> Event:
    return Event(logging.DEBUG, ACCESS, "connection opened", access.fields())


def connection_complete(access: AccessLog, bytes_sent: int, bytes_recv: int, duration_ms: int,
                        error: str | None = None) -> Event:
    """The access log line: info, or error with `error="..."` when the connection failed.
    Bytes are from the reporting proxy's side (see `log_bytes`); duration in whole ms."""
    fields = access.fields() + (("bytes_sent", bytes_sent), ("bytes_recv", bytes_recv),
                                ("duration", f"{duration_ms}ms"))
    if error is None:
        return Event(logging.INFO, ACCESS, "connection complete", fields)
    return Event(logging.ERROR, ACCESS, "connection complete", fields + (("error", error),))


def connection_failed(src_addr: str, dst_addr: str, direction: str, error: str) -> Event:
    """A connection refused before ztunnel knew enough for a full access log (`log_early_deny`)."""
    return Event(logging.WARNING, ACCESS, "connection failed",
                 (("src.addr", Display(src_addr)), ("dst.addr", Display(dst_addr)), ("direction", direction),
                  ("error", error)))


def pod_received(uid: str, name: str, namespace: str) -> Event:
    return Event(logging.INFO, STATE_MANAGER, "pod received, starting proxy",
                 (("uid", uid), ("name", name), ("namespace", namespace)))


def pod_keep(uid: str) -> Event:
    return Event(logging.INFO, STATE_MANAGER, "pod keep received. will not delete it when snapshot is sent",
                 (("uid", uid),))


def pod_deleted(uid: str) -> Event:
    return Event(logging.INFO, STATE_MANAGER, "pod delete request, shutting down proxy", (("uid", uid),))


def snapshot_received() -> Event:
    return Event(logging.INFO, STATE_MANAGER, "received snapshot sent")


def handling_new_stream() -> Event:
    """istio-cni connected to the ZDS socket."""
    return Event(logging.INFO, WORKLOAD_MANAGER, "handling new stream")


def xds_response(type_url: str, size: int, removes: int, stream_id: int | None = None) -> Event:
    """A config push received (debug), in the span of the xDS stream when its id is given."""
    event = Event(logging.DEBUG, XDS_CLIENT, "received response",
                  (("type_url", type_url), ("size", size), ("removes", removes)))
    return event if stream_id is None else event.within(Span("xds", (("id", stream_id),)))


def authz_decision(entry: AuthzLog, info_logging: bool = False) -> Event:
    """A line of `rbac.Decision.log`; `info_logging` is AUTHZ_POLICY_INFO_LOGGING."""
    if entry.level == "warn":
        level = logging.WARNING
    else:
        level = logging.INFO if info_logging else logging.DEBUG
    return Event(level, STATE, entry.message, (("policy", entry.policy),))


def connection_display(conn: Connection) -> str:
    """ztunnel's `src(identity)->dst` for an RBAC connection."""
    return (f"{socket_addr(conn.src_ip, conn.src_port)}({conn.src_identity or 'None'})"
            f"->{socket_addr(conn.dst_ip, conn.dst_port)}")


def no_longer_allowed(conn: Connection, workload_uid: str) -> Event:
    """A live inbound connection closed because a policy update denies it now."""
    return Event(logging.INFO, CONNECTION_MANAGER,
                 f"connection {connection_display(conn)} ({workload_uid}) closed because it's no longer "
                 "allowed after a policy update")
