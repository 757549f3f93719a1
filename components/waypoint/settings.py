"""The waypoint's settings: the environment its Deployment gives it and the arguments of
`pilot-agent proxy waypoint|router` (`--serviceCluster <gateway>.<namespace>`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

HBONE_PORT = 15008
STATS_PORT = 15020
READINESS_PORT = 15021
ADMIN_PORT = 15000


@dataclass(frozen=True)
class Settings:
    mode: str                  # waypoint (HBONE in) or router (an ingress gateway)
    gateway_name: str          # the Gateway it implements (policies target it)
    service_name: str          # its own Deployment and Service (`--serviceCluster <name>.<ns>`)
    namespace: str
    pod_name: str
    pod_ip: str
    node_name: str
    service_account: str
    trust_domain: str
    cluster_id: str
    xds_address: str
    ca_address: str
    token_path: str
    root_cert_path: str
    cert_ttl: int
    labels_path: str           # the pod's labels (downward API), for an ingress gateway's selector

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> "Settings":
        parser = argparse.ArgumentParser(prog="pilot-agent")
        parser.add_argument("command", choices=["proxy"])
        parser.add_argument("mode", choices=["waypoint", "router"])
        parser.add_argument("--serviceCluster", default="")
        parser.add_argument("--domain", default="")
        parser.add_argument("--proxyLogLevel", default="warning")
        parser.add_argument("--proxyComponentLogLevel", default="")
        parser.add_argument("--log_output_level", default="default:info")
        args = parser.parse_args(list(argv))
        namespace = environ.get("POD_NAMESPACE", "default")
        service_name = (args.serviceCluster or f"{environ.get('GATEWAY_NAME', 'waypoint')}.{namespace}").rsplit(".", 1)[0]
        return cls(
            mode=args.mode, gateway_name=environ.get("GATEWAY_NAME") or service_name, service_name=service_name,
            namespace=namespace,
            pod_name=environ.get("POD_NAME", ""), pod_ip=environ.get("INSTANCE_IP", ""),
            node_name=environ.get("NODE_NAME", ""),
            service_account=environ.get("SERVICE_ACCOUNT", "default"),
            trust_domain=environ.get("TRUST_DOMAIN", "cluster.local"),
            cluster_id=environ.get("ISTIO_META_CLUSTER_ID", "Kubernetes"),
            xds_address=environ.get("XDS_ADDRESS", "istiod.istio-system.svc:15010"),
            ca_address=environ.get("CA_ADDR", "istiod.istio-system.svc:15012"),
            token_path=environ.get("ISTIO_TOKEN_PATH", "/var/run/secrets/tokens/istio-token"),
            root_cert_path=environ.get("ISTIO_ROOT_CERT", "/var/run/secrets/istio/root-cert.pem"),
            cert_ttl=int(environ.get("SECRET_TTL_SECONDS", "86400")),
            labels_path=environ.get("ISTIO_POD_LABELS", "/etc/istio/pod/labels"),
        )

    def pod_labels(self) -> dict[str, str]:
        """The downward API's `key="value"` lines; none if the file is not mounted."""
        try:
            text = open(self.labels_path, encoding="utf-8").read()
        except OSError:
            return {}
        labels = {}
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key:
                labels[key.strip()] = value.strip().strip('"')
        return labels

    @property
    def identity(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"
