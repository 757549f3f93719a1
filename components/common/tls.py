"""SPIFFE identities and the mutual TLS that HBONE uses, as ztunnel sets it up.

Both sides: TLS 1.3 only, ALPN `h2`, no session tickets, a certificate chain presented and the
peer's chain verified against the mesh root. The client sends no SNI and checks no host name;
instead, after the handshake, at least one SPIFFE URI SAN of the server leaf must be one of the
identities it expected (`verify_server_identity`). The server requires a client certificate and,
after the handshake, checks that the client's trust domain is its own (`verify_client_trust_domain`);
which identity may do what is left to authorization. Python's ssl module has no verification
callbacks, hence the checks right after the handshake (`tls_connect`, `tls_accept`), which return
a `TLSStream` (tlsstream.py: trio.SSLStream's job, reading many records per call). Python cannot
narrow TLS 1.3 cipher suites; OpenSSL's default order negotiates TLS_AES_256_GCM_SHA384, ztunnel's
first choice.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Iterable

import trio
from cryptography import x509

from components.common.tlsstream import TLSStream

SPIFFE_PREFIX = "spiffe://"
DEFAULT_TRUST_DOMAIN = "cluster.local"
ALPN_H2 = "h2"


class IdentityError(ValueError):
    """A string that is not a `spiffe://<td>/ns/<ns>/sa/<sa>` identity."""


class TLSError(Exception):
    """A TLS connection that must not be used: handshake failure or the wrong peer identity."""


@dataclass(frozen=True, order=True)
class Identity:
    """A SPIFFE workload identity, `spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>`."""

    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{SPIFFE_PREFIX}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, text: str) -> "Identity":
        """Parse as ztunnel does: exactly five path segments, the second `ns`, the fourth `sa`."""
        if not text.startswith(SPIFFE_PREFIX):
            raise IdentityError(f"invalid spiffe: {text}")
        parts = text[len(SPIFFE_PREFIX):].split("/")
        if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
            raise IdentityError(f"invalid spiffe: {text}")
        return cls(parts[0], parts[2], parts[4])


def parse_identity(text: str) -> Identity:
    return Identity.parse(text)


def spiffe_uris(cert: x509.Certificate) -> list[str]:
    """The certificate's URI SANs that start with `spiffe://`, in order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [uri for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith(SPIFFE_PREFIX)]


def cert_identities(cert: x509.Certificate) -> list[Identity]:
    """The certificate's SPIFFE identities, in SAN order; URIs that do not parse are skipped."""
    identities = []
    for uri in spiffe_uris(cert):
        try:
            identities.append(Identity.parse(uri))
        except IdentityError:
            continue
    return identities


def peer_certificate(stream: TLSStream | trio.SSLStream) -> x509.Certificate:
    """The leaf certificate the peer presented on a completed handshake."""
    der = stream.getpeercert(binary_form=True)
    if not der:
        raise TLSError("peer presented no certificate")
    return x509.load_der_x509_certificate(der)


def _display(identities: Iterable[object]) -> str:
    return ",".join(str(i) for i in identities)


def verify_server_identity(cert: x509.Certificate, expected: Iterable[Identity | str]) -> Identity:
    """Check that one of the server leaf's SPIFFE SANs is expected; return the peer identity.

    The peer identity is the leaf's first SPIFFE SAN, as ztunnel reports it.
    """
    wanted = [i if isinstance(i, Identity) else Identity.parse(i) for i in expected]
    found = cert_identities(cert)
    if any(identity in wanted for identity in found):
        return found[0]
    raise TLSError("identity verification error: peer did not present the expected SAN "
                   f"({_display(wanted)}), got {_display(found)}")


def verify_client_trust_domain(cert: x509.Certificate, trust_domain: str) -> Identity:
    """Check that the client leaf has a SPIFFE SAN in our trust domain; return the peer identity."""
    found = cert_identities(cert)
    if any(identity.trust_domain == trust_domain for identity in found):
        return found[0]
    raise TLSError("identity verification error: peer did not present the expected trustdomain "
                   f"({trust_domain}), got {_display(found)}")


def load_cert_chain_pem(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """`load_cert_chain` from memory: ssl only reads files, so use a private temporary directory."""
    with tempfile.TemporaryDirectory(prefix="tls-") as directory:
        paths = []
        for name, data in (("chain.pem", chain_pem), ("key.pem", key_pem)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            paths.append(path)
        context.load_cert_chain(certfile=paths[0], keyfile=paths[1])


def _context(server: bool, chain_pem: bytes, key_pem: bytes, root_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_TICKET
    context.set_alpn_protocols([ALPN_H2])
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=root_pem.decode())
    load_cert_chain_pem(context, chain_pem, key_pem)
    return context


def server_context(chain_pem: bytes, key_pem: bytes, root_pem: bytes) -> ssl.SSLContext:
    """The HBONE server side: present our chain, require and verify a client chain."""
    return _context(True, chain_pem, key_pem, root_pem)


def client_context(chain_pem: bytes, key_pem: bytes, root_pem: bytes) -> ssl.SSLContext:
    """The HBONE client side: present our chain, verify the server chain; no host name check."""
    return _context(False, chain_pem, key_pem, root_pem)


async def _handshake(stream: TLSStream) -> None:
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(stream)
        cause = exc.__cause__ or exc
        raise TLSError(f"tls handshake error: {cause}") from exc


async def tls_connect(transport: trio.abc.Stream, context: ssl.SSLContext,
                      expected: Iterable[Identity | str]) -> tuple[TLSStream, Identity]:
    """Client handshake without SNI, then the SAN check; the stream is closed on any failure."""
    stream = TLSStream(transport, context, server_hostname=None)
    await _handshake(stream)
    try:
        return stream, verify_server_identity(peer_certificate(stream), expected)
    except (TLSError, IdentityError):
        await trio.aclose_forcefully(stream)
        raise


async def tls_accept(transport: trio.abc.Stream, context: ssl.SSLContext,
                     trust_domain: str = DEFAULT_TRUST_DOMAIN) -> tuple[TLSStream, Identity]:
    """Server handshake, then the trust-domain check; the stream is closed on any failure."""
    stream = TLSStream(transport, context, server_side=True)
    await _handshake(stream)
    try:
        return stream, verify_client_trust_domain(peer_certificate(stream), trust_domain)
    except TLSError:
        await trio.aclose_forcefully(stream)
        raise
