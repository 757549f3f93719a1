"""Fixtures for the CA tests: the real apiserver in-process (Unix socket), a small cluster (two
worker nodes, ztunnels, workloads), and the CA itself on an ephemeral loopback port."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from components.ca.server import PATH, CAServer, Config
from components.common import caclient
from components.common.apiclient import ApiClient
from components.common.h2conn import open_h2_connection
from tests.unit.test_apiserver_support import add_node, pod, raw

TD = "cluster.local"
SLEEP = f"spiffe://{TD}/ns/default/sa/sleep"
HTTPBIN = f"spiffe://{TD}/ns/default/sa/httpbin"
ZTUNNEL = f"spiffe://{TD}/ns/istio-system/sa/ztunnel"
SERVER_NAME = "istiod.istio-system.svc"


async def create_account(api: ApiClient, namespace: str, name: str) -> None:
    await api.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})


async def create_pod(api: ApiClient, namespace: str, name: str, account: str, node: str) -> dict[str, Any]:
    return await api.create(pod(name, namespace, serviceAccountName=account, nodeName=node))


async def issue_token(api: ApiClient, pod_obj: dict[str, Any], audiences: tuple[str, ...] = ("istio-ca",)) -> str:
    """A TokenRequest bound to the pod, as the kubelet projects istio-token."""
    namespace, account = pod_obj["metadata"]["namespace"], pod_obj["spec"]["serviceAccountName"]
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": list(audiences), "expirationSeconds": 3600,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod_obj["metadata"]["name"],
                                           "uid": pod_obj["metadata"]["uid"]}}}
    status, body = await raw(api, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", request)
    assert status == 201, body
    return body["status"]["token"]


@pytest.fixture
async def cluster(api: ApiClient) -> dict[str, dict[str, Any]]:
    """Nodes worker and worker2; a ztunnel on each, a ztunnel under an untrusted account on worker,
    sleep on worker, httpbin on worker2."""
    await add_node(api, "worker")
    await add_node(api, "worker2")
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    for namespace, name in (("istio-system", "ztunnel"), ("istio-system", "ztunnel-sa"),
                            ("default", "sleep"), ("default", "httpbin")):
        await create_account(api, namespace, name)
    return {
        "ztunnel": await create_pod(api, "istio-system", "ztunnel-a", "ztunnel", "worker"),
        "ztunnel2": await create_pod(api, "istio-system", "ztunnel-b", "ztunnel", "worker2"),
        "rogue": await create_pod(api, "istio-system", "ztunnel-lb7hl", "ztunnel-sa", "worker"),
        "sleep": await create_pod(api, "default", "sleep", "sleep", "worker"),
        "httpbin": await create_pod(api, "default", "httpbin", "httpbin", "worker2"),
    }


def ca_config(api: ApiClient, **changes: Any) -> Config:
    return Config(api=api.address, listen="127.0.0.1:0", ready="127.0.0.1:0", **changes)


@pytest.fixture
async def ca(nursery: trio.Nursery, api: ApiClient, cluster: dict) -> CAServer:
    return await nursery.start(CAServer(ca_config(api)).run)


def root_pem(server: CAServer) -> bytes:
    assert server.root is not None
    return server.root.cert_pem


async def fetch(server: CAServer, token: str, identity: str, *, impersonate: bool = False,
                ttl_seconds: int = 86400, server_name: str = SERVER_NAME) -> caclient.WorkloadCertificate:
    return await caclient.fetch_certificate(f"127.0.0.1:{server.port}", root_pem(server), token, identity,
                                            impersonate=impersonate, ttl_seconds=ttl_seconds,
                                            server_name=server_name)


async def refused(server: CAServer, token: str, identity: str, **options: Any) -> caclient.CertificateRefused:
    with pytest.raises(caclient.CertificateRefused) as info:
        await fetch(server, token, identity, **options)
    return info.value


async def call_raw(server: CAServer, headers: list[tuple[str, str]], body: bytes, *, path: str = PATH,
                   method: str = "POST") -> tuple[int, dict[str, Any]]:
    """One exchange with whatever body and headers a test wants: (HTTP status, JSON answer)."""
    transport = await trio.open_tcp_stream("127.0.0.1", server.port)
    stream = trio.SSLStream(transport, caclient.client_context(root_pem(server)), server_hostname=SERVER_NAME)
    async with open_h2_connection(stream, authority=f"{SERVER_NAME}:15012") as conn:
        response = await conn.request(method, path, headers=headers, body=body)
    return response.status, json.loads(response.body)
