"""The mesh CA in a running cluster: node authorization and every refusal, from a pod holding a
ztunnel service-account token as ztunnel's chart mounts it (needs root)."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization

from harness.cluster import Cluster
from harness.pytest_plugin import DEFAULT_TOPOLOGY

pytestmark = pytest.mark.e2e
REQUEST = str(Path(__file__).with_name("ca_request.py"))
ON_WORKER = "spiffe://cluster.local/ns/ambient-demo/sa/notsleep"      # notsleep runs on ambient-worker
ONLY_ON_WORKER2 = "spiffe://cluster.local/ns/ambient-demo/sa/httpbin"  # httpbin runs on ambient-worker2

STANDIN = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: ztunnel, namespace: istio-system}
---
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, namespace: istio-system, labels: {app: ztunnel-standin}}
spec:
  serviceAccountName: ztunnel
  nodeSelector: {kubernetes.io/hostname: ambient-worker}
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox
    command: [sleep, infinity]
    volumeMounts:
    - {name: istio-token, mountPath: /var/run/secrets/tokens}
    - {name: istiod-ca-cert, mountPath: /var/run/secrets/istio}
  volumes:
  - name: istio-token
    projected:
      sources:
      - serviceAccountToken: {audience: istio-ca, expirationSeconds: 43200, path: istio-token}
  - name: istiod-ca-cert
    configMap: {name: istio-ca-root-cert}
"""


async def request(cluster: Cluster, identity: str, *extra: str) -> dict:
    result = await cluster.exec("ztunnel-standin", sys.executable, REQUEST, identity, *extra, namespace="istio-system")
    assert result.exit_code == 0, result
    return json.loads(result.stdout.strip().splitlines()[-1])


async def token_for(cluster: Cluster, namespace: str, account: str, pod: dict) -> str:
    answer = await cluster.api.call("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["istio-ca"], "expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"],
                                    "uid": pod["metadata"]["uid"]}}})
    return answer["status"]["token"]


def resign(token: str, key: rsa.RSAPrivateKey, **changes: int) -> str:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header.get("kid")})


def openssl(*args: str, input: str = "") -> str:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, text=True, check=True).stdout


async def test_ca_node_authorization_and_refusals(cluster_factory, tmp_path: Path) -> None:
    cluster = await cluster_factory(DEFAULT_TOPOLOGY, name="e2e-ca")
    result = await cluster.istioctl("install", "--set", "profile=ambient", "--set", "components.cni.enabled=false",
                                    "--set", "components.ztunnel.enabled=false", "-y")
    assert result.exit_code == 0, result.stderr
    await cluster.apply(STANDIN % {"name": "ztunnel-standin"})
    (await cluster.kubectl("wait", "--for=condition=Ready", "pod/ztunnel-standin", "-n", "istio-system",
                           "--timeout=60s")).check()

    async def good() -> dict:
        answer = await request(cluster, ON_WORKER, "--impersonate", "--ttl", "3600")
        assert answer["ok"], answer
        return answer

    with trio.fail_after(20):  # until the endpoints controller and kube-proxy have programmed istiod's Service
        while not (answer := await request(cluster, ON_WORKER, "--impersonate", "--ttl", "3600")).get("refused", True):
            await trio.sleep(0.1)
    issued = await good()
    leaf, root = issued["chain"][0], cluster.run.root_cert.read_text()
    (tmp_path / "leaf.pem").write_text(leaf)
    (tmp_path / "root.pem").write_text(root)
    assert openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")).strip().endswith(": OK")
    text = openssl("x509", "-noout", "-text", input=leaf)
    assert "URI:" + ON_WORKER in text and "X509v3 Subject Alternative Name: critical" in text
    dates = dict(line.split("=", 1) for line in openssl("x509", "-noout", "-dates", input=leaf).splitlines())
    fmt = "%b %d %H:%M:%S %Y %Z"
    lifetime = (datetime.datetime.strptime(" ".join(dates["notAfter"].split()), fmt)
                - datetime.datetime.strptime(" ".join(dates["notBefore"].split()), fmt))
    assert lifetime == datetime.timedelta(seconds=3600 + 120)  # backdated 2 minutes, as istiod does

    refused = await request(cluster, ONLY_ON_WORKER2, "--impersonate")
    assert not refused["ok"] and refused["code"] == 16
    assert 'no instances of "ambient-demo/httpbin" found on node "ambient-worker"' in refused["message"]
    await good()

    standin = await cluster.api.get("v1", "Pod", "istio-system", "ztunnel-standin")
    notsleep = (await cluster.api.list("v1", "Pod", "ambient-demo", label_selector="app=notsleep"))["items"][0]
    foreign = await token_for(cluster, "ambient-demo", "notsleep", notsleep)
    refused = await request(cluster, ON_WORKER, "--impersonate", "--token", foreign)
    assert not refused["ok"] and "is not allowed to impersonate" in refused["message"]
    await good()

    own = await token_for(cluster, "istio-system", "ztunnel", standin)
    apiserver_key = serialization.load_pem_private_key((cluster.run.data / "sa.key").read_bytes(), None)
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    expired = resign(own, apiserver_key, iat=now - 7200, nbf=now - 7200, exp=now - 60)
    refused = await request(cluster, ON_WORKER, "--impersonate", "--token", expired)
    assert not refused["ok"] and refused["code"] == 16 and "request authenticate failure" in refused["message"]
    assert "expired" in refused["message"].lower()
    await good()

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = await request(cluster, ON_WORKER, "--impersonate", "--token", resign(own, other_key))
    assert not refused["ok"] and refused["code"] == 16 and "request authenticate failure" in refused["message"]
    await good()

    await cluster.apply(STANDIN % {"name": "ztunnel-gone"})
    gone = await cluster.api.get("v1", "Pod", "istio-system", "ztunnel-gone")
    gone_token = await token_for(cluster, "istio-system", "ztunnel", gone)
    (await cluster.kubectl("delete", "pod", "ztunnel-gone", "-n", "istio-system", "--timeout=30s")).check()
    refused = await request(cluster, ON_WORKER, "--impersonate", "--token", gone_token)
    assert not refused["ok"] and refused["code"] == 16, refused
    await good()

    logs = (await cluster.kubectl("logs", "-n", "istio-system", "deploy/istiod")).stdout
    assert 'no instances of "ambient-demo/httpbin" found on node "ambient-worker"' in logs
    assert "is not allowed to impersonate" in logs
