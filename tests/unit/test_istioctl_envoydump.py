"""istioctl proxy-config secret's reading of an Envoy config dump: the secrets section a waypoint
really serves (components/waypoint/secrets.py over a certificate of a real CA), printed as jsonpb
and as istioctl's SDS table; protojson's leniency; the error for a ztunnel's dump."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
import yaml

from components.common import pki
from components.common.caclient import WorkloadCertificate
from components.common.tls import Identity
from components.waypoint.identity import OwnCertificate
from components.waypoint.secrets import SECRET_TYPE, secrets_config_dump
from harness.istioctl.envoydump import NO_SECRETS, EnvoyDump, secrets_summary, secrets_text
from harness.istioctl.errors import IstioctlError
from tests.unit.test_istioctl_configdump import CERTIFICATES, demo_config

WAYPOINT = Identity("cluster.local", "ambient-demo", "waypoint")
ISSUED = datetime.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def root() -> pki.RootCA:
    return pki.RootCA.generate(now=ISSUED - datetime.timedelta(days=1))


@pytest.fixture(scope="module")
def leaf(root: pki.RootCA) -> pki.IssuedCertificate:
    return root.issue(str(WAYPOINT), now=ISSUED)


def installed(root: pki.RootCA, leaf: pki.IssuedCertificate, times: int = 1) -> OwnCertificate:
    """A waypoint's certificate holder after `times` certificates were installed."""
    own = OwnCertificate(fetcher=None)  # type: ignore[arg-type]
    for _ in range(times):
        own._install(WorkloadCertificate(WAYPOINT, leaf.key_pem, (leaf.cert_pem, root.cert_pem), leaf.cert))
    own.installed_at = ISSUED
    return own


def served_dump(root: pki.RootCA, leaf: pki.IssuedCertificate) -> dict:
    """The waypoint's /config_dump: its own keys, and Envoy's `configs` with the secrets."""
    return {"gateway": "ambient-demo/waypoint", "routes": [], "configs": [secrets_config_dump(installed(root, leaf))]}


def waypoint_dump(root: pki.RootCA, leaf: pki.IssuedCertificate) -> EnvoyDump:
    """What istioctl decodes from it."""
    return EnvoyDump.parse(json.dumps(served_dump(root, leaf)))


def tabulated(rows: list[list[str]]) -> list[str]:
    """Go's tabwriter with padding 5: each column as wide as its widest cell plus five spaces."""
    widths = [max(len(row[i]) for row in rows) + 5 for i in range(len(rows[0]) - 1)]
    return ["".join(cell.ljust(width) for cell, width in zip(row, widths)) + row[-1] for row in rows]


def test_the_waypoint_serves_envoys_admin_shape(root: pki.RootCA, leaf: pki.IssuedCertificate):
    section = secrets_config_dump(installed(root, leaf, times=2))
    default, rootca = section["dynamic_active_secrets"]
    assert section["@type"] == "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
    assert (default["name"], default["version_info"], default["last_updated"]) == (
        "default", "2026-03-01T12:00:00Z/3", "2026-03-01T12:00:00.250Z")
    assert rootca["version_info"] == "2026-03-01T12:00:00Z/4"
    tls = default["secret"]["tls_certificate"]
    assert default["secret"]["@type"] == SECRET_TYPE
    assert base64.b64decode(tls["private_key"]["inline_bytes"]) == b"[redacted]"
    chain = base64.b64decode(tls["certificate_chain"]["inline_bytes"])
    assert [c.subject.rfc4514_string() for c in pki.load_certificates(chain)] == ["", "O=cluster.local"]
    assert base64.b64decode(rootca["secret"]["validation_context"]["trusted_ca"]["inline_bytes"]) == root.cert_pem
    assert secrets_config_dump(OwnCertificate(fetcher=None)) == {"@type": section["@type"]}  # type: ignore[arg-type]


