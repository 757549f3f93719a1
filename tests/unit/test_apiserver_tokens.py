"""Service-account tokens: TokenRequest, TokenReview and the issuer's public keys."""

from __future__ import annotations

import datetime

import jwt
from cryptography.hazmat.primitives import serialization

from components.apiserver.server import ApiServer
from components.common.apiclient import ApiClient
from tests.unit.test_apiserver_support import (add_node, api, apiserver, error_of, pod, raw,  # noqa: F401
                                               signing_key)

TOKEN_PATH = "/api/v1/namespaces/default/serviceaccounts/{sa}/token"
REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def token_request(pod_obj: dict | None = None, audiences: tuple[str, ...] = ("istio-ca",),
                  expiration: int = 3600) -> dict:
    spec: dict = {"audiences": list(audiences), "expirationSeconds": expiration}
    if pod_obj is not None:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod_obj["metadata"]["name"],
                                  "uid": pod_obj["metadata"]["uid"]}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


async def review(api: ApiClient, token: str, audiences: list[str]) -> dict:
    status, body = await raw(api, "POST", REVIEW_PATH, {"apiVersion": "authentication.k8s.io/v1",
                                                         "kind": "TokenReview",
                                                         "spec": {"token": token, "audiences": audiences}})
    assert status == 201, body
    return body["status"]


async def bound_pod(api: ApiClient) -> tuple[dict, dict, dict]:
    node = await add_node(api, "worker")
    created = await api.create(pod("ztunnel", nodeName="worker"))
    account = await api.get("v1", "ServiceAccount", "default", "default")
    return node, created, account


async def test_a_pod_bound_token_carries_kubernetes_claims(api: ApiClient, apiserver: ApiServer):
    node, created, account = await bound_pod(api)
    status, answer = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(created))
    assert status == 201 and answer["kind"] == "TokenRequest"
    token = answer["status"]["token"]
    assert answer["status"]["expirationTimestamp"].endswith("Z")
    public_pem = (apiserver.config.data_dir / "sa.pub").read_bytes()
    claims = jwt.decode(token, serialization.load_pem_public_key(public_pem), algorithms=["RS256"],
                        audience="istio-ca")
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["aud"] == ["istio-ca"] and claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "default", "uid": account["metadata"]["uid"]},
        "pod": {"name": "ztunnel", "uid": created["metadata"]["uid"]},
        "node": {"name": "worker", "uid": node["metadata"]["uid"]}}
    header = jwt.get_unverified_header(token)
    _, jwks = await raw(api, "GET", "/openid/v1/jwks")
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    _, discovery = await raw(api, "GET", "/.well-known/openid-configuration")
    assert discovery["issuer"] == ISSUER and discovery["jwks_uri"].endswith("/openid/v1/jwks")


async def test_token_review_authenticates_a_valid_token(api: ApiClient):
    _, created, account = await bound_pod(api)
    _, answer = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(created))
    result = await review(api, answer["status"]["token"], ["istio-ca"])
    assert result["authenticated"] is True and result["audiences"] == ["istio-ca"]
    user = result["user"]
    assert user["username"] == "system:serviceaccount:default:default"
    assert user["uid"] == account["metadata"]["uid"]
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["ztunnel"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [created["metadata"]["uid"]]
    assert user["extra"]["authentication.kubernetes.io/node-name"] == ["worker"]


async def test_token_review_refuses_bad_tokens(api: ApiClient, apiserver: ApiServer):
    _, created, account = await bound_pod(api)
    _, answer = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(created))
    token = answer["status"]["token"]
    wrong_audience = await review(api, token, ["kubernetes"])
    assert wrong_audience["authenticated"] is False
    assert wrong_audience["error"] == ('[invalid bearer token, token audiences ["istio-ca"] is invalid for the target '
                                       'audiences ["kubernetes"]]')
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    expired, _ = apiserver.tokens.issue(account, ["istio-ca"], 3600, created, now=past)
    result = await review(api, expired, ["istio-ca"])
    assert result["authenticated"] is False and "service account token has expired" in result["error"]
    garbage = await review(api, token[:-4] + "AAAA", ["istio-ca"])
    assert garbage["authenticated"] is False and garbage["error"].startswith("[invalid bearer token, ")
    await api.delete("v1", "Pod", "default", "ztunnel", grace_period_seconds=0)
    result = await review(api, token, ["istio-ca"])
    assert result["authenticated"] is False and "service account token has been invalidated" in result["error"]


async def test_token_requests_check_what_they_bind_to(api: ApiClient):
    _, created, _ = await bound_pod(api)
    await api.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other",
                                                                                 "namespace": "default"}})
    wrong_uid = {**created, "metadata": {**created["metadata"], "uid": "00000000-0000-0000-0000-000000000000"}}
    status, body = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(wrong_uid))
    assert (status, body["reason"]) == (409, "Conflict")
    status, body = await raw(api, "POST", TOKEN_PATH.format(sa="other"), token_request(created))
    assert (status, body["message"]) == (400, 'cannot bind token for serviceaccount "other" to pod running with '
                                              'different serviceaccount name.')
    status, body = await raw(api, "POST", TOKEN_PATH.format(sa="ghost"), token_request(created))
    assert (status, body["message"]) == (404, 'serviceaccounts "ghost" not found')
    gone = {**created, "metadata": {**created["metadata"], "name": "gone"}}
    status, body = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(gone))
    assert (status, body["message"]) == (404, 'pods "gone" not found')
    status, body = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(created, expiration=60))
    assert (status, body["reason"]) == (422, "Invalid")
    status, unbound = await raw(api, "POST", TOKEN_PATH.format(sa="default"), token_request(audiences=()))
    assert status == 201 and unbound["spec"]["audiences"] == [ISSUER]
    status, body = await raw(api, "GET", REVIEW_PATH)
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
    error = await error_of(api.get("v1", "ServiceAccount", "default", "nobody"))
    assert error.code == 404
