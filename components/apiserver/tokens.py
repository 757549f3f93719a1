"""Service-account tokens: the signing key, TokenRequest, TokenReview and the public keys.

Tokens are RS256 JWTs with the claims of Kubernetes' projected tokens: bound to a service account
and, optionally, a pod (and through it a node). A review checks the signature, expiry, audience,
and that the account and the bound pod still exist with the uids the token names.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.apiserver import errors, meta, resources
from components.apiserver.errors import FieldError
from components.apiserver.store import Store
from components.common import kinds

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
DELETED_POD_GRACE = datetime.timedelta(seconds=60)
TOKEN_REQUEST = kinds.Kind("authentication.k8s.io/v1", "TokenRequest", "tokenrequests")


def load_or_create_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """The signing key in `<data-dir>/sa.key`, made at first start; its public half goes to `sa.pub`."""
    key_path, pub_path = data_dir / "sa.key", data_dir / "sa.pub"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA private key")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = key_path.with_name("sa.key.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, key_path)
        log.info("Generated the service-account signing key %s", key_path)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenError(Exception):
    """Why a token does not authenticate."""


class TokenIssuer:
    def __init__(self, store: Store, key: rsa.RSAPrivateKey, issuer: str = ISSUER):
        self.store = store
        self.key = key
        self.public_key = key.public_key()
        self.issuer = issuer
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64url(hashlib.sha256(der).digest())

    # -- discovery -----------------------------------------------------------------------------

    def jwks(self) -> Obj:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {"keys": [{"use": "sig", "kty": "RSA", "kid": self.key_id, "alg": "RS256", "n": jwk["n"],
                          "e": jwk["e"]}]}

    def openid_configuration(self) -> Obj:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/openid/v1/jwks",
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    # -- issuing -------------------------------------------------------------------------------

    def issue(self, service_account: Obj, audiences: list[str], expiration_seconds: int,
              pod: Obj | None = None, node: Obj | None = None,
              now: datetime.datetime | None = None) -> tuple[str, datetime.datetime]:
        """A signed token and its expiry."""
        issued = now or meta.utc_now()
        expires = issued + datetime.timedelta(seconds=expiration_seconds)
        namespace = meta.namespace_of(service_account)
        private: Obj = {"namespace": namespace,
                        "serviceaccount": {"name": meta.name_of(service_account),
                                           "uid": service_account["metadata"]["uid"]}}
        if pod is not None:
            private["pod"] = {"name": meta.name_of(pod), "uid": pod["metadata"]["uid"]}
        if node is not None:
            private["node"] = {"name": meta.name_of(node), "uid": node["metadata"]["uid"]}
        claims = {"aud": audiences, "exp": int(expires.timestamp()), "iat": int(issued.timestamp()),
                  "iss": self.issuer, "jti": str(uuid.uuid4()), "kubernetes.io": private,
                  "nbf": int(issued.timestamp()),
                  "sub": f"system:serviceaccount:{namespace}:{meta.name_of(service_account)}"}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.key_id})
        return token, expires

    def token_request(self, namespace: str, account_name: str, body: Any) -> Obj:
        """`POST .../serviceaccounts/<sa>/token`: a TokenRequest answered with its token."""
        kind = resources.SERVICE_ACCOUNT
        account = self.store.get(resources.key(kind), namespace, account_name)
        if account is None:
            raise errors.not_found(kind, account_name)
        if not isinstance(body, dict) or not isinstance(body.get("spec", {}), dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type TokenRequest)")
        spec = dict(body.get("spec") or {})
        audiences = list(spec.get("audiences") or [self.issuer])
        expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(expiration, int) or expiration < MIN_EXPIRATION:
            raise errors.invalid(TOKEN_REQUEST, account_name, [FieldError(
                "Invalid", "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")])
        pod, node = self._bound_objects(account, spec.get("boundObjectRef"))
        token, expires = self.issue(account, audiences, expiration, pod, node)
        spec.update(audiences=audiences, expirationSeconds=expiration)
        return {"kind": "TokenRequest", "apiVersion": TOKEN_REQUEST.api_version,
                "metadata": {"name": account_name, "namespace": namespace, "creationTimestamp": None},
                "spec": spec, "status": {"token": token, "expirationTimestamp": meta.rfc3339(expires)}}

    def _bound_objects(self, account: Obj, ref: Any) -> tuple[Obj | None, Obj | None]:
        if not ref:
            return None, None
        if not isinstance(ref, dict):
            raise errors.bad_request("spec.boundObjectRef must be an object")
        kind_name, name, uid = ref.get("kind"), ref.get("name", ""), ref.get("uid")
        if kind_name == "Pod":
            pod = self.store.get(resources.key(resources.POD), meta.namespace_of(account), name)
            if pod is None:
                raise errors.not_found(resources.POD, name)
            self._check_uid(resources.POD, name, pod, uid)
            if (pod.get("spec") or {}).get("serviceAccountName") != meta.name_of(account):
                raise errors.bad_request(f'cannot bind token for serviceaccount "{meta.name_of(account)}" to pod '
                                         f"running with different serviceaccount name.")
            node_name = (pod.get("spec") or {}).get("nodeName")
            node = self.store.get(resources.key(resources.NODE), "", node_name) if node_name else None
            return pod, node
        if kind_name == "Node":
            node = self.store.get(resources.key(resources.NODE), "", name)
            if node is None:
                raise errors.not_found(resources.NODE, name)
            self._check_uid(resources.NODE, name, node, uid)
            return None, node
        raise errors.bad_request(f'cannot bind token to object of kind "{kind_name}": only Pod and Node are '
                                 f"supported")

    @staticmethod
    def _check_uid(kind: kinds.Kind, name: str, obj: Obj, uid: str | None) -> None:
        if uid and obj["metadata"]["uid"] != uid:
            raise errors.conflict(kind, name, f"the UID in the bound object reference ({uid}) does not match the "
                                              f"UID in record. The object might have been deleted and then recreated")

    # -- reviewing -----------------------------------------------------------------------------

    def authenticate(self, token: str, audiences: list[str]) -> tuple[Obj, list[str]]:
        """The user a token stands for and the audiences it is good for; raises TokenError."""
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"], issuer=self.issuer,
                                options={"verify_aud": False, "require": ["exp", "iss", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("service account token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("service account token is not valid yet") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("token was not issued by this cluster's service account issuer") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"token is not a valid service account token: {exc}") from exc
        token_audiences = claims.get("aud") or []
        if isinstance(token_audiences, str):
            token_audiences = [token_audiences]
        wanted = audiences or [self.issuer]
        matching = [a for a in wanted if a in token_audiences]
        if not matching:
            raise TokenError(f"token audiences {_go_list(token_audiences)} is invalid for the target audiences "
                             f"{_go_list(wanted)}")
        private = claims.get("kubernetes.io") or {}
        namespace = private.get("namespace", "")
        account_ref = private.get("serviceaccount") or {}
        account = self.store.get(resources.key(resources.SERVICE_ACCOUNT), namespace, account_ref.get("name", ""))
        if account is None:
            raise TokenError(f'serviceaccounts "{account_ref.get("name", "")}" not found')
        if account["metadata"]["uid"] != account_ref.get("uid"):
            raise TokenError(f"service account UID ({account['metadata']['uid']}) does not match claim "
                             f"({account_ref.get('uid')})")
        extra: dict[str, list[str]] = {}
        pod_ref = private.get("pod")
        if pod_ref:
            pod = self.store.get(resources.key(resources.POD), namespace, pod_ref.get("name", ""))
            if pod is None or self._long_deleted(pod):
                raise TokenError("service account token has been invalidated")
            if pod["metadata"]["uid"] != pod_ref.get("uid"):
                raise TokenError(f"pod UID ({pod['metadata']['uid']}) does not match claim ({pod_ref.get('uid')})")
            extra["authentication.kubernetes.io/pod-name"] = [pod_ref["name"]]
            extra["authentication.kubernetes.io/pod-uid"] = [pod_ref["uid"]]
        node_ref = private.get("node")
        if node_ref:
            extra["authentication.kubernetes.io/node-name"] = [node_ref.get("name", "")]
            extra["authentication.kubernetes.io/node-uid"] = [node_ref.get("uid", "")]
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
        user = {"username": claims["sub"], "uid": account["metadata"]["uid"],
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
                "extra": extra}
        return user, matching

    @staticmethod
    def _long_deleted(pod: Obj) -> bool:
        """A pod past its deletion by more than a minute no longer vouches for its tokens."""
        stamp = pod["metadata"].get("deletionTimestamp")
        return bool(stamp) and meta.parse_rfc3339(stamp) < meta.utc_now() - DELETED_POD_GRACE

    def token_review(self, body: Any) -> Obj:
        """`POST /apis/authentication.k8s.io/v1/tokenreviews`."""
        if not isinstance(body, dict) or not isinstance(body.get("spec", {}), dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type TokenReview)")
        spec = body.get("spec") or {}
        review = {"kind": "TokenReview", "apiVersion": resources.TOKEN_REVIEW.api_version,
                  "metadata": {"creationTimestamp": None}, "spec": spec}
        try:
            user, audiences = self.authenticate(str(spec.get("token") or ""), list(spec.get("audiences") or []))
        except TokenError as exc:
            review["status"] = {"authenticated": False, "user": {}, "error": f"[invalid bearer token, {exc}]"}
            return review
        review["status"] = {"authenticated": True, "user": user, "audiences": audiences}
        return review


def _go_list(values: list[str]) -> str:
    """A string list as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(f'"{v}"' for v in values) + "]"
