"""Fixtures and helpers shared by the apiserver tests: the real apiserver, in-process, on a Unix
socket in the test's tmp_path, driven with the ApiClient every component uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.apiserver.server import ApiServer, Config
from components.common import http
from components.common.apiclient import ApiClient, ApiError

T = TypeVar("T")


@pytest.fixture(scope="session")
def signing_key() -> bytes:
    """One RSA key for every test's data dir (making one per server would slow the tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_config(tmp_path: Path, signing_key: bytes) -> Config:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if not (data / "sa.key").exists():
        (data / "sa.key").write_bytes(signing_key)
    return Config(listen=[f"unix:{tmp_path}/api.sock"], data_dir=data, service_cidr="10.96.0.0/16",
                  apiserver_endpoint="172.18.0.2:6443", save_delay=0.01)


@pytest.fixture
async def apiserver(tmp_path: Path, nursery: trio.Nursery, signing_key: bytes) -> ApiServer:
    return await nursery.start(ApiServer(make_config(tmp_path, signing_key)).run)


@pytest.fixture
def api(apiserver: ApiServer) -> ApiClient:
    return ApiClient(apiserver.config.listen[0])


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 3.0) -> T:
    """Poll `probe` until it returns something true (assertion and API errors count as not yet)."""
    last: Exception | None = None
    with trio.move_on_after(timeout):
        while True:
            try:
                result = await probe()
                if result:
                    return result
                last = None
            except (AssertionError, ApiError) as exc:
                last = exc
            await trio.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout}s; last error: {last!r}")


async def raw(api: ApiClient, method: str, path: str, body: Any = None,
              content_type: str = "application/json") -> tuple[int, Any]:
    """A request the ApiClient does not make (query parameters, patch types): (status, JSON body)."""
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    response = await http.request(api.address, method, path, headers=[("content-type", content_type)], body=data)
    try:
        return response.status, response.json_body()
    except ValueError:
        return response.status, response.body.decode()


async def error_of(call: Awaitable[Any]) -> ApiError:
    """The ApiError a call fails with."""
    with pytest.raises(ApiError) as info:
        await call
    return info.value


def pod(name: str, namespace: str = "default", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "app", "image": "curlimages/curl"}])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def deployment(name: str, namespace: str = "default", replicas: int = 1, labels: dict[str, str] | None = None,
               **pod_spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    pod_spec.setdefault("containers", [{"name": name, "image": "docker.io/kennethreitz/httpbin"}])
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}


async def add_node(api: ApiClient, name: str, labels: dict[str, str] | None = None,
                   taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return await api.create({"apiVersion": "v1", "kind": "Node",
                             "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                             "spec": {"taints": taints or []}})


CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


async def add_kind_nodes(api: ApiClient) -> None:
    """A control plane (tainted) and two workers, as the default topology has."""
    await add_node(api, "control-plane", {"node-role.kubernetes.io/control-plane": ""}, [CONTROL_PLANE_TAINT])
    await add_node(api, "worker")
    await add_node(api, "worker2")


async def run_pod(api: ApiClient, namespace: str, name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    """What the kubelet reports for a started pod."""
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return await api.patch("v1", "Pod", namespace, name, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [condition]}}, subresource="status")


async def list_names(api: ApiClient, api_version: str, kind: str, namespace: str | None = None,
                     **selectors: str) -> list[str]:
    listing = await api.list(api_version, kind, namespace, **selectors)
    return [item["metadata"]["name"] for item in listing["items"]]
