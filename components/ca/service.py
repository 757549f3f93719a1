"""CreateCertificate: decode the request, authenticate, authorize, sign, in istiod's order.

1. The body must decode (JSON for the protobuf `IstioCertificateRequest`).
2. The bearer token must authenticate (TokenReview); the caller's identity is its service account's.
3. With `metadata.ImpersonatedIdentity`, the node authorizer must allow the caller that identity,
   which then replaces the caller's.
4. The CSR must parse and ask for exactly the identity decided on (as istiod's RA checks SANs;
   istiod's own CA would silently sign the caller's identity instead), the TTL must be within the
   maximum (<= 0 means the default), and the leaf is signed for that one identity.

Every refusal raises `Refusal` and is logged as istiod logs it.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import Any, Sequence

from cryptography import x509

from components.ca import status
from components.ca.authn import AUTHENTICATOR_TYPE, AuthenticationError, Caller, KubeJWTAuthenticator
from components.ca.durations import format_duration
from components.ca.nodeauth import ImpersonationError, NodeAuthorizer
from components.ca.status import Refusal
from components.common import pki

log = logging.getLogger("serverca")
security_log = logging.getLogger("security")

IMPERSONATED_IDENTITY = "ImpersonatedIdentity"
FIELDS = {"csr": "csr", "validityDuration": "validity_duration", "validity_duration": "validity_duration",
          "metadata": "metadata"}


@dataclass(frozen=True)
class CertificateRequest:
    """`IstioCertificateRequest`: the PEM CSR, the requested lifetime in seconds, the impersonated identity."""

    csr: str
    validity_duration: int
    impersonated_identity: str


def _unmarshal_error(reason: str) -> Refusal:
    return Refusal(status.INVALID_ARGUMENT, f"{status.UNMARSHAL_ERROR}: {reason}")


def _int64(value: Any) -> int:
    """protojson's int64: a JSON integer or a decimal string."""
    if isinstance(value, bool):
        raise _unmarshal_error("invalid value for int64 field validityDuration")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _unmarshal_error(f"invalid value for int64 field validityDuration: {json.dumps(value)}")


def decode_request(body: bytes) -> CertificateRequest:
    """The JSON body as protojson would read it; anything else is a decoding refusal."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unmarshal_error(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise _unmarshal_error("the request must be a JSON object")
    fields: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in FIELDS:
            raise _unmarshal_error(f'unknown field "{name}"')
        fields[FIELDS[name]] = value
    csr = fields.get("csr") or ""
    if not isinstance(csr, str):
        raise _unmarshal_error("invalid value for string field csr")
    metadata = fields.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _unmarshal_error("invalid value for Struct field metadata")
    impersonated = metadata.get(IMPERSONATED_IDENTITY)
    # Struct.GetStringValue(): anything but a string reads as "".
    return CertificateRequest(csr=csr, validity_duration=_int64(fields.get("validity_duration") or 0),
                              impersonated_identity=impersonated if isinstance(impersonated, str) else "")


def _csr_error(reason: str) -> Refusal:
    return Refusal(status.INVALID_ARGUMENT, f"{status.CSR_SIGNING_ERROR} ({reason})")


def parse_csr(pem: str) -> x509.CertificateSigningRequest:
    """The CSR, with istiod's texts for one that is not PEM or not a CSR."""
    if "-----BEGIN" not in pem:
        raise _csr_error("certificate signing request is not properly encoded")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as exc:
        raise _csr_error("failed to parse X.509 certificate signing request") from exc
    if not csr.is_signature_valid:
        raise _csr_error("the certificate signing request's signature is invalid")
    return csr


class CertificateService:
    """The CA's one RPC; `node_authorizer` is None when no trusted node accounts are configured."""

    def __init__(self, root: pki.RootCA, authenticator: KubeJWTAuthenticator,
                 node_authorizer: NodeAuthorizer | None, default_ttl: float, max_ttl: float) -> None:
        self.root = root
        self.authenticator = authenticator
        self.node_authorizer = node_authorizer
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl

    async def create_certificate(self, headers: Sequence[tuple[str, str]], body: bytes,
                                 client: str) -> dict[str, Any]:
        """The response body `{"certChain": [leaf, root]}`, or `Refusal`."""
        request = decode_request(body)
        caller = await self._authenticate(headers, client)
        identity = caller.identity
        if request.impersonated_identity:
            self._authorize(caller, request.impersonated_identity, client)
            identity = request.impersonated_identity
        leaf = self._sign(request, caller, identity, client)
        return {"certChain": self.root.cert_chain(leaf)}

    async def _authenticate(self, headers: Sequence[tuple[str, str]], client: str) -> Caller:
        try:
            return await self.authenticator.authenticate(headers)
        except AuthenticationError as exc:
            security_log.error("Failed to authenticate client from %s: Authenticator %s: %s",
                               client, AUTHENTICATOR_TYPE, exc)
            raise Refusal(status.UNAUTHENTICATED, f"{status.AUTHENTICATE_FAILURE}: {exc}") from exc

    def _authorize(self, caller: Caller, requested: str, client: str) -> None:
        if self.node_authorizer is None:
            reason = "impersonation not allowed, as node authorizer (CA_TRUSTED_NODE_ACCOUNTS) is not configured"
            log.warning("%s\tclient=%s", reason, client)
            raise Refusal(status.UNAUTHENTICATED, f"{status.IMPERSONATION_FAILURE}: {reason}")
        try:
            self.node_authorizer.authorize(caller, requested)
        except ImpersonationError as exc:
            log.warning("impersonation failed for identity %s, error: %s\tclient=%s", requested, exc, client)
            raise Refusal(status.UNAUTHENTICATED, f"{status.IMPERSONATION_FAILURE}: {exc}") from exc

    def _sign(self, request: CertificateRequest, caller: Caller, identity: str, client: str) -> x509.Certificate:
        try:
            csr = parse_csr(request.csr)
            self._check_sans(csr, caller, identity)
            ttl = self._ttl(request.validity_duration)
            leaf = self.root.sign_csr(request.csr, [identity], datetime.timedelta(seconds=ttl))
        except Refusal as refusal:
            log.error("%s\tclient=%s", refusal.message, client)
            raise
        except pki.PKIError as exc:
            log.error("CSR signing error: %s\tclient=%s", exc, client)
            raise _csr_error(str(exc)) from exc
        by = "" if identity == caller.identity else f", requested by {caller.identity}"
        log.info("CSR signed for %s (ttl %s%s)\tclient=%s", identity, format_duration(ttl), by, client)
        return leaf

    @staticmethod
    def _check_sans(csr: x509.CertificateSigningRequest, caller: Caller, identity: str) -> None:
        asked = pki.csr_uris(csr)
        if asked == [identity]:
            return
        what = ", ".join(asked) or "no URI SAN"
        if identity == caller.identity:
            reason = f"the CSR asks for {what}, an identity the caller {caller.identity} does not have"
        else:
            reason = f"the CSR asks for {what}, not the impersonated identity {identity}"
        raise Refusal(status.INVALID_ARGUMENT,
                      f"{status.CSR_SIGNING_ERROR} (unable to validate SAN Identities in CSR): {reason}")

    def _ttl(self, requested: int) -> float:
        if requested > self.max_ttl:
            raise _csr_error(f"requested TTL {format_duration(requested)} is greater than the max allowed TTL "
                             f"{format_duration(self.max_ttl)}")
        return self.default_ttl if requested <= 0 else requested
