"""Faults injected into a running mesh by the harness's own means (signals to pids of the run's
PID namespace, links of the run's fabric namespace), each followed by the check that service
comes back with nothing lost or leaked: no application pod restarted, one process per
component. One cluster for the module (`e2e-res-faults`); each test puts it back (needs root)."""

from __future__ import annotations

from typing import Iterator

import pytest
import trio

from harness import sandbox
from harness.cluster import Cluster, Result
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e import runprocs
from tests.e2e.test_ambient_l4 import (NS, SEED_002_POLICY, TITLE, config_dump, curl, eventually, pod,
                                       set_enrolment, wait_for_policies, ztunnel_on)

pytestmark = pytest.mark.e2e
TEST_TIMEOUT = 60.0
APPS = ("httpbin", "sleep", "notsleep")


@pytest.fixture(scope="module")
def faulty_mesh() -> Iterator[Cluster]:
    """topologies/ambient.yaml with ambient-demo enrolled, as `e2e-res-faults`."""
    with cluster_up(REPO / "topologies" / "ambient.yaml", "e2e-res-faults") as cluster:
        trio.run(set_enrolment, cluster, True)
        yield cluster


async def serves(cluster: Cluster, client: str = "notsleep", max_time: str = "3", url: str = "httpbin:8000") -> bool:
    result = await curl(cluster, client, url, "--max-time", max_time)
    return result.exit_code == 0 and TITLE in result.stdout


async def app_pods(cluster: Cluster) -> dict[str, tuple[str, int]]:
    return {app: ((p := await pod(cluster, app)).uid, p.restarts) for app in APPS}


async def istio_pod(cluster: Cluster, label: str) -> dict:
    (obj,) = (await cluster.api.list("v1", "Pod", "istio-system", label_selector=label))["items"]
    return obj


async def one_process_each(cluster: Cluster, *modules: str, per_node: tuple[str, ...] = ()) -> None:
    """One process of each component (of each node for `per_node`): none left over or doubled."""
    for module in modules:
        await runprocs.pid_of(cluster, module)
    for module in per_node:
        assert len(await runprocs.pids_of(cluster, module)) == len(cluster.nodes()), module


async def test_ztunnel_killed_mid_transfer_fails_it_cleanly_and_serves_once_back(faulty_mesh: Cluster) -> None:
    cluster = faulty_mesh
    with trio.fail_after(TEST_TIMEOUT):
        before = await app_pods(cluster)
        notsleep = await pod(cluster, "notsleep")
        name = await ztunnel_on(cluster, notsleep.node)
        pid = runprocs.container_pid(await cluster.api.get("v1", "Pod", "istio-system", name))
        httpbin_ztunnel = await ztunnel_on(cluster, (await pod(cluster, "httpbin")).node)
        transfer: list[Result] = []

        async def holding() -> bool:
            states = (await config_dump(cluster, httpbin_ztunnel))["workloadState"].values()
            return any(s["info"]["name"].startswith("httpbin") and s["connections"]["inbound"] for s in states)

        async with trio.open_nursery() as nursery:
            async def long_request() -> None:
                transfer.append(await curl(cluster, "notsleep", "httpbin:8000/delay/8", "--max-time", "20"))
            nursery.start_soon(long_request)
            await eventually(holding, 10)
            started = trio.current_time()
            await runprocs.signal(cluster, pid, "KILL")
        (result,) = transfer
        assert result.exit_code in (52, 56) and trio.current_time() - started < 5, result  # cut, not hung

        async def back() -> bool:
            return await serves(cluster)
        await eventually(back, 30, interval=0.5)
        obj = await cluster.api.get("v1", "Pod", "istio-system", name)  # the same pod, its container restarted
        assert obj["status"]["containerStatuses"][0]["restartCount"] >= 1
        assert await app_pods(cluster) == before
        await one_process_each(cluster, per_node=("components.ztunnel", "components.cni"))


