"""The CA against the real apiserver: issuing, node authorization, refusals with istiod's texts,
malformed requests, and a CA that keeps serving after each of them."""

from __future__ import annotations

import datetime
import json
import logging
import re
import subprocess

import jwt
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from components.ca.server import CAServer
from components.common import caclient, pki
from components.common.apiclient import ApiClient
from components.common.log import IstioFormatter
from components.common.tls import Identity
from tests.unit.test_apiserver_support import api, apiserver, signing_key  # noqa: F401
from tests.unit.test_ca_support import (HTTPBIN, SLEEP, ZTUNNEL, ca, call_raw, cluster, create_pod,  # noqa: F401
                                        fetch, issue_token, refused)


async def still_serving(ca: CAServer, api: ApiClient, cluster: dict) -> None:
    """A good request right after a refusal: the CA is unharmed."""
    cert = await fetch(ca, await issue_token(api, cluster["sleep"]), SLEEP)
    assert cert.identity == Identity.parse(SLEEP)


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# Issuing

async def test_a_workload_gets_its_own_identity_and_openssl_verifies_the_chain(ca, api, cluster, tmp_path):
    token = await issue_token(api, cluster["sleep"])
    cert = await fetch(ca, token, SLEEP, ttl_seconds=3600)
    assert cert.identity == Identity.parse(SLEEP)
    assert len(cert.chain_pems) == 2 and cert.root_pem == ca.root.cert_pem
    assert all(pem.endswith(b"-----\n") and not pem.endswith(b"\n\n") for pem in cert.chain_pems)
    assert cert.not_after - cert.not_before == datetime.timedelta(seconds=3600 + 120)
    assert cert.refresh_at == cert.not_before + (cert.not_after - cert.not_before) / 2
    (tmp_path / "root.pem").write_bytes(cert.root_pem)
    (tmp_path / "leaf.pem").write_bytes(cert.cert_pem)
    verified = _openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem"))
    assert verified.strip() == f"{tmp_path / 'leaf.pem'}: OK"
    text = _openssl("x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-text")
    assert f"URI:{SLEEP}" in text
    assert "X509v3 Subject Alternative Name: critical" in text
    stamps = re.findall(r"Not (?:Before|After) *: (.+)", text)
    before, after = (datetime.datetime.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z") for s in stamps)
    assert after - before == datetime.timedelta(seconds=3600 + 120)
    assert "Issuer: O = cluster.local" in text


async def test_the_default_ttl_applies_when_none_is_asked_for(ca, api, cluster):
    cert = await fetch(ca, await issue_token(api, cluster["sleep"]), SLEEP, ttl_seconds=0)
    assert cert.not_after - cert.not_before == datetime.timedelta(hours=24, minutes=2)


async def test_a_ztunnel_gets_the_identity_of_a_pod_on_its_node(ca, api, cluster, caplog):
    caplog.set_level(logging.INFO)
    token = await issue_token(api, cluster["ztunnel"])
    cert = await fetch(ca, token, SLEEP, impersonate=True)
    assert cert.identity == Identity.parse(SLEEP)
    own = await fetch(ca, token, ZTUNNEL, impersonate=True)
    assert own.identity == Identity.parse(ZTUNNEL)
    signed = [IstioFormatter().format(r) for r in caplog.records if r.name == "serverca"]
    assert any(f"\tinfo\tserverca\tCSR signed for {SLEEP} (ttl 24h0m0s, requested by {ZTUNNEL})\tclient=127.0.0.1:"
               in line for line in signed), signed
    other = await fetch(ca, await issue_token(api, cluster["ztunnel2"]), HTTPBIN, impersonate=True)
    assert other.identity == Identity.parse(HTTPBIN)


# Refusals, each followed by a good request

async def test_an_identity_only_on_another_node_is_refused_and_logged_as_istiod(ca, api, cluster, caplog):
    refusal = await refused(ca, await issue_token(api, cluster["ztunnel"]), HTTPBIN, impersonate=True)
    assert (refusal.code, refusal.status) == (16, "Unauthenticated")
    assert refusal.message == ('request impersonation authentication failure: '
                               'no instances of "default/httpbin" found on node "worker"')
    assert str(refusal) == ("signing gRPC error (The request does not have valid authentication credentials): "
                            + refusal.message)
    lines = [IstioFormatter().format(r) for r in caplog.records if r.name == "serverca"]
    assert any(f"\twarn\tserverca\timpersonation failed for identity {HTTPBIN}, error: no instances of "
               '"default/httpbin" found on node "worker"\tclient=127.0.0.1:' in line for line in lines), lines
    await still_serving(ca, api, cluster)


async def test_a_caller_outside_the_trusted_node_accounts_may_not_impersonate(ca, api, cluster):
    rogue = cluster["rogue"]
    refusal = await refused(ca, await issue_token(api, rogue), SLEEP, impersonate=True)
    assert refusal.code == 16
    assert refusal.message == (
        "request impersonation authentication failure: caller (Pod{Name: ztunnel-lb7hl, Namespace: istio-system, "
        f"UID: {rogue['metadata']['uid']}, ServiceAccount: ztunnel-sa}}) is not allowed to impersonate")
    await still_serving(ca, api, cluster)


async def test_an_expired_token_is_refused(ca, api, apiserver, cluster, caplog):
    account = await api.get("v1", "ServiceAccount", "default", "sleep")
    node = await api.get("v1", "Node", None, "worker")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    token, _ = apiserver.tokens.issue(account, ["istio-ca"], 3600, cluster["sleep"], node, now=past)
    refusal = await refused(ca, token, SLEEP)
    assert (refusal.code, refusal.status) == (16, "Unauthenticated")
    assert refusal.message == ('request authenticate failure: failed to validate the JWT from cluster "Kubernetes": '
                               "the service account authentication returns an error: "
                               "[invalid bearer token, service account token has expired]")
    lines = [IstioFormatter().format(r) for r in caplog.records if r.name == "security"]
    assert any("\terror\tsecurity\tFailed to authenticate client from 127.0.0.1:" in line and
               line.endswith(": Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster "
                             '"Kubernetes": the service account authentication returns an error: '
                             "[invalid bearer token, service account token has expired]") for line in lines), lines
    await still_serving(ca, api, cluster)


async def test_a_token_signed_by_another_key_is_refused(ca, api, cluster):
    token = await issue_token(api, cluster["sleep"])
    claims = jwt.decode(token, options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers=jwt.get_unverified_header(token))
    refusal = await refused(ca, forged, SLEEP)
    assert refusal.code == 16
    assert refusal.message.startswith('request authenticate failure: failed to validate the JWT from cluster '
                                      '"Kubernetes": the service account authentication returns an error: '
                                      "[invalid bearer token, token is not a valid service account token")
    await still_serving(ca, api, cluster)


async def test_a_token_whose_pod_was_deleted_is_refused(ca, api, cluster):
    doomed = await create_pod(api, "default", "doomed", "sleep", "worker")
    token = await issue_token(api, doomed)
    await api.delete("v1", "Pod", "default", "doomed", grace_period_seconds=0)
    refusal = await refused(ca, token, SLEEP)
    assert refusal.code == 16
    assert refusal.message.endswith("[invalid bearer token, service account token has been invalidated]")
    await still_serving(ca, api, cluster)


async def test_a_token_for_another_audience_is_refused(ca, api, cluster):
    token = await issue_token(api, cluster["sleep"], audiences=("other",))
    refusal = await refused(ca, token, SLEEP)
    assert refusal.code == 16
    assert refusal.message.endswith('[invalid bearer token, token audiences ["other"] is invalid for the target '
                                    'audiences ["istio-ca"]]')
    await still_serving(ca, api, cluster)


async def test_a_csr_for_another_identity_without_impersonation_is_refused(ca, api, cluster):
    refusal = await refused(ca, await issue_token(api, cluster["sleep"]), HTTPBIN)
    assert (refusal.code, refusal.status) == (3, "InvalidArgument")
    assert refusal.message == ("CSR signing error (unable to validate SAN Identities in CSR): the CSR asks for "
                               f"{HTTPBIN}, an identity the caller {SLEEP} does not have")
    await still_serving(ca, api, cluster)


async def test_a_ttl_over_the_maximum_is_refused(ca, api, cluster):
    refusal = await refused(ca, await issue_token(api, cluster["sleep"]), SLEEP, ttl_seconds=2160 * 3600 + 1)
    assert (refusal.code, refusal.status) == (3, "InvalidArgument")
    assert refusal.message == ("CSR signing error (requested TTL 2160h0m1s is greater than the max allowed TTL "
                               "2160h0m0s)")
    await still_serving(ca, api, cluster)


async def test_a_failed_caller_pod_may_not_impersonate(ca, api, cluster):
    token = await issue_token(api, cluster["ztunnel"])
    await api.patch("v1", "Pod", "istio-system", "ztunnel-a", {"status": {"phase": "Failed"}}, subresource="status")
    with trio.fail_after(3):
        while True:
            try:
                await fetch(ca, token, SLEEP, impersonate=True)
            except caclient.CertificateRefused as refusal:
                assert refusal.message == ('request impersonation authentication failure: failed to lookup pod: '
                                           'pod "ztunnel-a" not found')
                break
            await trio.sleep(0.01)
    await still_serving(ca, api, cluster)


async def test_a_pod_arriving_on_the_node_is_authorized_once_watched(ca, api, cluster):
    token = await issue_token(api, cluster["ztunnel"])
    await refused(ca, token, HTTPBIN, impersonate=True)
    await create_pod(api, "default", "httpbin-2", "httpbin", "worker")
    with trio.fail_after(3):
        while True:
            try:
                cert = await fetch(ca, token, HTTPBIN, impersonate=True)
                break
            except caclient.CertificateRefused:
                await trio.sleep(0.01)
    assert cert.identity == Identity.parse(HTTPBIN)


# Malformed requests

def _good_body(identity: str = SLEEP, **extra: object) -> bytes:
    return json.dumps({"csr": pki.create_csr(pki.generate_key(), identity).decode(), "validityDuration": 3600,
                       **extra}).encode()


@pytest.mark.parametrize("case", ["bad json", "json array", "unknown field", "bad duration", "metadata not object",
                                  "no pem", "bad pem", "no csr", "no authorization", "basic auth", "other cluster",
                                  "bad impersonated identity", "wrong method name", "wrong service", "GET"])
async def test_malformed_requests_are_refused_and_the_ca_keeps_serving(ca, api, cluster, case):
    sleep_token = await issue_token(api, cluster["sleep"])
    ztunnel_token = await issue_token(api, cluster["ztunnel"])
    auth = [("content-type", "application/json"), ("authorization", f"Bearer {sleep_token}"),
            ("clusterid", "Kubernetes")]
    body = _good_body()
    path, method = "/istio.v1.auth.IstioCertificateService/CreateCertificate", "POST"
    expect: tuple[int, int, str]
    if case == "bad json":
        body, expect = b"{not json", (400, 3, "grpc: error unmarshalling request: invalid JSON")
    elif case == "json array":
        body, expect = b"[]", (400, 3, "grpc: error unmarshalling request: the request must be a JSON object")
    elif case == "unknown field":
        body, expect = _good_body(bogus=1), (400, 3, 'grpc: error unmarshalling request: unknown field "bogus"')
    elif case == "bad duration":
        body = _good_body(validityDuration="soon")
        expect = (400, 3, "grpc: error unmarshalling request: invalid value for int64 field validityDuration")
    elif case == "metadata not object":
        body = _good_body(metadata=["x"])
        expect = (400, 3, "grpc: error unmarshalling request: invalid value for Struct field metadata")
    elif case == "no pem":
        body = json.dumps({"csr": "hello"}).encode()
        expect = (400, 3, "CSR signing error (certificate signing request is not properly encoded)")
    elif case == "bad pem":
        pem = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        body = json.dumps({"csr": pem}).encode()
        expect = (400, 3, "CSR signing error (failed to parse X.509 certificate signing request)")
    elif case == "no csr":
        body = b"{}"
        expect = (400, 3, "CSR signing error (certificate signing request is not properly encoded)")
    elif case == "no authorization":
        auth = [("content-type", "application/json")]
        expect = (401, 16, "request authenticate failure: target JWT extraction error: no HTTP authorization header "
                           "exists")
    elif case == "basic auth":
        auth = [("authorization", "Basic Zm9vOmJhcg==")]
        expect = (401, 16, "request authenticate failure: target JWT extraction error: no bearer token exists in HTTP "
                           "authorization header")
    elif case == "other cluster":
        auth = [("authorization", f"Bearer {sleep_token}"), ("clusterid", "cluster2")]
        expect = (401, 16, "request authenticate failure: could not get cluster cluster2's kube client")
    elif case == "bad impersonated identity":
        auth = [("authorization", f"Bearer {ztunnel_token}")]
        body = _good_body(metadata={"ImpersonatedIdentity": "spiffe://cluster.local/sleep"})
        expect = (401, 16, "request impersonation authentication failure: failed to validate impersonated identity "
                           "spiffe://cluster.local/sleep")
    elif case == "wrong method name":
        path = "/istio.v1.auth.IstioCertificateService/Sign"
        expect = (404, 12, "unknown method Sign for service istio.v1.auth.IstioCertificateService")
    elif case == "wrong service":
        path = "/istio.v1.auth.Other/CreateCertificate"
        expect = (404, 12, "unknown service istio.v1.auth.Other")
    else:
        method = "GET"
        expect = (405, 12, "method GET not allowed: use POST")
    http_status, answer = await call_raw(ca, auth, body, path=path, method=method)
    assert (http_status, answer["code"]) == expect[:2], answer
    assert answer["message"].startswith(expect[2]), answer
    await still_serving(ca, api, cluster)


async def test_good_raw_request_gets_leaf_then_root(ca, api, cluster):
    token = await issue_token(api, cluster["sleep"])
    status, answer = await call_raw(ca, [("authorization", f"Bearer {token}"), ("clusterid", "Kubernetes")],
                                    _good_body())
    assert status == 200 and list(answer) == ["certChain"]
    leaf, root = (pki.load_certificates(pem)[0] for pem in answer["certChain"])
    assert root == ca.root.cert and leaf.issuer == root.subject


# TLS of the CA itself

async def test_the_ca_serves_tls_for_istiods_names_only(ca, api, cluster):
    token = await issue_token(api, cluster["sleep"])
    for name in ("istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "istiod", "istio-ca"):
        assert (await fetch(ca, token, SLEEP, server_name=name)).identity == Identity.parse(SLEEP)
    with pytest.raises(caclient.CAUnavailable, match="tls handshake error"):
        await fetch(ca, token, SLEEP, server_name="evil.example")
    other_root = pki.RootCA.generate()
    with pytest.raises(caclient.CAUnavailable) as info:
        await caclient.fetch_certificate(f"127.0.0.1:{ca.port}", other_root.cert_pem, token, SLEEP, impersonate=False)
    assert info.value.code == 14 and "certificate verify failed" in info.value.message
    await still_serving(ca, api, cluster)


async def test_readiness_answers_once_serving(ca):
    from components.common import http

    response = await http.request(f"127.0.0.1:{ca.ready_port}", "GET", "/ready")
    assert response.status == 200 and response.body == b"ready\n"
