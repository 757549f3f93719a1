"""The pods' and services' proxy subresource: requests relayed to a real HTTP server on
127.0.0.1 (the pods' IP here), and kube-apiserver's errors when there is nothing to reach."""

from __future__ import annotations

import json

import pytest
import trio

from components.common import http
from components.common.apiclient import ApiClient, ApiError
from tests.unit.test_apiserver_support import api, apiserver, eventually, pod, raw, run_pod, signing_key  # noqa: F401


async def _backend_handler(request: http.Request) -> http.Response:
    """Echoes what it got, with a status and a header of its own."""
    echo = {"method": request.method, "target": request.target, "body": request.body.decode(),
            "header": request.header("x-test")}
    return http.Response(201 if request.method == "POST" else 200,
                         [("content-type", "application/json"), ("x-backend", "yes")], json.dumps(echo).encode())


@pytest.fixture
async def backend_port(nursery: trio.Nursery) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(http.serve, listeners, _backend_handler)
    return listeners[0].socket.getsockname()[1]


async def _closed_port() -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    return port


async def _pod_at(api: ApiClient, name: str, port: int | None, labels: dict[str, str] | None = None) -> None:
    ports = [{"containerPort": port}] if port else []
    await api.create(pod(name, labels=labels, containers=[{"name": "app", "image": "busybox", "ports": ports}]))
    await run_pod(api, "default", name, "127.0.0.1")


async def test_pod_proxy_relays_request_and_response(api: ApiClient, backend_port: int):
    await _pod_at(api, "web", None)
    response = await http.request(api.address, "GET", f"/api/v1/namespaces/default/pods/web:{backend_port}"
                                                      "/proxy/config_dump?include_eds=true",
                                  headers=[("x-test", "hello")])
    assert response.status == 200
    assert response.header("x-backend") == "yes"
    assert response.json_body() == {"method": "GET", "target": "/config_dump?include_eds=true", "body": "",
                                    "header": "hello"}
    posted = await http.request(api.address, "POST", f"/api/v1/namespaces/default/pods/http:web:{backend_port}"
                                                     "/proxy/logging?level=debug", body=b"payload")
    assert posted.status == 201
    assert posted.json_body()["body"] == "payload"
    bare = await http.request(api.address, "GET", f"/api/v1/namespaces/default/pods/web:{backend_port}/proxy")
    assert bare.json_body()["target"] == "/"


async def test_pod_proxy_defaults_to_the_first_container_port(api: ApiClient, backend_port: int):
    await _pod_at(api, "web", backend_port)
    response = await http.request(api.address, "GET", "/api/v1/namespaces/default/pods/web/proxy/ready")
    assert (response.status, response.json_body()["target"]) == (200, "/ready")


async def test_pod_proxy_errors(api: ApiClient):
    closed = await _closed_port()
    await _pod_at(api, "down", None)
    status, body = await raw(api, "GET", f"/api/v1/namespaces/default/pods/down:{closed}/proxy/config_dump")
    assert status == 503
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "ServiceUnavailable", 503)
    assert body["message"] == (f"error trying to reach service: dial tcp 127.0.0.1:{closed}: connect: "
                               "connection refused")
    await api.create(pod("pending"))
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/pods/pending:15000/proxy/")
    assert (status, body["reason"], body["message"]) == (400, "BadRequest", "address not allowed")
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/pods/nope:15000/proxy/")
    assert (status, body["message"]) == (404, 'pods "nope" not found')
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/pods/a:b:c:d/proxy/")
    assert (status, body["message"]) == (400, 'invalid pod request "a:b:c:d"')


async def test_service_proxy_picks_a_ready_endpoint(api: ApiClient, backend_port: int):
    await api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"selector": {"app": "web"},
                               "ports": [{"name": "http", "port": 80, "targetPort": backend_port}]}})
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/services/web:80/proxy/")
    assert (status, body["message"]) == (503, 'no endpoints available for service "web"')
    await _pod_at(api, "web-1", backend_port, {"app": "web"})

    async def relayed() -> http.Response | None:
        response = await http.request(api.address, "GET", "/api/v1/namespaces/default/services/web:80/proxy/get")
        return response if response.status == 200 else None

    response = await eventually(relayed)
    assert response.json_body()["target"] == "/get"
    by_name = await http.request(api.address, "GET", "/api/v1/namespaces/default/services/web:http/proxy/x")
    assert (by_name.status, by_name.json_body()["target"]) == (200, "/x")
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/services/web:81/proxy/")
    assert (status, body["message"]) == (503, 'no service port 81 found for service "web"')
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/services/web:other/proxy/")
    assert (status, body["message"]) == (503, 'no endpoints available for service "web:other"')


async def test_ordinary_paths_are_not_proxied(api: ApiClient):
    await api.create(pod("web"))
    status, body = await raw(api, "GET", "/api/v1/namespaces/default/pods/web")
    assert (status, body["metadata"]["name"]) == (200, "web")
    status, _ = await raw(api, "GET", "/api/v1/namespaces/default/configmaps/web/proxy/x")
    assert status == 404


async def test_call_raw_returns_a_body_that_is_not_json(api: ApiClient, nursery: trio.Nursery):
    async def metrics(request: http.Request) -> http.Response:
        if request.target != "/stats/prometheus":
            return http.Response.text("not here\n", status=404)
        return http.Response.text('istio_tcp_sent_bytes_total{reporter="source"} 42\n')

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(http.serve, listeners, metrics)
    port = listeners[0].socket.getsockname()[1]
    await _pod_at(api, "ztunnel", None)
    body = await api.call_raw("GET", f"/api/v1/namespaces/default/pods/ztunnel:{port}/proxy/stats/prometheus")
    assert body == b'istio_tcp_sent_bytes_total{reporter="source"} 42\n'
    with pytest.raises(ApiError) as raised:
        await api.call_raw("GET", f"/api/v1/namespaces/default/pods/ztunnel:{port}/proxy/missing")
    assert (raised.value.code, str(raised.value)) == (404, "not here\n")