async def test_istiod_down_keeps_the_last_config_and_pushes_the_new_once_back(faulty_mesh: Cluster) -> None:
    cluster = faulty_mesh
    with trio.fail_after(TEST_TIMEOUT):
        before = await app_pods(cluster)
        httpbin = await pod(cluster, "httpbin")
        z_dst = await ztunnel_on(cluster, httpbin.node)
        istiod = await istio_pod(cluster, "app=istiod")
        pid = runprocs.container_pid(istiod)
        await runprocs.signal(cluster, pid, "STOP")  # down: connections stay, nothing answers
        try:
            assert await serves(cluster) and await serves(cluster, "sleep")
            (await cluster.kubectl("apply", "-n", NS, "-f", "-", input=SEED_002_POLICY)).check()
            with trio.move_on_after(2):
                await wait_for_policies(cluster, z_dst, {"allow-sleep-to-httpbin"})
                raise AssertionError("a policy reached ztunnel while istiod was stopped")
            assert await serves(cluster)  # the last config: no policy yet
        finally:
            await runprocs.signal(cluster, pid, "CONT")
        try:
            await wait_for_policies(cluster, z_dst, {"allow-sleep-to-httpbin"})  # istiod's push once back

            async def enforced() -> bool:
                return not await serves(cluster) and await serves(cluster, "sleep")
            await eventually(enforced, 15, interval=0.5)
        finally:
            (await cluster.kubectl("delete", "authorizationpolicy", "allow-sleep-to-httpbin", "-n", NS)).check()
            await wait_for_policies(cluster, z_dst, set())
        assert await app_pods(cluster) == before
        await one_process_each(cluster, "components.istiod", "components.ca")


async def test_istiod_killed_comes_back_with_one_ca_and_pushes_again(faulty_mesh: Cluster) -> None:
    """SIGKILL to istiod: its CA child goes with it (the real CA lives inside istiod), the kubelet
    restarts the container, exactly one istiod and one CA run again, and config flows."""
    cluster = faulty_mesh
    with trio.fail_after(TEST_TIMEOUT):
        before = await app_pods(cluster)
        z_dst = await ztunnel_on(cluster, (await pod(cluster, "httpbin")).node)
        old_ca = await runprocs.pid_of(cluster, "components.ca")
        await runprocs.signal(cluster, runprocs.container_pid(await istio_pod(cluster, "app=istiod")), "KILL")

        async def replaced() -> bool:
            if await runprocs.alive(cluster, old_ca):
                return False
            return (len(await runprocs.pids_of(cluster, "components.istiod")) == 1
                    and len(await runprocs.pids_of(cluster, "components.ca")) == 1)
        await eventually(replaced, 30, interval=0.5)
        (await cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=istiod", "-n", "istio-system",
                               "--timeout=30s")).check()
        (await cluster.kubectl("apply", "-n", NS, "-f", "-", input=SEED_002_POLICY)).check()
        try:
            await wait_for_policies(cluster, z_dst, {"allow-sleep-to-httpbin"})
        finally:
            (await cluster.kubectl("delete", "authorizationpolicy", "allow-sleep-to-httpbin", "-n", NS)).check()
            await wait_for_policies(cluster, z_dst, set())
        assert await app_pods(cluster) == before
        await one_process_each(cluster, "components.istiod", "components.ca")


async def test_apiserver_restart_loses_nothing(faulty_mesh: Cluster) -> None:
    cluster = faulty_mesh
    with trio.fail_after(TEST_TIMEOUT):
        before = await app_pods(cluster)
        pid = await runprocs.pid_of(cluster, "components.apiserver")
        await runprocs.signal(cluster, pid, "KILL")

        async def answering() -> bool:
            return (await cluster.kubectl("get", "pods", "-n", NS)).ok
        await eventually(answering, 20, interval=0.3)  # the daemon restarted it (a static pod)
        assert await runprocs.pid_of(cluster, "components.apiserver") != pid
        assert await app_pods(cluster) == before
        # Every watcher came back: a change made now reaches ztunnel through istiod.
        z_dst = await ztunnel_on(cluster, (await pod(cluster, "httpbin")).node)
        (await cluster.kubectl("apply", "-n", NS, "-f", "-", input=SEED_002_POLICY)).check()
        try:
            await wait_for_policies(cluster, z_dst, {"allow-sleep-to-httpbin"})
        finally:
            (await cluster.kubectl("delete", "authorizationpolicy", "allow-sleep-to-httpbin", "-n", NS)).check()
            await wait_for_policies(cluster, z_dst, set())
        assert await serves(cluster)
        await one_process_each(cluster, "components.apiserver", "components.istiod", "components.ca")