def test_json_is_jsonpbs_camel_case_in_declaration_order(root: pki.RootCA, leaf: pki.IssuedCertificate):
    text = secrets_text(waypoint_dump(root, leaf).secrets(), "json")
    printed = json.loads(text)
    default, rootca = printed["dynamicActiveSecrets"]
    assert list(printed) == ["dynamicActiveSecrets"]
    assert list(default) == ["name", "versionInfo", "lastUpdated", "secret"]
    assert list(default["secret"]) == ["@type", "name", "tlsCertificate"]
    assert default["secret"]["tlsCertificate"]["privateKey"] == {"inlineBytes": "W3JlZGFjdGVkXQ=="}
    assert list(rootca["secret"]) == ["@type", "name", "validationContext"]
    assert text.startswith('{\n    "dynamicActiveSecrets": [\n        {\n            "name": "default",\n')
    assert text.endswith("\n}\n")
    as_yaml = yaml.safe_load(secrets_text(waypoint_dump(root, leaf).secrets(), "yaml"))
    assert as_yaml == printed


def test_summary_is_istioctls_sds_table(root: pki.RootCA, leaf: pki.IssuedCertificate):
    secrets = waypoint_dump(root, leaf).secrets()

    def when(moment: datetime.datetime) -> str:
        return f"{moment:%Y-%m-%dT%H:%M:%SZ}"
    assert secrets_summary(secrets, ISSUED + datetime.timedelta(hours=1)).splitlines() == tabulated([
        ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
        ["default", "Cert Chain", "ACTIVE", "true", format(leaf.cert.serial_number, "x"),
         when(leaf.cert.not_valid_after_utc), "2026-03-01T11:58:00Z"],
        ["ROOTCA", "CA", "ACTIVE", "true", format(root.cert.serial_number, "x"), when(root.cert.not_valid_after_utc),
         "2026-02-28T11:58:00Z"]])
    _, default, rootca = secrets_summary(secrets, ISSUED + datetime.timedelta(days=30)).splitlines()
    assert (default.split()[4], rootca.split()[3]) == ("false", "true")  # the leaf has expired, the root not


def test_secrets_without_a_certificate_leave_its_cells_empty():
    secrets = {"dynamicActiveSecrets": [{"name": "default", "versionInfo": "uninitialized"}],
               "dynamicWarmingSecrets": [{"name": "file-root:/etc/certs/root-cert.pem", "secret": {
                   "validationContext": {"trustedCa": {"inlineBytes": base64.b64encode(b"not a PEM").decode()}}}}]}
    assert secrets_summary(secrets).splitlines() == tabulated([
        ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
        ["file-root:/etc/certs/root-cert.pem", "", "WARMING", "false", "", "", ""],
        ["default", "", "UNINITIALIZED", "false", "", "", ""]])
    assert secrets_summary({}) == "No active or warming secrets found.\n"


def test_a_ztunnel_dump_has_no_secrets_section():
    dump = EnvoyDump.parse(json.dumps({**demo_config(), "certificates": CERTIFICATES, "config": {"a": 1}}))
    with pytest.raises(IstioctlError) as info:
        dump.secrets()
    assert info.value.message == NO_SECRETS == (
        "config dump has no configuration type type.googleapis.com/envoy.admin.v3.SecretsConfigDump")


def test_protojson_accepts_either_name_and_normalizes_bytes_and_timestamps():
    dump = EnvoyDump.parse(json.dumps({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {}},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamicActiveSecrets": [
            {"name": "ROOTCA", "last_updated": "2026-03-01T13:00:00.123000+01:00", "unknown": [1],
             "secret": {"@type": SECRET_TYPE, "name": "ROOTCA",
                        "validationContext": {"trusted_ca": {"inline_bytes": "-_8"}}}}]}]}))
    (item,) = dump.secrets()["dynamicActiveSecrets"]
    assert item == {"name": "ROOTCA", "lastUpdated": "2026-03-01T12:00:00.123Z",
                    "secret": {"@type": SECRET_TYPE, "name": "ROOTCA",
                               "validationContext": {"trustedCa": {"inlineBytes": "+/8="}}}}


@pytest.mark.parametrize("text, reason", [
    ("{", "Expecting property name"),
    ("[]", "not a JSON object"),
    ('{"configs": [{"dynamic_active_secrets": []}]}', "missing @type field"),
    ('{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", '
     '"dynamic_active_secrets": [{"name": 7}]}]}', "invalid value for string field name: 7"),
])
def test_a_dump_protojson_refuses_is_istioctls_unmarshal_error(text: str, reason: str):
    with pytest.raises(IstioctlError) as info:
        EnvoyDump.parse(text)
    assert info.value.message.startswith("error unmarshalling config dump response from Envoy: ")
    assert reason in info.value.message
