"""One proxied connection's outcome: metrics as it opens, flows and ends, and its access log line
(ztunnel's `ConnectionResultBuilder`/`ConnectionResult`), plus the proxy errors that end one.

Bytes are counted as they flow. Every connection that got this far ends in exactly one
`connection complete` line and one `istio_tcp_connections_closed_total` increment; an error
without a more specific flag is a CONNECT failure, as ztunnel infers it.
"""

from __future__ import annotations

import trio

from components.ztunnel import logs
from components.ztunnel.metrics import NO_FLAGS, Metrics, TrafficLabels

DENY = "DENY"
CONNECT = "CONNECT"
TLS_FAILURE = "TLS_FAILURE"
H2_HANDSHAKE_FAILURE = "H2_HANDSHAKE_FAILURE"
NETWORK_POLICY = "NETWORK_POLICY"
IDENTITY_ERROR = "IDENTITY_ERROR"


class ProxyError(Exception):
    """A connection that failed: `str()` is ztunnel's error text, `flag` its response_flags."""

    def __init__(self, message: str, flag: str = CONNECT) -> None:
        super().__init__(message)
        self.flag = flag


class ConnectionResult:
    """Create when the connection's endpoints are known; `record()` once when it ends."""

    def __init__(self, metrics: Metrics, labels: TrafficLabels, access: logs.AccessLog) -> None:
        self._metrics = metrics
        self.labels = labels
        self.access = access
        self.start = trio.current_time()
        self.received_from_client = 0
        self.sent_to_client = 0
        self.recorded = False
        metrics.opened(labels)
        logs.emit(logs.connection_opened(access))

    def from_client(self, size: int) -> None:
        """Bytes the client sent towards the server."""
        self.received_from_client += size
        self._metrics.add_bytes(self.labels, size, 0)

    def to_client(self, size: int) -> None:
        """Bytes the server sent back to the client."""
        self.sent_to_client += size
        self._metrics.add_bytes(self.labels, 0, size)

    def record(self, error: str | None = None, flag: str | None = None) -> None:
        if self.recorded:
            return
        self.recorded = True
        flags = flag or (CONNECT if error is not None else NO_FLAGS)
        final = self.labels.with_flags(flags)
        self._metrics.closed(final)
        self._metrics.failed(final)
        sent, received = logs.log_bytes(self.access.direction, self.received_from_client, self.sent_to_client)
        duration_ms = int((trio.current_time() - self.start) * 1000)
        logs.emit(logs.connection_complete(self.access, sent, received, duration_ms, error))
