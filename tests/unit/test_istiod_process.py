"""istiod as a process: the real apiserver in-process on a Unix socket, istiod in-process on
127.0.0.1 ephemeral ports, and subscribers using the client ztunnel and waypoints use."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
import trio

from components.common import http, meshconfig
from components.common.apiclient import ApiClient
from components.common.h2conn import CLIENT_CONFIG, open_h2_connection
from components.common.jsonlines import JsonLinesReader
from components.istiod.builder import Debounce
from components.istiod.server import Istiod, Options
from components.istiod.translate import Translation
from tests.unit.test_apiserver_support import api, apiserver, eventually, pod, run_pod, signing_key  # noqa: F401

FAST = Debounce(after=0.02, maximum=0.2)
AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def options(api: ApiClient, xds: str = "127.0.0.1:0") -> Options:
    return Options(api=api.address, xds=xds, http="127.0.0.1:0", debounce=FAST)


@pytest.fixture
async def istiod(api: ApiClient, nursery: trio.Nursery) -> Istiod:
    started: Istiod = await nursery.start(Istiod(options(api)).run)
    with trio.fail_after(3):
        await started.ready.wait()
    return started


async def add_pod(api: ApiClient, name: str, ip: str, ns: str = "default", **labels: str) -> None:
    await api.create(pod(name, ns, labels or {"app": name}, nodeName="worker"))
    await run_pod(api, ns, name, ip)


def authorization_policy(name: str = "allow-sleep", ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "httpbin"}},
                     "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}}]}]}}


class Receiver:
    """Reads a subscription in the background, so tests can wait for the message they expect."""

    def __init__(self, subscription: meshconfig.Subscription) -> None:
        self.subscription = subscription
        self.messages: list[dict[str, Any]] = []
        self._arrived = trio.Event()

    async def run(self) -> None:
        async for message in self.subscription:
            self.messages.append(message)
            self._arrived.set()
            self._arrived = trio.Event()

    async def next_matching(self, predicate: Any, timeout: float = 1.0) -> dict[str, Any]:
        """The first message from now on (or the latest, if it already matches) that matches."""
        with trio.fail_after(timeout):
            while not (self.messages and predicate(self.messages[-1])):
                await self._arrived.wait()
        return self.messages[-1]


@asynccontextmanager
async def subscriber(address: str, node: str = "worker", subscriber_id: str = "ztunnel-abc.istio-system",
                     **kwargs: Any) -> AsyncIterator[Receiver]:
    async with meshconfig.subscribe(address, node, subscriber_id=subscriber_id, **kwargs) as subscription:
        receiver = Receiver(subscription)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver.run)
            with trio.fail_after(2):
                await receiver.next_matching(lambda m: True)
            yield receiver
            nursery.cancel_scope.cancel()


def workloads(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in message["workloads"]}


async def get_json(address: str, path: str) -> tuple[int, Any]:
    response = await http.request(address, "GET", path)
    return response.status, (response.json_body() if response.status == 200 and path != "/ready" else None)


async def test_first_message_arrives_at_once_with_the_translated_workloads(api, nursery):
    await add_pod(api, "httpbin-1", "10.244.1.5")
    await add_pod(api, "sleep-1", "10.244.1.6")
    istiod = await nursery.start(Istiod(options(api)).run)
    async with subscriber(istiod.xds_address) as receiver:
        first = receiver.messages[0]
    assert first["type"] == "ambient-config" and first["version"] == "1"
    assert set(first) == {"version", "type", "workloads", "services", "policies", "l7"}
    found = workloads(first)
    assert set(found) == {"httpbin-1", "sleep-1"}
    assert found["httpbin-1"]["workloadIps"] == ["10.244.1.5"]
    assert found["httpbin-1"]["protocol"] == "TCP"
    assert "default/kubernetes.default.svc.cluster.local" in {f"{s['namespace']}/{s['hostname']}"
                                                               for s in first["services"]}


async def test_labelling_a_namespace_flips_its_pods_to_hbone_in_one_new_version(api, istiod):
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    for i in range(20):
        await add_pod(api, f"app-{i}", f"10.244.1.{10 + i}", ns="demo")
    async with subscriber(istiod.xds_address) as receiver:
        before = await receiver.next_matching(lambda m: len(m["workloads"]) == 20)
        assert {w["protocol"] for w in before["workloads"]} == {"TCP"}
        start = trio.current_time()
        await api.patch("v1", "Namespace", None, "demo", {"metadata": {"labels": AMBIENT}})
        after = await receiver.next_matching(lambda m: m["version"] != before["version"])
        assert trio.current_time() - start < 1.0
    assert int(after["version"]) == int(before["version"]) + 1
    assert {w["protocol"] for w in after["workloads"]} == {"HBONE"}


async def test_authorization_policy_is_translated_its_status_written_and_deleted(api, istiod):
    await add_pod(api, "httpbin-1", "10.244.1.5", app="httpbin")
    async with subscriber(istiod.xds_address) as receiver:
        await api.create(authorization_policy())
        message = await receiver.next_matching(lambda m: m["policies"])
        policy, = message["policies"]
        assert (policy["namespace"], policy["name"], policy["scope"], policy["action"]) == (
            "default", "allow-sleep", "WorkloadSelector", "Allow")
        assert workloads(message)["httpbin-1"]["authorizationPolicies"] == ["default/allow-sleep"]

        async def condition() -> dict[str, Any] | None:
            current = await api.get("security.istio.io/v1", "AuthorizationPolicy", "default", "allow-sleep")
            conditions = (current.get("status") or {}).get("conditions") or []
            return conditions[0] if conditions else None

        written = await eventually(condition, timeout=2)
        assert {k: written[k] for k in ("type", "status", "reason", "message", "observedGeneration")} == {
            "type": "ZtunnelAccepted", "status": "True", "reason": "Accepted", "message": "attached to ztunnel",
            "observedGeneration": 1}
        assert written["lastTransitionTime"].endswith("Z")
        version, writes = istiod.publisher.version, istiod.status.writes
        await trio.sleep(0.2)  # our own status update comes back as an event: no push, no second write
        assert (istiod.publisher.version, istiod.status.writes) == (version, writes)

        await api.delete("security.istio.io/v1", "AuthorizationPolicy", "default", "allow-sleep")
        message = await receiver.next_matching(lambda m: not m["policies"])
        assert workloads(message)["httpbin-1"]["authorizationPolicies"] == []


async def test_status_follows_a_changed_policy_and_ignores_waypoint_policies(api, istiod):
    await api.create(authorization_policy())
    stored = await eventually(lambda: _status_of(api, "allow-sleep"), timeout=2)
    first_stamp = stored[0]["lastTransitionTime"]
    l7 = authorization_policy()
    l7["spec"]["rules"][0]["to"] = [{"operation": {"methods": ["GET"]}}]
    await api.apply(l7)

    async def unsupported() -> list[dict[str, Any]] | None:
        conditions = await _status_of(api, "allow-sleep")
        return conditions if conditions and conditions[0]["reason"] == "UnsupportedValue" else None

    conditions = await eventually(unsupported, timeout=2)
    assert conditions[0]["status"] == "True" and conditions[0]["observedGeneration"] == 2
    assert conditions[0]["lastTransitionTime"] == first_stamp  # status stayed True

    foreign = {"type": "WaypointAccepted", "status": "True", "reason": "Accepted", "message": "bound",
               "lastTransitionTime": "2026-01-01T00:00:00Z"}
    await api.patch("security.istio.io/v1", "AuthorizationPolicy", "default", "allow-sleep",
                    {"status": {"conditions": [*conditions, foreign]}}, subresource="status")
    waypoint_spec = {"targetRefs": [{"kind": "Service", "group": "", "name": "httpbin"}], "rules": [{}]}
    await api.patch("security.istio.io/v1", "AuthorizationPolicy", "default", "allow-sleep", {"spec": waypoint_spec})

    async def only_foreign() -> bool:
        return await _status_of(api, "allow-sleep") == [foreign]

    await eventually(only_foreign, timeout=2)  # no longer for ztunnel: our condition goes, theirs stays
    waypoint = authorization_policy("for-waypoint")
    waypoint["spec"] = waypoint_spec
    await api.create(waypoint)
    await trio.sleep(0.2)
    assert await _status_of(api, "for-waypoint") is None


async def _status_of(api: ApiClient, name: str) -> list[dict[str, Any]] | None:
    current = await api.get("security.istio.io/v1", "AuthorizationPolicy", "default", name)
    return (current.get("status") or {}).get("conditions") or None


async def test_changes_that_do_not_alter_the_config_keep_the_version(api, istiod):
    await add_pod(api, "httpbin-1", "10.244.1.5", app="httpbin")
    await api.create(authorization_policy())
    await eventually(lambda: _status_of(api, "allow-sleep"), timeout=2)
    async with subscriber(istiod.xds_address) as receiver:
        version, builds = istiod.publisher.version, istiod.builder.builds
        outcome, _ = await api.apply(authorization_policy())
        assert outcome == "unchanged"
        await api.patch("v1", "Pod", "default", "httpbin-1", {"metadata": {"annotations": {"note": "irrelevant"}}})
        with trio.fail_after(1):
            while istiod.builder.builds == builds:
                await trio.sleep(0.01)
        await trio.sleep(0.1)
        assert istiod.publisher.version == version
        assert [m["version"] for m in receiver.messages] == [str(version)]


async def test_two_subscribers_both_get_every_push_and_show_in_syncz(api, istiod):
    async with subscriber(istiod.xds_address, "worker", "ztunnel-a.istio-system") as first, \
            subscriber(istiod.xds_address, "worker2", "ztunnel-b.istio-system") as second:
        await add_pod(api, "sleep-1", "10.244.2.5")
        for receiver in (first, second):
            await receiver.next_matching(lambda m: "sleep-1" in workloads(m))
        status, syncz = await get_json(istiod.http_address, "/debug/syncz")
    assert status == 200
    assert sorted((s["proxy"], s["node"], s["synced"]) for s in syncz) == [
        ("ztunnel-a.istio-system-1", "worker", True), ("ztunnel-b.istio-system-2", "worker2", True)]
    assert all(s["sent_version"] == str(istiod.publisher.version) for s in syncz)
    with trio.fail_after(1):
        while istiod.publisher.subscribers:
            await trio.sleep(0.01)


async def test_a_subscriber_gets_the_current_config_after_istiod_restarts(api, nursery):
    connects = []

    async def first(*, task_status: trio.TaskStatus[tuple[Istiod, trio.CancelScope]]) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as inner:
                task_status.started((await inner.start(Istiod(options(api)).run), scope))

    istiod, first_run = await nursery.start(first)
    address = istiod.xds_address
    async with subscriber(address, on_connect=lambda: connects.append(1)) as receiver:
        first_run.cancel()
        with trio.fail_after(1):
            while receiver.subscription.connected:
                await trio.sleep(0.01)
        await add_pod(api, "late-1", "10.244.1.50")
        await nursery.start(Istiod(options(api, xds=address)).run)
        message = await receiver.next_matching(lambda m: "late-1" in workloads(m), timeout=3)
    assert message["version"] == "1"  # a new istiod counts from 1 again
    assert len(connects) == 2


async def test_a_slow_subscriber_gets_only_the_newest_config(api, istiod):
    """A subscriber whose stream window is full is skipped over versions it missed."""
    publisher = istiod.publisher
    padding = "x" * 20_000
    host, port = istiod.xds_address.rsplit(":", 1)
    tcp = await trio.open_tcp_stream(host, int(port))
    small_window = CLIENT_CONFIG.replace(stream_window=65535, connection_window=65535)
    async with open_h2_connection(tcp, small_window, scheme="http") as conn:
        status, _, stream = await conn.stream_response("GET", "/v1/ambient?node=worker&id=slow")
        assert status == 200
        first = publisher.version
        for i in range(30):
            publisher.publish(_translation(f"{padding}-{i}"))
            await trio.sleep(0.005)
        newest = publisher.version
        received = []
        async with stream:
            reader = JsonLinesReader(stream)
            with trio.fail_after(2):
                while not received or received[-1]["version"] != str(newest):
                    received.append(await reader.receive())
    versions = [int(m["version"]) for m in received]
    assert versions == sorted(set(versions)) and versions[0] == first
    assert len(versions) < 30 - 5
    assert received[-1]["workloads"][0]["name"] == f"{padding}-29"


def _translation(name: str) -> Translation:
    return Translation({"workloads": [{"name": name}], "services": [], "policies": []}, [])


async def test_http_port_readiness_and_debug_endpoints(api, istiod):
    await api.create(authorization_policy())
    await eventually(lambda: _status_of(api, "allow-sleep"), timeout=2)
    status, _ = await get_json(istiod.http_address, "/ready")
    assert status == 200
    status, dump = await get_json(istiod.http_address, "/debug/config_dump")
    assert status == 200 and dump["version"] == str(istiod.publisher.version)
    assert [p["name"] for p in dump["config"]["policies"]] == ["allow-sleep"]
    status, authz = await get_json(istiod.http_address, "/debug/authorizationz")
    assert [s["name"] for s in authz["status"]] == ["allow-sleep"]
    assert authz["status"][0]["conditions"][0]["reason"] == "Accepted"
    assert (await http.request(istiod.http_address, "GET", "/nothing")).status == 404

    host, port = istiod.xds_address.rsplit(":", 1)
    async with open_h2_connection(await trio.open_tcp_stream(host, int(port)), scheme="http") as conn:
        response = await conn.request("GET", "/debug/config_dump")
        assert response.status == 200
        assert json.loads(response.body)["version"] == dump["version"]
        assert (await conn.request("GET", "/v1/ambient")).status == 400  # no node


async def test_not_ready_until_the_apiserver_answers(tmp_path, nursery):
    istiod = await nursery.start(Istiod(Options(api=f"unix:{tmp_path}/nothing.sock", xds="127.0.0.1:0",
                                                http="127.0.0.1:0")).run)
    status, _ = await get_json(istiod.http_address, "/ready")
    assert status == 503
    host, port = istiod.xds_address.rsplit(":", 1)
    async with open_h2_connection(await trio.open_tcp_stream(host, int(port)), scheme="http") as conn:
        response = await conn.stream_response("GET", "/v1/ambient?node=worker")
        assert response.status == 200  # accepted, but nothing is sent before the first config
        with trio.move_on_after(0.1) as waited:
            await response.stream.receive_some()
        assert waited.cancelled_caught
        await response.stream.aclose()
