"""The istio-cni agent's control flow against the real apiserver and a fake ztunnel (no root: the
in-pod rules, the pod netns lookup and the probe ipset are stand-ins; tests/unit/test_cni_netns.py
covers them for real)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from components.cni import controller as controller_mod
from components.cni import dataplane as dataplane_mod
from components.cni.controller import Controller
from components.cni.dataplane import Dataplane
from components.cni.plugin import PluginServer
from components.cni.rules import Verdict
from components.cni.ztunnelserver import ZtunnelServer
from components.common import http
from components.common.apiclient import ApiClient
from components.common.zds import AddWorkload, DelWorkload, SnapshotSent, WorkloadInfo
from tests.unit.test_apiserver_support import (add_node, api, apiserver, eventually, pod, run_pod,  # noqa: F401
                                               signing_key)
from tests.unit.test_cni_ztunnelserver import FakeZtunnel

NODE = "worker"
NS = "ambient-demo"
AMBIENT = {"istio.io/dataplane-mode": "ambient"}
OWN_NETNS = "/proc/self/ns/net"


class FakeHostProbe:
    def __init__(self) -> None:
        self.ipset: dict[str, str] = {}

    def ensure_rules(self) -> Verdict:
        return Verdict.COMPATIBLE

    def check_rules(self) -> Verdict:
        return Verdict.COMPATIBLE

    def add(self, ip: str, uid: str) -> None:
        self.ipset[ip] = uid

    def remove(self, ip: str, uid: str) -> bool:
        if self.ipset.get(ip) != uid:
            return False
        del self.ipset[ip]
        return True

    def sync(self, wanted: dict[str, str]) -> None:
        self.ipset = dict(wanted)


@dataclass
class Agent:
    api: ApiClient
    dir: Path
    hostprobe: FakeHostProbe = field(default_factory=FakeHostProbe)
    created: list[str] = field(default_factory=list)  # netns paths rules were installed in
    deleted: list[str] = field(default_factory=list)
    netns_for: Callable[[str], str | None] = lambda uid: OWN_NETNS
    dataplane: Dataplane | None = None
    controller: Controller | None = None

    @property
    def zds_socket(self) -> Path:
        return self.dir / "ztunnel.sock"

    async def start(self, nursery: trio.Nursery) -> None:
        ztunnel = ZtunnelServer(str(self.zds_socket), lambda: self.dataplane.snapshot())  # type: ignore[union-attr]
        self.dataplane = Dataplane(self.api, ztunnel, self.hostprobe)  # type: ignore[arg-type]
        self.controller = Controller(self.api, NODE, self.dataplane)
        plugin = PluginServer(str(self.dir / "plugin.sock"), str(self.dir / "net.d"), self.controller, self.dataplane)
        await nursery.start(ztunnel.run)
        await nursery.start(self.controller.run)
        ztunnel.snapshot_ready.set()
        await nursery.start(plugin.run)

    async def cmdadd(self, name: str, uid: str, ips: list[str] | None = None,
                     netns: str = OWN_NETNS) -> http.Response:
        body = {"Netns": netns, "PodName": name, "PodNamespace": NS, "PodUID": uid,
                "IPs": ["10.244.1.9"] if ips is None else ips}
        return await http.request(f"unix:{self.dir}/plugin.sock", "POST", "/cmdadd", body=json.dumps(body).encode())


@pytest.fixture
async def agent(api: ApiClient, tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> Agent:
    state = Agent(api, tmp_path)

    def create_rules(path: str) -> Verdict:
        assert os.stat(path).st_ino == os.stat(OWN_NETNS).st_ino
        state.created.append(path)
        return Verdict.CLEAN

    monkeypatch.setattr(dataplane_mod.inpod, "create_rules", create_rules)
    monkeypatch.setattr(dataplane_mod.inpod, "delete_rules", state.deleted.append)
    monkeypatch.setattr(dataplane_mod.podnetns, "find", lambda uid, ips: state.netns_for(uid))
    monkeypatch.setattr(controller_mod, "RETRY_MIN", 0.05)
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await add_node(api, NODE)
    await add_node(api, "worker2")
    await state.start(nursery)
    return state


async def create_pod(api: ApiClient, name: str, ip: str | None = "10.244.1.5", labels: dict[str, str] | None = None,
                     node: str = NODE) -> dict[str, Any]:
    created = await api.create(pod(name, NS, labels, nodeName=node, containers=[{"name": name, "image": "x"}]))
    if ip:
        created = await run_pod(api, NS, name, ip)
    return created


async def label_namespace(api: ApiClient, value: str | None) -> None:
    await api.patch("v1", "Namespace", None, NS, {"metadata": {"labels": {"istio.io/dataplane-mode": value}}})


async def annotation(api: ApiClient, name: str) -> str | None:
    got = await api.get("v1", "Pod", NS, name)
    return (got["metadata"].get("annotations") or {}).get("ambient.istio.io/redirection")


async def until(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    with trio.fail_after(timeout):
        while not (result := predicate()):
            await trio.sleep(0.01)
    return result


def messages(caplog: pytest.LogCaptureFixture, logger: str = "ambient") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


async def connect_ztunnel(agent: Agent) -> FakeZtunnel:
    fake = await FakeZtunnel(agent.zds_socket).connect()
    await fake.snapshot()
    return fake


async def test_labeling_the_namespace_captures_its_pods(agent: Agent, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    ztunnel = await connect_ztunnel(agent)
    created = await create_pod(agent.api, "httpbin-5c779fc757-9dxfm")
    await create_pod(agent.api, "elsewhere", "10.244.2.5", node="worker2")
    await label_namespace(agent.api, "ambient")
    add = await ztunnel.exchange()
    assert add == AddWorkload(created["metadata"]["uid"], WorkloadInfo("httpbin-5c779fc757-9dxfm", NS, "default"))
    assert await eventually(lambda: annotation(agent.api, "httpbin-5c779fc757-9dxfm")) == "enabled"
    assert len(agent.created) == 1
    assert agent.hostprobe.ipset == {"10.244.1.5": created["metadata"]["uid"]}
    logged = messages(caplog)
    assert "Namespace ambient-demo is enabled in ambient mesh" in logged
    assert "in pod mode - adding pod ambient-demo/httpbin-5c779fc757-9dxfm to ztunnel" in logged
    assert not any("elsewhere" in m for m in logged)


async def test_plugin_captures_a_new_pod_before_it_starts(agent: Agent, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    ztunnel = await connect_ztunnel(agent)
    await label_namespace(agent.api, "ambient")
    created = await create_pod(agent.api, "sleep-9454cc476-ntctf", ip=None)
    uid = created["metadata"]["uid"]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ztunnel.exchange)
        response = await agent.cmdadd("sleep-9454cc476-ntctf", uid)
    assert (response.status, response.json_body()) == (200, {})
    assert agent.hostprobe.ipset == {"10.244.1.9": uid}
    assert await annotation(agent.api, "sleep-9454cc476-ntctf") == "enabled"
    await run_pod(agent.api, NS, "sleep-9454cc476-ntctf", "10.244.1.9")
    skipped = "Pod sleep-9454cc476-ntctf update event skipped, added/labeled by CNI plugin"
    await until(lambda: skipped in messages(caplog))
    logged = messages(caplog)
    assert logged.count(skipped) == 1
    assert logged.count("in pod mode - adding pod ambient-demo/sleep-9454cc476-ntctf to ztunnel") == 1
    with trio.move_on_after(0.2) as nothing_more:
        await ztunnel.receive()
    assert nothing_more.cancelled_caught


async def test_plugin_without_ztunnel_is_a_500_and_the_snapshot_catches_up(agent: Agent):
    await label_namespace(agent.api, "ambient")
    created = await create_pod(agent.api, "sleep", ip=None)
    response = await agent.cmdadd("sleep", created["metadata"]["uid"])
    assert response.status == 500
    assert response.body.decode().strip() == "failed to add pod to ztunnel: partial add error: no ztunnel connection"
    assert len(agent.created) == 1
    ztunnel = await FakeZtunnel(agent.zds_socket).connect()
    assert await ztunnel.snapshot() == [AddWorkload(created["metadata"]["uid"], WorkloadInfo("sleep", NS, "default")),
                                        SnapshotSent()]


async def test_plugin_passes_pods_that_are_not_ambient(agent: Agent, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    created = await create_pod(agent.api, "httpbin", ip=None)
    response = await agent.cmdadd("httpbin", created["metadata"]["uid"])
    assert response.status == 200
    assert messages(caplog, "cni") == ["excluded because it does not have istio-proxy container (have [httpbin])"]
    assert agent.created == [] and await annotation(agent.api, "httpbin") is None


async def test_plugin_rejects_bad_requests_and_unknown_pods(agent: Agent):
    bad = await http.request(f"unix:{agent.dir}/plugin.sock", "POST", "/cmdadd", body=b'{"PodName": "x"}')
    assert (bad.status, bad.body) == (400, b"CNI event payload misses Netns\n")
    unknown = await agent.cmdadd("nope", "uid-nope")
    assert unknown.status == 500
    assert b"could not find in pod cache" in unknown.body
    assert json.loads((agent.dir / "net.d" / "istio-cni.conf").read_text()) == {
        "type": "istio-cni", "plugin_socket": str(agent.dir / "plugin.sock")}


async def test_unlabeling_removes_rules_tells_ztunnel_and_drops_the_annotation(agent: Agent,
                                                                                caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    ztunnel = await connect_ztunnel(agent)
    created = await create_pod(agent.api, "httpbin")
    await label_namespace(agent.api, "ambient")
    await ztunnel.exchange()
    await eventually(lambda: annotation(agent.api, "httpbin"))
    await label_namespace(agent.api, None)
    assert await ztunnel.exchange() == DelWorkload(created["metadata"]["uid"])
    assert await until(lambda: agent.deleted) == agent.created
    assert await until(lambda: not agent.hostprobe.ipset)
    await eventually(lambda: _not_annotated(agent.api, "httpbin"))
    assert "in pod mode - removing pod from ztunnel\tns=ambient-demo name=httpbin" in messages(caplog)


async def _not_annotated(api: ApiClient, name: str) -> bool:
    return await annotation(api, name) is None


async def test_pod_opting_out_is_removed(agent: Agent):
    ztunnel = await connect_ztunnel(agent)
    await create_pod(agent.api, "httpbin")
    await label_namespace(agent.api, "ambient")
    await ztunnel.exchange()
    await agent.api.patch("v1", "Pod", NS, "httpbin", {"metadata": {"labels": {"istio.io/dataplane-mode": "none"}}})
    assert isinstance(await ztunnel.exchange(), DelWorkload)


async def test_deleted_and_finished_pods_leave_ztunnel(agent: Agent, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    ztunnel = await connect_ztunnel(agent)
    await label_namespace(agent.api, "ambient")
    gone = await create_pod(agent.api, "sleep-9454cc476-stnlv")
    done = await create_pod(agent.api, "job", "10.244.1.6")
    adds = {(await ztunnel.exchange()).uid, (await ztunnel.exchange()).uid}  # type: ignore[union-attr]
    assert adds == {gone["metadata"]["uid"], done["metadata"]["uid"]}
    await agent.api.delete("v1", "Pod", NS, "sleep-9454cc476-stnlv", grace_period_seconds=0)
    assert await ztunnel.exchange() == DelWorkload(gone["metadata"]["uid"])
    await agent.api.patch("v1", "Pod", NS, "job", {"status": {"phase": "Succeeded"}}, subresource="status")
    assert await ztunnel.exchange() == DelWorkload(done["metadata"]["uid"])
    assert "in pod mode - deleting pod from ztunnel\tns=ambient-demo name=sleep-9454cc476-stnlv" in messages(caplog)
    assert agent.deleted == []  # rules go with the netns
    assert agent.hostprobe.ipset == {}


async def test_pod_without_ip_is_captured_once_it_has_one(agent: Agent, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    ztunnel = await connect_ztunnel(agent)
    await label_namespace(agent.api, "ambient")
    created = await create_pod(agent.api, "sleep", ip=None)
    warning = "pod sleep does not appear to have any assigned IPs, not capturing"
    await until(lambda: warning in messages(caplog))
    await run_pod(agent.api, NS, "sleep", "10.244.1.7")
    assert await ztunnel.exchange() == AddWorkload(created["metadata"]["uid"], WorkloadInfo("sleep", NS, "default"))
    assert messages(caplog).count(warning) == 1


async def test_pod_whose_netns_is_not_found_yet_is_retried(agent: Agent):
    ztunnel = await connect_ztunnel(agent)
    agent.netns_for = lambda uid: None
    created = await create_pod(agent.api, "httpbin", labels=AMBIENT)
    await trio.sleep(0.3)
    assert agent.created == [] and created["metadata"]["uid"] not in agent.dataplane.pods  # type: ignore[union-attr]
    agent.netns_for = lambda uid: OWN_NETNS
    assert await ztunnel.exchange() == AddWorkload(created["metadata"]["uid"], WorkloadInfo("httpbin", NS, "default"))


async def test_restarted_agent_recaptures_and_sends_a_snapshot(agent: Agent, api: ApiClient, tmp_path: Path):
    ztunnel = await connect_ztunnel(agent)
    created = await create_pod(agent.api, "httpbin", labels=AMBIENT)
    await ztunnel.exchange()
    await eventually(lambda: annotation(agent.api, "httpbin"))
    restarted = Agent(api, tmp_path / "again")
    restarted.dir.mkdir()
    async with trio.open_nursery() as nursery:
        await restarted.start(nursery)
        fresh = await FakeZtunnel(restarted.zds_socket).connect()
        assert await fresh.snapshot() == [AddWorkload(created["metadata"]["uid"], WorkloadInfo("httpbin", NS, "default")),
                                          SnapshotSent()]
        assert restarted.hostprobe.ipset == {"10.244.1.5": created["metadata"]["uid"]}
        nursery.cancel_scope.cancel()
    assert not (restarted.dir / "net.d" / "istio-cni.conf").exists()
