"""Keys, CSRs and certificates for SPIFFE workload identities, shaped as Istio issues them.

The workload side (ztunnel) makes a fresh ECDSA P-256 key per request and a CSR with an empty
subject and one URI SAN. The CA side keeps a self-signed RSA 2048 root (`O=cluster.local`, as
istiod's self-signed CA) and signs CSRs with the rules of istiod's `genCertTemplateFromCSR`:
NotBefore backdated 2 minutes, NotAfter = now + ttl clamped to the root's NotAfter, key usage
DigitalSignature|KeyEncipherment, extended key usage ServerAuth+ClientAuth, a critical SAN
extension with the identities the CA decided on, and an authority key identifier.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW_GRACE = datetime.timedelta(minutes=2)
ROOT_TTL = datetime.timedelta(days=3650)
WORKLOAD_TTL = datetime.timedelta(hours=24)
TRUST_DOMAIN = "cluster.local"


class PKIError(ValueError):
    """A CSR or certificate that cannot be used: bad PEM, bad signature, nothing to sign."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh workload key: ECDSA P-256, as ztunnel makes for every certificate request."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PKIError(f"unsupported key type {type(key).__name__}")
    return key


def create_csr(key: ec.EllipticCurvePrivateKey, identity: str) -> bytes:
    """A PEM CSR with an empty subject and one critical URI SAN, the SPIFFE id."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(identity))]),
                          critical=True)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its self-signature."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise PKIError(f"failed to decode csr: {exc}") from exc
    if not csr.is_signature_valid:
        raise PKIError("csr signature is invalid")
    return csr


def csr_uris(csr: x509.CertificateSigningRequest) -> list[str]:
    """The URI SANs a CSR asks for."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificates(pem: bytes | str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PKIError(f"failed to decode certificates: {exc}") from exc


@dataclass(frozen=True)
class IssuedCertificate:
    """What a workload holds after a CSR round trip: its key, its leaf and the chain to present.

    `chain_pem` is the leaf followed by intermediates (none here): what a TLS endpoint presents.
    `root_pem` is the trust anchor it verifies peers against.
    """

    key_pem: bytes
    cert: x509.Certificate
    root_pem: bytes

    @property
    def cert_pem(self) -> bytes:
        return certificate_pem(self.cert)

    @property
    def chain_pem(self) -> bytes:
        return self.cert_pem


@dataclass(frozen=True)
class RootCA:
    """A self-signed RSA root and its key: the CA's signing material."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, organization: str = TRUST_DOMAIN, ttl: datetime.timedelta = ROOT_TTL,
                 *, now: datetime.datetime | None = None) -> "RootCA":
        """A new self-signed RSA 2048 root with Subject = Issuer = `O=<organization>`."""
        now = now or _utcnow()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
        cert = (x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW_GRACE)
                .not_valid_after(now + ttl)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> "RootCA":
        key = load_private_key(key_pem)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PKIError("the root key must be RSA")
        return cls(load_certificates(cert_pem)[0], key)

    @property
    def cert_pem(self) -> bytes:
        return certificate_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.key)

    def sign_csr(self, csr_pem: bytes | str, identities: Sequence[str], ttl: datetime.timedelta,
                 *, now: datetime.datetime | None = None) -> x509.Certificate:
        """Sign a CSR into a workload leaf for `identities` (the CA's decision, not the CSR's SANs).

        The subject stays empty unless the CSR carried a common name, as istiod does.
        """
        if not identities:
            raise PKIError("no identities to sign for")
        if ttl <= datetime.timedelta(0):
            raise PKIError(f"invalid ttl {ttl}")
        csr = load_csr(csr_pem)
        now = now or _utcnow()
        expiry = min(now + ttl, self.cert.not_valid_after_utc)
        common_names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        subject = x509.Name(common_names[:1])
        issuer_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(self.cert.subject)
                .public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW_GRACE)
                .not_valid_after(expiry)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=True, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=False, crl_sign=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(str(i)) for i in identities]), critical=True)
                .sign(self.key, hashes.SHA256()))

    def cert_chain(self, leaf: x509.Certificate) -> list[str]:
        """The CA response's `cert_chain`: leaf first, root last, one PEM per element."""
        return [certificate_pem(leaf).decode(), self.cert_pem.decode()]

    def issue(self, identity: str, ttl: datetime.timedelta = WORKLOAD_TTL,
              *, now: datetime.datetime | None = None) -> IssuedCertificate:
        """Key, CSR and signature in one step, for tests and in-process fake CAs."""
        key = generate_key()
        leaf = self.sign_csr(create_csr(key, identity), [str(identity)], ttl, now=now)
        return IssuedCertificate(private_key_pem(key), leaf, self.cert_pem)
