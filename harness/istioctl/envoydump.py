"""An Envoy admin `/config_dump` as istioctl 1.24 reads it for `proxy-config secret`.

istioctl decodes the whole response as Envoy's `ConfigDump` proto (protojson, unknown fields
discarded), so any JSON object decodes: a ztunnel's dump (`workloads`, `certificates`, ...)
decodes to an empty one, whose missing secrets section is the error istioctl reports. The
secrets section is a `SecretsConfigDump`; `-o json` prints it as jsonpb does (lowerCamelCase
names, fields in declaration order, empty ones left out, bytes in padded base64, timestamps in
UTC with 0, 3, 6 or 9 fractional digits). The summary is istioctl's SDS table: one row per
warming, then active, secret, described by the first certificate of its chain or trusted CA.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from cryptography import x509

from harness.istioctl.configdump import go_json, table
from harness.istioctl.errors import IstioctlError
from harness.kubectl.printers import to_yaml

Obj = dict[str, Any]
Decode = Callable[[Any, str], Any]

SECRETS_TYPE = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
UNMARSHAL_ERROR = "error unmarshalling config dump response from Envoy: "
NO_SECRETS = f"config dump has no configuration type {SECRETS_TYPE}"
SUMMARY_COLUMNS = ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"]


class DecodeError(ValueError):
    """The dump is not a valid ConfigDump (protojson's error, reported by istioctl)."""


# -- protojson over the messages `secret` needs ------------------------------------------------

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"invalid value for string field {where}: {json.dumps(value)}")
    return value


def _bytes(value: Any, where: str) -> str:
    """protojson accepts standard or URL-safe base64, padded or not; jsonpb writes it padded."""
    text = _string(value, where)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise DecodeError(f"invalid value for bytes field {where}: {json.dumps(value)}") from exc
    return base64.b64encode(raw).decode()


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def _timestamp(value: Any, where: str) -> str:
    match = _TIMESTAMP.fullmatch(_string(value, where))
    if match is None:
        raise DecodeError(f"invalid value for Timestamp field {where}: {json.dumps(value)}")
    seconds, fraction, zone = match.groups()
    when = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone)).astimezone(timezone.utc)
    nanos = int((fraction or "").ljust(9, "0"))
    digits = 0 if nanos == 0 else 3 if nanos % 1_000_000 == 0 else 6 if nanos % 1000 == 0 else 9
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{str(nanos).zfill(9)[:digits]}Z" if digits else f"{text}Z"


def _message(*fields: tuple[str, Decode]) -> Decode:
    """A message: fields known by their proto or JSON name, written in declaration order under
    their JSON name, unknown and empty ones dropped."""
    def decode(value: Any, where: str) -> Obj:
        if not isinstance(value, dict):
            raise DecodeError(f"invalid value for message {where}: {json.dumps(value)}")
        out: Obj = {}
        for name, convert in fields:
            camel = _camel(name)
            given = value.get(name, value.get(camel))
            if given is None:
                continue
            item = convert(given, camel)
            if item not in ("", [], {}):
                out[camel] = item
        return out
    return decode


