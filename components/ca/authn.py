"""Who is calling: the bearer token checked with a TokenReview, as istiod's KubeJWTAuthenticator.

The apiserver checks signature, expiry, audience and that the bound pod still exists with the uid
the token names; the caller is the service account the review reports, its pod from the review's
`extra` fields. Error texts are istiod's, wrapping the review's own reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from components.common.apiclient import ApiClient, ApiError

AUTHENTICATOR_TYPE = "KubeJWTAuthenticator"
BEARER_PREFIX = "Bearer "
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"


class AuthenticationError(Exception):
    """Why a request's credentials do not authenticate (istiod's authenticator error text)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its SPIFFE identity and the pod its token is bound to (istiod's KubernetesInfo)."""

    identity: str
    pod_name: str
    pod_namespace: str
    pod_uid: str
    service_account: str

    def __str__(self) -> str:
        return (f"Pod{{Name: {self.pod_name}, Namespace: {self.pod_namespace}, UID: {self.pod_uid}, "
                f"ServiceAccount: {self.service_account}}}")


def bearer_token(headers: Sequence[tuple[str, str]]) -> str:
    """The token of the first `authorization: Bearer ...` header, as istiod's ExtractBearerToken."""
    values = [value for name, value in headers if name == "authorization"]
    if not values:
        raise AuthenticationError("target JWT extraction error: no HTTP authorization header exists")
    for value in values:
        if value.startswith(BEARER_PREFIX):
            return value[len(BEARER_PREFIX):]
    raise AuthenticationError("target JWT extraction error: no bearer token exists in HTTP authorization header")


def _extra(user: dict, key: str) -> str:
    values = (user.get("extra") or {}).get(key) or []
    return str(values[0]) if values else ""


class KubeJWTAuthenticator:
    """Authenticates bearer tokens with TokenReviews against the apiserver."""

    def __init__(self, api: ApiClient, trust_domain: str, audiences: Sequence[str],
                 cluster_id: str = "Kubernetes") -> None:
        self.api = api
        self.trust_domain = trust_domain
        self.audiences = list(audiences)
        self.cluster_id = cluster_id

    async def authenticate(self, headers: Sequence[tuple[str, str]]) -> Caller:
        token = bearer_token(headers)
        cluster = next((value for name, value in headers if name == "clusterid"), "")
        if cluster and cluster != self.cluster_id:
            raise AuthenticationError(f"could not get cluster {cluster}'s kube client")
        failed = f'failed to validate the JWT from cluster "{cluster}"'
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": token, "audiences": self.audiences}}
        try:
            result = await self.api.create(review)
        except ApiError as exc:
            raise AuthenticationError(f"{failed}: {exc}") from exc
        status = result.get("status") or {}
        if status.get("error"):
            raise AuthenticationError(f"{failed}: the service account authentication returns an error: "
                                      f"{status['error']}")
        if not status.get("authenticated"):
            raise AuthenticationError(f"{failed}: the token is not authenticated")
        user = status.get("user") or {}
        if "system:serviceaccounts" not in (user.get("groups") or []):
            raise AuthenticationError(f"{failed}: the token is not a service account")
        parts = str(user.get("username", "")).split(":")
        if len(parts) != 4:
            raise AuthenticationError(f"{failed}: invalid username field in the token review result")
        namespace, account = parts[2], parts[3]
        if not account:
            raise AuthenticationError("failed to parse the JWT; service account required")
        if not namespace:
            raise AuthenticationError("failed to parse the JWT; namespace required")
        return Caller(identity=f"spiffe://{self.trust_domain}/ns/{namespace}/sa/{account}",
                      pod_name=_extra(user, POD_NAME_KEY), pod_namespace=namespace,
                      pod_uid=_extra(user, POD_UID_KEY), service_account=account)
