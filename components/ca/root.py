"""The CA's signing root, kept in the Secret `istio-system/istio-ca-secret` as istiod's self-signed
CA keeps it (so a restarted CA signs with the same root), and the serving certificate the CA signs
for its own TLS port."""

from __future__ import annotations

import base64
import datetime
import logging
from typing import Any, Sequence

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from components.common import pki
from components.common.apiclient import ApiClient, ApiError

log = logging.getLogger("pkica")

SECRET_NAME = "istio-ca-secret"
SECRET_TYPE = "istio.io/ca-root"
CA_CERT_KEY = "ca-cert.pem"
CA_KEY_KEY = "ca-key.pem"
# istiod's BuildSecret writes these too, empty for a self-signed root.
EMPTY_KEYS = ("cert-chain.pem", "key.pem", "root-cert.pem")
SERVING_HOSTS = ("istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "istiod", "istio-ca")
SERVING_TTL = datetime.timedelta(days=3650)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_for(root: pki.RootCA, namespace: str) -> dict[str, Any]:
    data = {CA_CERT_KEY: _b64(root.cert_pem), CA_KEY_KEY: _b64(root.key_pem), **{k: "" for k in EMPTY_KEYS}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME, "namespace": namespace},
            "type": SECRET_TYPE, "data": data}


def root_from_secret(secret: dict[str, Any]) -> pki.RootCA:
    data = secret.get("data") or {}
    if CA_CERT_KEY not in data or CA_KEY_KEY not in data:
        raise pki.PKIError(f"secret {SECRET_NAME} lacks {CA_CERT_KEY} or {CA_KEY_KEY}")
    return pki.RootCA.from_pem(base64.b64decode(data[CA_CERT_KEY]), base64.b64decode(data[CA_KEY_KEY]))


async def load_or_create_root(api: ApiClient, namespace: str, trust_domain: str,
                              retry_delay: float = 1.0) -> pki.RootCA:
    """The root from the Secret, or a new one written there; waits while the apiserver or namespace is missing.

    A Secret that does not hold a usable root is an error (PKIError), as it stops istiod.
    """
    while True:
        try:
            secret = await api.get("v1", "Secret", namespace, SECRET_NAME)
        except ApiError as exc:
            if exc.code != 404:
                log.warning("Failed to get secret %s/%s (error: %s), retrying", namespace, SECRET_NAME, exc)
                await trio.sleep(retry_delay)
                continue
            log.info("Failed to get secret (error: %s), will create one", exc)
            root = pki.RootCA.generate(organization=trust_domain)
            try:
                await api.create(secret_for(root, namespace))
            except ApiError as create_exc:
                if create_exc.code != 409:
                    log.error("Failed to write secret to CA (error: %s). Retrying.", create_exc)
                    await trio.sleep(retry_delay)
                continue
            log.info("Using self-generated public key: %s", root.cert_pem.decode())
            return root
        root = root_from_secret(secret)
        log.info("Load signing key and cert from existing secret %s/%s", namespace, SECRET_NAME)
        log.info("Using existing public key: %s", root.cert_pem.decode())
        return root


def serving_credentials(root: pki.RootCA, hosts: Sequence[str] = SERVING_HOSTS,
                        now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A key and a leaf (PEMs) for the CA's TLS port: DNS SANs for istiod's service names, signed by the root."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = pki.generate_key()
    issuer_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(root.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - pki.CLOCK_SKEW_GRACE)
            .not_valid_after(min(now + SERVING_TTL, root.cert.not_valid_after_utc))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=True)
            .sign(root.key, hashes.SHA256()))
    return pki.certificate_pem(cert), pki.private_key_pem(key)
