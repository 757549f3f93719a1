"""ztunnel as a whole without namespaces: settings, config pushes (xDS log lines, certificate
warm-up), readiness, admin, metrics endpoints and shutdown."""

from __future__ import annotations

import json

import pytest
import trio

from components.common import http
from components.common.tls import Identity
from components.ztunnel import admin
from components.ztunnel.app import Ztunnel, address_delta
from components.ztunnel.config import Config, parse_duration
from components.ztunnel.state import ProxyState
from tests.unit.ztunnel_fixtures import allow_principal, captured_log, config, service, workload


def test_config_from_env_and_defaults():
    cfg = Config.from_env({"NODE_NAME": "worker", "POD_NAME": "ztunnel-abc", "SECRET_TTL": "12h",
                           "CA_ADDRESS": "10.96.0.20:15012", "CA_HEADER_X-Foo": "bar"})
    assert (cfg.node_name, cfg.pod_name, cfg.secret_ttl) == ("worker", "ztunnel-abc", 43200)
    assert cfg.service_account == "ztunnel" and cfg.trust_domain == "cluster.local"
    assert cfg.inpod_uds == "/var/run/ztunnel/ztunnel.sock"
    assert cfg.xds_address == "istiod.istio-system.svc:15010"
    assert cfg.ca_server_name == "istiod.istio-system.svc"
    assert cfg.ca_headers == (("X-Foo", "bar"),)
    assert Config.from_env({}).secret_ttl == 86400
    assert Config.from_env({}).ca_server_name == "istiod.istio-system.svc"
    with pytest.raises(ValueError, match="SECRET_TTL"):
        Config.from_env({"SECRET_TTL": "soon"})


@pytest.mark.parametrize("text,seconds", [("86400", 86400), ("30s", 30), ("24h", 86400), ("1h30m", 5400),
                                          ("500ms", 0.5), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.fixture
def lines():
    with captured_log() as handler:
        yield handler


SLEEP = workload("sleep-1", "10.244.1.4", sa="sleep")
HTTPBIN = workload("httpbin-1", "10.244.1.5", sa="httpbin")
REMOTE = workload("notsleep-1", "10.244.2.4", sa="notsleep", node="node2")


def test_address_delta_counts_resources_not_endpoints():
    svc = service("httpbin", "10.96.0.5", {8000: 8080})
    before = ProxyState(config([SLEEP], [svc]))
    after = ProxyState(config([SLEEP, HTTPBIN], [dict(svc, endpoints={HTTPBIN["uid"]: {
        "workloadUid": HTTPBIN["uid"], "port": {"8000": 8080}, "status": "Healthy"}})]))
    assert address_delta(before, after) == (1, 0)
    assert address_delta(after, before) == (0, 1)
    assert address_delta(ProxyState(), after) == (3, 0)


async def test_config_pushes_are_logged_and_warm_certificates(lines):
    fetched = []

    async def fetcher(identity):
        fetched.append(identity)
        raise RuntimeError("CA down")

    zt = Ztunnel(Config(node_name="node1"), fetcher=fetcher)
    assert zt.pending_tasks() == ["state manager", "workload proxy manager"]
    zt.apply_config(config([SLEEP], version="1"))
    zt.apply_config(config([SLEEP, HTTPBIN, REMOTE], version="2"))
    zt.apply_config(config([SLEEP, HTTPBIN, REMOTE], [], [allow_principal("x")], version="3"))
    address = lines.find("received response", 'type_url="type.googleapis.com/istio.workload.Address"')
    assert [line.rsplit("\t", 1)[1] for line in address] == [
        'type_url="type.googleapis.com/istio.workload.Address" size=1 removes=0',
        'type_url="type.googleapis.com/istio.workload.Address" size=2 removes=0']
    assert "\tinfo\txds::client\t" in address[0]
    assert lines.find("received response", "istio.security.Authorization", "size=1 removes=0")
    assert set(zt.certs.identities()) == {Identity("cluster.local", "default", "sleep"),
                                          Identity("cluster.local", "default", "httpbin")}
    zt.apply_config(config([SLEEP], version="4"))
    assert zt.certs.identities() == [Identity("cluster.local", "default", "sleep")]
    assert zt.pending_tasks() == ["workload proxy manager"]
    dump = zt.config_dump()
    assert [w["name"] for w in dump["workloads"]] == ["sleep-1"]
    assert dump["certificates"][0]["state"] == "Initializing"
    assert dump["workloadState"] == {} and dump["config"]["node_name"] == "node1"


async def test_http_endpoints():
    zt = Ztunnel(Config(node_name="node1"))
    ready = admin.readiness_handler(zt.pending_tasks)
    response = await ready(http.Request("GET", "/healthz/ready", []))
    assert (response.status, response.body) == (500, b"not ready, pending: state manager, workload proxy manager\n")
    zt.apply_config(config([SLEEP]))
    zt.zds.connected = True
    zt.manager.snapshot_received = True
    response = await ready(http.Request("GET", "/healthz/ready", []))
    assert (response.status, response.body) == (200, b"ready\n")

    metrics = admin.metrics_handler(zt.metrics)
    for path in ("/metrics", "/stats/prometheus"):
        response = await metrics(http.Request("GET", path, []))
        assert response.status == 200 and b'istio_build{component="ztunnel"' in response.body
        assert response.body.endswith(b"# EOF\n")
    assert (await metrics(http.Request("GET", "/nope", []))).status == 404

    handler = admin.admin_handler(zt.config_dump, zt.request_shutdown, zt.log_level)
    response = await handler(http.Request("GET", "/config_dump", []))
    assert json.loads(response.body)["workloads"][0]["name"] == "sleep-1"
    assert (await handler(http.Request("GET", "/quitquitquit", []))).status == 405
    assert (await handler(http.Request("POST", "/quitquitquit", []))).status == 200
    assert zt._shutdown.is_set()
    response = await handler(http.Request("GET", "/logging", []))
    assert response.body == b"current log level is info\n"


async def test_run_serves_and_drains_on_shutdown(tmp_path, monkeypatch):
    ports = {}

    async def serve_http(self, port, handler, host, *, task_status=trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        ports[port] = listeners[0].socket.getsockname()[1]
        await http.serve(listeners, handler, task_status=task_status)

    async def no_config(self):
        await trio.sleep_forever()

    monkeypatch.setattr(Ztunnel, "_serve_http", serve_http)
    monkeypatch.setattr(Ztunnel, "_config_loop", no_config)
    zt = Ztunnel(Config(node_name="node1", inpod_uds=str(tmp_path / "none.sock"), drain_deadline=0.5))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(zt.run)
            response = await http.request(f"127.0.0.1:{ports[15021]}", "GET", "/healthz/ready")
            assert response.status == 500
            response = await http.request(f"127.0.0.1:{ports[15000]}", "POST", "/quitquitquit")
            assert response.status == 200
