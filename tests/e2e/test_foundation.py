"""The pre-mesh cluster of seed 002: pods, DNS, services, exec, lifecycle (needs root)."""

from __future__ import annotations

import re

import pytest
import trio

from harness.cluster import Cluster
from harness.network import host_veth_name

pytestmark = pytest.mark.e2e
NS = "ambient-demo"
TITLE = "<title>httpbin.org</title>"


async def pods_by_app(cluster: Cluster) -> dict[str, dict]:
    listing = await cluster.api.list("v1", "Pod", NS)
    return {p["metadata"]["labels"]["app"]: p for p in listing["items"] if not p["metadata"].get("deletionTimestamp")}


async def test_pods_run_on_the_seed_nodes_with_pod_ips(default_cluster: Cluster) -> None:
    result = (await default_cluster.kubectl("get", "pods", "-n", NS, "-o", "wide")).check()
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    rows = {line.split()[0].rsplit("-", 2)[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"httpbin", "sleep", "notsleep"}
    for name, row in rows.items():
        assert row[1:3] == ["1/1", "Running"], row
        assert re.fullmatch(r"10\.244\.\d+\.\d+", row[5]), row
    assert rows["httpbin"][6] == "ambient-worker2"
    assert rows["sleep"][6] == "ambient-worker2"
    assert rows["notsleep"][6] == "ambient-worker"
    assert re.fullmatch(r"httpbin-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}", lines[1].split()[0])


@pytest.mark.parametrize("client", ["deploy/sleep", "deploy/notsleep"])
@pytest.mark.parametrize("host", ["httpbin:8000", "httpbin.ambient-demo:8000", "httpbin.ambient-demo.svc:8000",
                                  "httpbin.ambient-demo.svc.cluster.local:8000"])
async def test_curl_httpbin_by_name_same_and_across_nodes(default_cluster: Cluster, client: str, host: str) -> None:
    result = await default_cluster.exec(client, "curl", "-s", "--max-time", "5", host, namespace=NS)
    assert result.exit_code == 0, result
    assert TITLE in result.stdout


async def test_curl_httpbin_by_cluster_ip(default_cluster: Cluster) -> None:
    service = await default_cluster.api.get("v1", "Service", NS, "httpbin")
    ip = service["spec"]["clusterIP"]
    assert ip.startswith("10.96.")
    for client in ("deploy/sleep", "deploy/notsleep"):
        result = await default_cluster.exec(client, "curl", "-s", "--max-time", "5", f"http://{ip}:8000/", namespace=NS)
        assert TITLE in result.stdout, result


async def test_httpbin_sees_the_client_pod_ip(default_cluster: Cluster) -> None:
    pods = await pods_by_app(default_cluster)
    result = await default_cluster.exec("deploy/notsleep", "curl", "-s", "--max-time", "5", "httpbin:8000/ip",
                                        namespace=NS)
    assert pods["notsleep"]["status"]["podIP"] in result.stdout


async def test_unknown_names_do_not_resolve(default_cluster: Cluster) -> None:
    result = await default_cluster.exec("deploy/sleep", "curl", "-s", "--max-time", "5", "nosuchservice:8000",
                                        namespace=NS)
    assert result.exit_code == 6  # curl: could not resolve host


async def test_exec_sees_the_pod(default_cluster: Cluster) -> None:
    pods = await pods_by_app(default_cluster)
    httpbin = pods["httpbin"]
    name, ip = httpbin["metadata"]["name"], httpbin["status"]["podIP"]
    assert (await default_cluster.exec(name, "hostname", namespace=NS)).stdout.strip() == name
    listeners = (await default_cluster.exec(name, "ss", "-ntlp", namespace=NS)).stdout
    assert re.search(r"LISTEN\s+\d+\s+\d+\s+0\.0\.0\.0:8080\s", listeners), listeners
    addresses = (await default_cluster.exec(name, "ip", "addr", namespace=NS)).stdout
    assert f"inet {ip}/24" in addresses
    resolv = (await default_cluster.exec(name, "cat", "/etc/resolv.conf", namespace=NS)).stdout
    assert "nameserver 10.96.0.10" in resolv
    assert "search ambient-demo.svc.cluster.local svc.cluster.local cluster.local" in resolv
    hosts = (await default_cluster.exec(name, "cat", "/etc/hosts", namespace=NS)).stdout
    assert f"{ip}\t{name}" in hosts


async def test_exec_returns_the_command_exit_code(default_cluster: Cluster) -> None:
    result = await default_cluster.exec("deploy/sleep", "sh", "-c", "exit 7", namespace=NS)
    assert result.exit_code == 7


async def _wait_for(predicate, timeout: float = 20.0):
    with trio.fail_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.05)


