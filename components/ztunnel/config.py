"""ztunnel's settings: the environment the DaemonSet gives it, and the constants of the real one.

Names and defaults follow ztunnel's `src/config.rs` (reference 1.1, 1.5, 2.3, 3).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

# Ports inside each pod's netns, and in ztunnel's own.
OUTBOUND_PORT = 15001
INBOUND_PLAINTEXT_PORT = 15006
INBOUND_PORT = 15008
SOCKS5_PORT = 15080
ADMIN_PORT = 15000
STATS_PORT = 15020
READINESS_PORT = 15021
# Destinations ztunnel refuses as calls to itself (`illegal_ports`, socks5 enabled here).
ILLEGAL_PORTS = frozenset({INBOUND_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_PORT, SOCKS5_PORT})

# The mark on every socket ztunnel opens in a pod (`DEFAULT_INPOD_MARK`, istio-cni's InpodMark):
# the pod's rules let such packets through instead of capturing them again.
INPOD_MARK = 0x539
LISTEN_BACKLOG = 128

CONNECT_TIMEOUT = 10.0             # CONNECTION_TIMEOUT
HANDSHAKE_TIMEOUT = 10.0           # TLS and the CONNECT exchange, each
LOCAL_WORKLOAD_WAIT = 5.0          # how long a proxy waits for its pod in istiod's config
DRAIN_DEADLINE = 5.0               # CONNECTION_TERMINATION_DEADLINE
POOL_MAX_STREAMS = 100             # POOL_MAX_STREAMS_PER_CONNECTION
PROXY_RETRY_INTERVAL = 5.0         # a pod whose proxy failed to start is retried this often
ZDS_BACKOFF_INITIAL = 0.01
ZDS_BACKOFF_MAX = 15.0
DEFAULT_CA_SERVER_NAME = "istiod.istio-system.svc"


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from `86400`, `30s`, `24h`, `1h30m`, `500ms` (ztunnel's duration_str forms)."""
    text = text.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    total, position = 0.0, 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    return total


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _duration(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name, "")
    try:
        return parse_duration(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a duration, got {value!r}") from None


def _server_name(address: str) -> str:
    """The name the CA's certificate must carry: the host of CA_ADDRESS unless it is an IP."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or DEFAULT_CA_SERVER_NAME
    return DEFAULT_CA_SERVER_NAME


@dataclass(frozen=True)
class Config:
    node_name: str = ""
    pod_name: str = ""
    pod_namespace: str = ""
    instance_ip: str = ""
    service_account: str = "ztunnel"
    cluster_id: str = "Kubernetes"
    trust_domain: str = "cluster.local"
    network: str = ""
    xds_address: str = "istiod.istio-system.svc:15010"
    ca_address: str = "istiod.istio-system.svc:15012"
    ca_root_ca: str = "/var/run/secrets/istio/root-cert.pem"
    auth_token: str = "/var/run/secrets/tokens/istio-token"
    inpod_uds: str = "/var/run/ztunnel/ztunnel.sock"
    secret_ttl: int = 86400
    pool_max_streams: int = POOL_MAX_STREAMS
    drain_deadline: float = DRAIN_DEADLINE
    authz_info_logging: bool = False
    ca_headers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ca_server_name(self) -> str:
        return _server_name(self.ca_address)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        headers = tuple(sorted((k[len("CA_HEADER_"):], v) for k, v in env.items()
                               if k.startswith("CA_HEADER_") and len(k) > len("CA_HEADER_")))
        return cls(
            node_name=get("NODE_NAME", defaults.node_name),
            pod_name=get("POD_NAME", defaults.pod_name),
            pod_namespace=get("POD_NAMESPACE", defaults.pod_namespace),
            instance_ip=get("INSTANCE_IP", defaults.instance_ip),
            service_account=get("SERVICE_ACCOUNT", defaults.service_account),
            cluster_id=get("CLUSTER_ID", get("ISTIO_META_CLUSTER_ID", defaults.cluster_id)),
            trust_domain=get("TRUST_DOMAIN", defaults.trust_domain),
            network=get("NETWORK", defaults.network),
            xds_address=get("XDS_ADDRESS", defaults.xds_address),
            ca_address=get("CA_ADDRESS", defaults.ca_address),
            ca_root_ca=get("CA_ROOT_CA", defaults.ca_root_ca),
            auth_token=get("AUTH_TOKEN", defaults.auth_token),
            inpod_uds=get("INPOD_UDS", defaults.inpod_uds),
            secret_ttl=int(_duration(env, "SECRET_TTL", defaults.secret_ttl)),
            pool_max_streams=_int(env, "POOL_MAX_STREAMS_PER_CONNECTION", defaults.pool_max_streams),
            drain_deadline=_duration(env, "CONNECTION_TERMINATION_DEADLINE", defaults.drain_deadline),
            authz_info_logging=env.get("AUTHZ_POLICY_INFO_LOGGING", "").lower() == "true",
            ca_headers=headers,
        )
