"""A client of the mesh CA's `IstioCertificateService/CreateCertificate`, as ztunnel's CaClient.

Every call makes a fresh ECDSA P-256 key and a CSR for one identity, sends it over TLS (the CA's
certificate verified against the mesh root, for `server_name`) and HTTP/2 with the caller's token,
and checks that the leaf it gets back is for the identity it asked for (ztunnel's SanError).
Refusals raise `CertificateRefused` with the CA's gRPC code and message; `str()` of every error is
what ztunnel logs (`signing gRPC error (<code description>): <message>`). No state is kept
between calls.
"""

from __future__ import annotations

import datetime
import json
import ssl
from dataclasses import dataclass
from typing import Any, Sequence

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components.common import pki
from components.common.h2conn import open_h2_connection
from components.common.tls import ALPN_H2, Identity, cert_identities

PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate"
IMPERSONATED_IDENTITY = "ImpersonatedIdentity"
MAX_RESPONSE = 4 * 1024 * 1024
UNAVAILABLE = 14
DEADLINE_EXCEEDED = 4

# tonic's `Code` descriptions, which ztunnel's "signing gRPC error (...)" shows.
CODE_DESCRIPTIONS = {
    0: "The operation completed successfully", 1: "The operation was cancelled", 2: "Unknown error",
    3: "Client specified an invalid argument", 4: "Deadline expired before operation could complete",
    5: "Some requested entity was not found", 6: "Some entity that we attempted to create already exists",
    7: "The caller does not have permission to execute the specified operation",
    8: "Some resource has been exhausted", 9: "The system is not in a state required for the operation's execution",
    10: "The operation was aborted", 11: "Operation was attempted past the valid range",
    12: "Operation is not implemented or not supported", 13: "Internal error",
    14: "The service is currently unavailable", 15: "Unrecoverable data loss or corruption",
    16: "The request does not have valid authentication credentials",
}


class CAClientError(Exception):
    """Any failure to get a certificate."""


class SigningError(CAClientError):
    """The RPC failed: a gRPC code, its name and the message (the CA's, or the transport's)."""

    def __init__(self, code: int, status: str, message: str) -> None:
        self.code = code
        self.status = status
        self.message = message
        description = CODE_DESCRIPTIONS.get(code, f"Unknown code {code}")
        super().__init__(f"signing gRPC error ({description}): {message}")


class CertificateRefused(SigningError):
    """The CA answered with a refusal (authentication, impersonation, CSR or TTL)."""


class CAUnavailable(SigningError):
    """The CA could not be reached or did not finish the exchange (connect, TLS, HTTP/2, deadline)."""


class SanError(CAClientError):
    """The CA signed a leaf for another identity than the one asked for."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        super().__init__(f"did not find expected SAN: {identity}")


class EmptyResponse(CAClientError):
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        super().__init__(f"chain returned from CA is empty for: {identity}")


@dataclass(frozen=True)
class WorkloadCertificate:
    """A key and the chain the CA returned (leaf first, root last), for `identity`.

    `chain_pem` is what a TLS endpoint presents (leaf and intermediates); `root_pem` the root the
    chain ends in, which ztunnel trusts for its peers.
    """

    identity: Identity
    key_pem: bytes
    chain_pems: tuple[bytes, ...]
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.chain_pems[0]

    @property
    def chain_pem(self) -> bytes:
        return b"".join(self.chain_pems[:-1] if len(self.chain_pems) > 1 else self.chain_pems)

    @property
    def root_pem(self) -> bytes:
        return self.chain_pems[-1]

    @property
    def not_before(self) -> datetime.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc

    @property
    def refresh_at(self) -> datetime.datetime:
        """Half way through the lifetime, when ztunnel renews."""
        return self.not_before + (self.not_after - self.not_before) / 2


def client_context(root_pem: bytes) -> ssl.SSLContext:
    """TLS to the CA: its certificate must chain to `root_pem` and name the server we asked for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=root_pem.decode())
    context.set_alpn_protocols([ALPN_H2])
    return context


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def _call(address: str, root_pem: bytes, server_name: str, headers: list[tuple[str, str]],
                body: bytes) -> tuple[int, bytes]:
    host, port = _split(address)
    try:
        transport = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise CAUnavailable(UNAVAILABLE, "Unavailable", f"client error (Connect): {exc}") from exc
    stream = trio.SSLStream(transport, client_context(root_pem), server_hostname=server_name,
                            https_compatible=True)
    try:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            raise CAUnavailable(UNAVAILABLE, "Unavailable",
                                f"client error (Connect): tls handshake error: {exc.__cause__ or exc}") from exc
        async with open_h2_connection(stream, authority=f"{server_name}:{port}") as conn:
            response = await conn.request("POST", PATH, headers=headers, body=body, max_body=MAX_RESPONSE)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise CAUnavailable(UNAVAILABLE, "Unavailable", f"transport error: {exc}") from exc
    finally:
        await trio.aclose_forcefully(stream)
    return response.status, response.body


def _refusal(status: int, body: bytes) -> CertificateRefused:
    try:
        answer = json.loads(body)
        return CertificateRefused(int(answer["code"]), str(answer["status"]), str(answer["message"]))
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip()
        return CertificateRefused(2, "Unknown", f"HTTP status {status}: {text}")


def _chain(body: bytes, identity: Identity) -> list[bytes]:
    try:
        chain = json.loads(body)["certChain"]
        if not isinstance(chain, list) or not all(isinstance(pem, str) for pem in chain):
            raise TypeError("certChain is not a list of strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise CAClientError(f"invalid response from CA: {exc}") from exc
    if not chain:
        raise EmptyResponse(identity)
    return [pem.encode() for pem in chain]


async def fetch_certificate(address: str, root_pem: bytes, token: str, identity: str, *, impersonate: bool,
                            ttl_seconds: int = 86400, server_name: str = "istiod.istio-system.svc",
                            cluster_id: str = "Kubernetes", timeout: float = 10.0,
                            extra_headers: Sequence[tuple[str, str]] = ()) -> WorkloadCertificate:
    """Ask the CA at `address` (host:port) for a certificate for `identity`.

    `impersonate` sends `metadata.ImpersonatedIdentity` (ztunnel's shared mode: a node proxy asking
    for a workload on its node); without it the identity must be the token's own.
    """
    wanted = Identity.parse(identity)
    key = pki.generate_key()
    request: dict[str, Any] = {"csr": pki.create_csr(key, str(wanted)).decode(), "validityDuration": ttl_seconds}
    if impersonate:
        request["metadata"] = {IMPERSONATED_IDENTITY: str(wanted)}
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {token}"),
               ("clusterid", cluster_id), *extra_headers]
    with trio.move_on_after(timeout) as scope:
        status, body = await _call(address, root_pem, server_name, headers, json.dumps(request).encode())
    if scope.cancelled_caught:
        raise CAUnavailable(DEADLINE_EXCEEDED, "DeadlineExceeded", f"no answer from the CA within {timeout}s")
    if status != 200:
        raise _refusal(status, body)
    pems = _chain(body, wanted)
    try:
        leaf = pki.load_certificates(pems[0])[0]
        for pem in pems[1:]:
            pki.load_certificates(pem)
    except pki.PKIError as exc:
        raise CAClientError(f"invalid certificate chain from CA: {exc}") from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (leaf.public_key().public_bytes(serialization.Encoding.DER, public)
            != key.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise CAClientError("the certificate from the CA is not for the key of the request")
    if wanted not in cert_identities(leaf)[:1]:
        raise SanError(wanted)
    return WorkloadCertificate(wanted, pki.private_key_pem(key), tuple(pems), leaf)