async def _node_links(cluster: Cluster, node: str) -> str:
    return (await cluster.node_exec(node, "ip", "-o", "link")).check().stdout


async def _run_processes(cluster: Cluster) -> str:
    return (await cluster.run_in(["nsenter", "-t", str(cluster.run.init_pid()), "-p", "-m", "--",
                                  "ps", "-eo", "pid,args"])).check().stdout


VICTIM = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: victim
  namespace: ambient-demo
spec:
  selector:
    matchLabels: {app: victim}
  template:
    metadata:
      labels: {app: victim}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: ambient-worker}
      containers:
      - name: victim
        image: busybox
        command: ["/bin/sleep", "31337"]
"""


async def test_deleted_pod_is_replaced_and_deleted_deployment_leaves_nothing(default_cluster: Cluster) -> None:
    cluster = default_cluster
    await cluster.apply(VICTIM)
    await cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=victim", "-n", NS, "--timeout=30s")

    async def victims() -> list[dict]:
        items = (await cluster.api.list("v1", "Pod", NS, label_selector="app=victim"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    first = (await _wait_for(victims))[0]
    veth = host_veth_name(first["metadata"]["uid"])
    assert veth in await _node_links(cluster, "ambient-worker")
    assert "sleep 31337" in await _run_processes(cluster)

    (await cluster.kubectl("delete", "pod", first["metadata"]["name"], "-n", NS)).check()

    async def replacement() -> dict | None:
        for pod in await victims():
            ready = [c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            if pod["metadata"]["uid"] != first["metadata"]["uid"] and ready and ready[0]["status"] == "True":
                return pod
        return None

    second = await _wait_for(replacement)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert veth not in await _node_links(cluster, "ambient-worker")

    (await cluster.kubectl("delete", "deployment", "victim", "-n", NS)).check()

    async def gone() -> bool:
        return not (await cluster.api.list("v1", "Pod", NS, label_selector="app=victim"))["items"]

    await _wait_for(gone)
    assert "sleep 31337" not in await _run_processes(cluster)
    second_veth = host_veth_name(second["metadata"]["uid"])
    assert second_veth not in await _node_links(cluster, "ambient-worker")


async def test_interactive_exec_gets_its_own_terminal(default_cluster: Cluster) -> None:
    import sys

    from tests.e2e.terminal import Terminal

    term = Terminal(width=150, height=30)
    try:
        term.type(f"{sys.executable} -m harness.cli --cluster {default_cluster.name} "
                  f"kubectl exec -it deploy/sleep -n {NS} -- sh")
        await term.wait_for_prompt("#")
        term.type("hostname; stty size; echo tty=$(tty)")
        await term.wait_for("tty=/dev/pts/")
        assert "30 150" in term.screen()
        await term.wait_for_prompt("#")
        term.type("sleep 60")
        await term.wait_for_prompt("# sleep 60")
        term.key("C-c")
        term.type("echo interrupted-ok")
        await term.wait_for("\ninterrupted-ok")
        term.type("exit 4")
        term.type("echo rc=$?")
        await term.wait_for("rc=4")
    finally:
        term.close()
