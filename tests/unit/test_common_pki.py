"""Workload keys, CSRs and leaf certificates as istiod's CA issues them, checked with cryptography and openssl."""

from __future__ import annotations

import datetime
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components.common import pki

SPIFFE = "spiffe://cluster.local/ns/default/sa/sleep"


@pytest.fixture(scope="module")
def root() -> pki.RootCA:
    return pki.RootCA.generate()


def _openssl(*args: str, input_pem: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=input_pem, capture_output=True, check=False)


def test_csr_has_an_empty_subject_one_critical_uri_san_and_a_p256_key():
    key = pki.generate_key()
    csr = pki.load_csr(pki.create_csr(key, SPIFFE))
    assert isinstance(key.curve, ec.SECP256R1)
    assert list(csr.subject) == []
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
    assert len(list(san.value)) == 1
    assert pki.csr_uris(csr) == [SPIFFE]
    assert pki.private_key_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_csr_is_what_openssl_reads(tmp_path):
    pem = pki.create_csr(pki.generate_key(), SPIFFE)
    result = _openssl("req", "-noout", "-text", "-verify", input_pem=pem)
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert "verify OK" in out
    assert f"URI:{SPIFFE}" in out
    assert "ASN1 OID: prime256v1" in out


def test_root_is_self_signed_rsa_2048_for_cluster_local(root):
    cert = root.cert
    org = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    assert cert.subject == org and cert.issuer == org
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    again = pki.RootCA.from_pem(root.cert_pem, root.key_pem)
    assert again.cert == cert


def test_leaf_follows_istiods_template(root):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    key = pki.generate_key()
    leaf = root.sign_csr(pki.create_csr(key, SPIFFE), [SPIFFE], datetime.timedelta(hours=24), now=now)
    assert list(leaf.subject) == []
    assert leaf.issuer == root.cert.subject
    assert leaf.not_valid_before_utc == now - datetime.timedelta(minutes=2)
    assert leaf.not_valid_after_utc == now + datetime.timedelta(hours=24)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    ext = leaf.extensions
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = ext.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
    root_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    chain = root.cert_chain(leaf)
    assert len(chain) == 2 and all(part.endswith("\n") for part in chain)
    assert pki.load_certificates(chain[-1])[0] == root.cert


def test_leaf_is_what_openssl_reads_and_verifies(root, tmp_path):
    issued = root.issue(SPIFFE)
    root_file = tmp_path / "root.pem"
    leaf_file = tmp_path / "leaf.pem"
    root_file.write_bytes(root.cert_pem)
    leaf_file.write_bytes(issued.cert_pem)
    text = _openssl("x509", "-noout", "-text", "-in", str(leaf_file)).stdout.decode()
    assert "Issuer: O = cluster.local" in text
    assert "Subject: \n" in text or "Subject:\n" in text
    assert "X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment" in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert "X509v3 Basic Constraints: critical\n                CA:FALSE" in text
    assert f"X509v3 Subject Alternative Name: critical\n                URI:{SPIFFE}" in text
    assert "X509v3 Authority Key Identifier" in text
    assert "Signature Algorithm: sha256WithRSAEncryption" in text
    for purpose in ("sslserver", "sslclient"):
        result = _openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(root_file), str(leaf_file))
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().strip().endswith("OK")
    other = tmp_path / "other.pem"
    other.write_bytes(pki.RootCA.generate().cert_pem)
    result = _openssl("verify", "-CAfile", str(other), str(leaf_file))
    assert result.returncode != 0


def test_ttl_is_clamped_to_the_roots_expiry():
    now = datetime.datetime.now(datetime.timezone.utc)
    short_root = pki.RootCA.generate(ttl=datetime.timedelta(hours=1), now=now)
    leaf = short_root.sign_csr(pki.create_csr(pki.generate_key(), SPIFFE), [SPIFFE],
                               datetime.timedelta(days=90), now=now)
    assert leaf.not_valid_after_utc == short_root.cert.not_valid_after_utc


def test_the_ca_decides_the_identities_not_the_csr(root):
    csr = pki.create_csr(pki.generate_key(), "spiffe://cluster.local/ns/evil/sa/admin")
    leaf = root.sign_csr(csr, [SPIFFE], datetime.timedelta(hours=1))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]


def test_a_csr_common_name_is_kept_as_the_subject(root):
    key = pki.generate_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sleep.default")]))
           .sign(key, hashes.SHA256()))
    leaf = root.sign_csr(csr.public_bytes(serialization.Encoding.PEM), [SPIFFE], datetime.timedelta(hours=1))
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sleep.default"


@pytest.mark.parametrize("csr, identities, ttl, message", [
    (b"not a csr", [SPIFFE], datetime.timedelta(hours=1), "failed to decode csr"),
    (None, [], datetime.timedelta(hours=1), "no identities"),
    (None, [SPIFFE], datetime.timedelta(0), "invalid ttl"),
])
def test_bad_requests_are_refused(root, csr, identities, ttl, message):
    csr = csr if csr is not None else pki.create_csr(pki.generate_key(), SPIFFE)
    with pytest.raises(pki.PKIError, match=message):
        root.sign_csr(csr, identities, ttl)