def _repeated(convert: Decode) -> Decode:
    def decode(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise DecodeError(f"invalid value for repeated field {where}: {json.dumps(value)}")
        return [convert(item, where) for item in value]
    return decode


_DATA_SOURCE = _message(("filename", _string), ("inline_bytes", _bytes), ("inline_string", _string),
                        ("environment_variable", _string))
_SECRET = _message(
    ("name", _string),
    ("tls_certificate", _message(("certificate_chain", _DATA_SOURCE), ("private_key", _DATA_SOURCE),
                                 ("password", _DATA_SOURCE))),
    ("validation_context", _message(("trusted_ca", _DATA_SOURCE))),
    ("generic_secret", _message(("secret", _DATA_SOURCE))))

def _any(value: Any, where: str) -> Obj:
    """google.protobuf.Any: `@type` first, then the fields of the message it holds (none for a
    type istioctl does not know, as its lenient resolver gives)."""
    if not isinstance(value, dict) or not isinstance(value.get("@type"), str):
        raise DecodeError(f"missing @type field in {where}")
    type_url = value["@type"]
    body = {k: v for k, v in value.items() if k != "@type"}
    return {"@type": type_url, **(_TYPES[type_url](body, where) if type_url in _TYPES else {})}


_DYNAMIC_SECRET = _message(("name", _string), ("version_info", _string), ("last_updated", _timestamp),
                           ("secret", _any))
_SECRETS_CONFIG_DUMP = _message(
    ("static_secrets", _repeated(_message(("name", _string), ("last_updated", _timestamp), ("secret", _any)))),
    ("dynamic_active_secrets", _repeated(_DYNAMIC_SECRET)),
    ("dynamic_warming_secrets", _repeated(_DYNAMIC_SECRET)))
_TYPES: dict[str, Decode] = {SECRET_TYPE: _SECRET, SECRETS_TYPE: _SECRETS_CONFIG_DUMP}


# -- the dump ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnvoyDump:
    """The typed sections of a config dump (`configs`), decoded as istioctl's `Prime` does."""

    configs: list[Obj]

    @classmethod
    def parse(cls, text: str | bytes) -> "EnvoyDump":
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise DecodeError("the config dump is not a JSON object")
            configs = _repeated(_any)(data.get("configs", []), "configs")
        except (ValueError, DecodeError) as exc:
            raise IstioctlError(f"{UNMARSHAL_ERROR}{exc}") from exc
        return cls(configs)

    def secrets(self) -> Obj:
        """The SecretsConfigDump section (the last one, as istioctl's `getSection` picks)."""
        found = [c for c in self.configs if c["@type"] == SECRETS_TYPE]
        if not found:
            raise IstioctlError(NO_SECRETS)
        return {k: v for k, v in found[-1].items() if k != "@type"}


def secrets_text(secrets: Obj, output: str) -> str:
    """`-o json|yaml`: the section as istioctl prints it (Fprintln)."""
    text = go_json(secrets)
    return (to_yaml(json.loads(text)) if output == "yaml" else text) + "\n"


# -- the summary -------------------------------------------------------------------------------

def _first_certificate(pem: bytes) -> x509.Certificate | None:
    """Go's pem.Decode then x509.ParseCertificate: the first PEM block, if it is a certificate."""
    match = re.search(rb"-----BEGIN ([^-\n]*)-----\r?\n.*?-----END \1-----", pem, re.DOTALL)
    if match is None:
        return None
    try:
        return x509.load_pem_x509_certificate(match.group(0))
    except ValueError:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(item: Obj, state: str, now: datetime) -> list[str]:
    secret = item.get("secret") or {}
    chain = ((secret.get("tlsCertificate") or {}).get("certificateChain") or {}).get("inlineBytes", "")
    trusted = ((secret.get("validationContext") or {}).get("trustedCa") or {}).get("inlineBytes", "")
    data = base64.b64decode(chain or trusted)
    cert = _first_certificate(data) if data else None
    name = item.get("name", "")
    if cert is None:
        return [name, "", state, "false", "", "", ""]
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    valid = not_before < now < not_after
    return [name, "CA" if _is_ca(cert) else "Cert Chain", state, "true" if valid else "false",
            format(cert.serial_number, "x"), _rfc3339(not_after), _rfc3339(not_before)]


def secrets_summary(secrets: Obj, now: datetime | None = None) -> str:
    """istioctl's table of the warming and active secrets."""
    now = now or datetime.now(timezone.utc)
    warming, active = secrets.get("dynamicWarmingSecrets", []), secrets.get("dynamicActiveSecrets", [])
    if not warming and not active:
        return "No active or warming secrets found.\n"
    rows = [SUMMARY_COLUMNS] + [_row(item, "WARMING", now) for item in warming]
    rows += [_row(item, "UNINITIALIZED" if item.get("versionInfo") == "uninitialized" else "ACTIVE", now)
             for item in active]
    return table(rows, padding=5)

