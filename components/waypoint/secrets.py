"""The secrets section of the waypoint's `/config_dump`, in Envoy's admin shape (proto field
names): a `SecretsConfigDump` with the two SDS secrets pilot-agent serves a proxy, `default` (the
certificate chain as the CA returned it, leaf first, and the private key, which Envoy redacts) and
`ROOTCA` (the trust anchor). pilot-agent versions each SDS response `<RFC 3339 time>/<counter>`,
one response per resource, `default` first; `last_updated` is when Envoy took it."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from components.waypoint.identity import OwnCertificate

SECRETS_TYPE = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
REDACTED = base64.b64encode(b"[redacted]").decode()


def _dynamic_secret(name: str, version: str, updated: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version_info": version, "last_updated": updated,
            "secret": {"@type": SECRET_TYPE, "name": name, **body}}


def _envoy_timestamp(when: datetime.datetime) -> str:
    """A protobuf Timestamp in JSON: UTC, milliseconds when there are any."""
    text = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    millis = when.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def secrets_config_dump(certificate: OwnCertificate) -> dict[str, Any]:
    """The section, empty until the first certificate is installed."""
    dump: dict[str, Any] = {"@type": SECRETS_TYPE}
    cert, installed = certificate.current, certificate.installed_at
    if cert is None or installed is None:
        return dump
    pushed = installed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    updated = _envoy_timestamp(installed)
    chain = base64.b64encode(b"".join(cert.chain_pems)).decode()
    root = base64.b64encode(cert.root_pem).decode()
    dump["dynamic_active_secrets"] = [
        _dynamic_secret("default", f"{pushed}/{2 * certificate.generation - 1}", updated, {"tls_certificate": {
            "certificate_chain": {"inline_bytes": chain}, "private_key": {"inline_bytes": REDACTED}}}),
        _dynamic_secret("ROOTCA", f"{pushed}/{2 * certificate.generation}", updated, {"validation_context": {
            "trusted_ca": {"inline_bytes": root}}}),
    ]
    return dump