async def test_a_cut_fabric_link_stops_cross_node_traffic_until_restored(faulty_mesh: Cluster) -> None:
    cluster = faulty_mesh
    with trio.fail_after(TEST_TIMEOUT):
        before = await app_pods(cluster)
        httpbin = await pod(cluster, "httpbin")
        index = cluster.nodes().index(httpbin.node)
        fabric = ["nsenter", "-t", str(cluster.run.state()["fabric_pid"]), "-n", "--"]
        enter = sandbox.enter_run_argv(cluster.run) + fabric

        async def link(state: str) -> None:
            (await cluster.run_in(enter + ["ip", "link", "set", f"veth-n{index}", state])).check()

        await link("down")
        try:
            # By pod IP: CoreDNS may be across the cut too.
            direct = f"http://{httpbin.ip}:8080/"
            assert not await serves(cluster, "notsleep", max_time="2", url=direct)  # across the cut
            assert await serves(cluster, "sleep", url=direct)  # on httpbin's own node
        finally:
            await link("up")

        async def restored() -> bool:
            return await serves(cluster, "notsleep")
        await eventually(restored, 20, interval=0.5)
        assert await app_pods(cluster) == before


SHORT_TTL_SECONDS = 130   # the CA backdates 2 minutes, so ztunnel renews 5 s after a fetch
HTTPBIN_IDENTITY = "spiffe://cluster.local/ns/ambient-demo/sa/httpbin"


async def _set_secret_ttl(cluster: Cluster, ttl: str | None) -> None:
    """Roll the ztunnels with SECRET_TTL set (or back to the manifest's default)."""
    ds = await cluster.api.get("apps/v1", "DaemonSet", "istio-system", "ztunnel")
    container = ds["spec"]["template"]["spec"]["containers"][0]
    env = [e for e in container.get("env") or [] if e["name"] != "SECRET_TTL"]
    if ttl is not None:
        env.append({"name": "SECRET_TTL", "value": ttl})
    container["env"] = env
    await cluster.api.replace(ds)
    (await cluster.kubectl("rollout", "status", "ds/ztunnel", "-n", "istio-system", "--timeout=60s")).check()


async def _httpbin_certificate(cluster: Cluster, ztunnel: str) -> dict | None:
    for entry in (await config_dump(cluster, ztunnel))["certificates"]:
        if entry["identity"] == HTTPBIN_IDENTITY and entry["certChain"]:
            return entry["certChain"][0]
    return None


async def test_ca_down_at_renewal_keeps_the_old_certificate_until_the_ca_returns(faulty_mesh: Cluster) -> None:
    """Short-lived certificates, then the CA stopped when renewal is due: ztunnel keeps serving
    with the certificate it has (its retries back off, never past the expiry) and fetches a new one
    once the CA is back. (What happens when the CA stays away past the expiry, the certificate
    dropped and fetched again on the CA's return, is tests/unit/test_ztunnel_certs.py's, on a mock
    clock: here it would cost the whole lifetime of a certificate, over two minutes.)"""
    cluster = faulty_mesh
    with trio.fail_after(120):
        await _set_secret_ttl(cluster, f"{SHORT_TTL_SECONDS}s")
        try:
            await eventually(lambda: serves(cluster), 30, interval=0.5)
            z_dst = await ztunnel_on(cluster, (await pod(cluster, "httpbin")).node)
            ca = await runprocs.pid_of(cluster, "components.ca")
            await runprocs.signal(cluster, ca, "STOP")
            try:
                first = await eventually(lambda: _httpbin_certificate(cluster, z_dst), 15, interval=0.5)
                # Past the renewal time (5 s after the fetch): the renewal cannot reach the CA.
                await trio.sleep_until(trio.current_time() + 10)
                assert await serves(cluster)
                assert (await _httpbin_certificate(cluster, z_dst))["serialNumber"] == first["serialNumber"]
            finally:
                await runprocs.signal(cluster, ca, "CONT")

            async def renewed() -> dict | None:
                cert = await _httpbin_certificate(cluster, z_dst)
                return cert if cert is not None and cert["serialNumber"] != first["serialNumber"] else None
            fresh = await eventually(renewed, 40, interval=0.5)
            assert fresh["expirationTime"] > first["expirationTime"]
            assert await serves(cluster)
        finally:
            await _set_secret_ttl(cluster, None)
        await eventually(lambda: serves(cluster), 30, interval=0.5)
