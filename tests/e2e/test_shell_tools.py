"""The shell's `pcap` and `graph` (as `ambient pcap` and `ambient graph`), and several shells on one
cluster at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from harness.cluster import Cluster
from harness.pytest_plugin import REPO
from tests.e2e.terminal import Terminal

pytestmark = pytest.mark.e2e
AMBIENT = REPO / "topologies" / "ambient.yaml"
SVG = "{http://www.w3.org/2000/svg}"


async def pod_ip(cluster: Cluster, app: str) -> str:
    pods = (await cluster.api.list("v1", "Pod", "ambient-demo", label_selector=f"app={app}"))["items"]
    return pods[0]["status"]["podIP"]


def read_pcap(path: Path) -> str:
    return subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True).stdout


async def capture_while_curling(cluster: Cluster, path: Path, flow: str) -> tuple[str, str]:
    """`ambient pcap sleep FILE` while sleep curls httpbin, stopped with Ctrl-C (SIGINT to its
    process group, as a terminal sends it) once FILE holds a packet matching `flow` (tcpdump drops
    what it has not read yet when interrupted): (what pcap printed, `tcpdump -r FILE`)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "harness.cli", "--cluster", cluster.name, "pcap", "sleep", str(path)],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    printed = b""
    try:
        assert process.stderr is not None
        with trio.fail_after(30):
            while b"listening on eth0" not in printed:
                chunk = await process.stderr.receive_some()
                assert chunk, f"pcap ended before tcpdump listened: {printed.decode()}"
                printed += chunk
        curl = await cluster.kubectl("exec", "deploy/sleep", "-n", "ambient-demo", "--", "curl", "-s", "httpbin:8000/ip")
        assert '"origin"' in curl.stdout, curl
        with trio.move_on_after(15):
            while not re.search(flow, read_pcap(path)):
                await trio.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        with trio.fail_after(15):
            async for chunk in process.stderr:
                printed += chunk
            assert await process.wait() == 0, printed.decode()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return printed.decode(), read_pcap(path)


async def graph(cluster: Cluster, path: Path) -> dict[str, ET.Element]:
    result = await trio.run_process([sys.executable, "-m", "harness.cli", "--cluster", cluster.name, "graph",
                                     "-o", str(path)], cwd=REPO, capture_stderr=True)
    assert f"graph: wrote {path}" in result.stderr.decode()
    root = ET.parse(path).getroot()
    return {g.get("data-name", ""): g for g in root.iter(f"{SVG}g") if g.get("class") == "pod"}


async def test_pcap_captures_the_pods_flow_and_graph_marks_the_mesh(cluster_factory, tmp_path: Path) -> None:
    cluster = await cluster_factory(AMBIENT, name="e2e-pcap")
    sleep_ip, httpbin_ip = await pod_ip(cluster, "sleep"), await pod_ip(cluster, "httpbin")

    pods = await graph(cluster, tmp_path / "before.svg")
    sleep = next(g for name, g in pods.items() if name.startswith("sleep-"))
    assert (sleep.get("data-mesh"), sleep.get("data-ip"), sleep.get("data-node")) == ("none", sleep_ip, "ambient-worker2")
    assert {g.get("data-mark") for name, g in pods.items() if name.startswith("ztunnel-")} == {"ztunnel"}
    assert len([name for name in pods if name.startswith("ztunnel-")]) == 3

    to_service = rf"IP {re.escape(sleep_ip)}\.\d+ > 10\.96\.\d+\.\d+\.8000: Flags \[P\.\]"
    printed, packets = await capture_while_curling(cluster, tmp_path / "plain.pcap", to_service)
    assert re.search(rf"pcap: wrote \d+ packets captured on ambient-demo/sleep-\S+ \(eth0\) to {tmp_path}/plain.pcap",
                     printed), printed
    assert re.search(to_service, packets), packets
    assert ".15008" not in packets

    (await cluster.kubectl("label", "namespace", "ambient-demo", "istio.io/dataplane-mode=ambient")).check()
    with trio.fail_after(30):
        while {g.get("data-mesh") for name, g in (await graph(cluster, tmp_path / "after.svg")).items()
               if name.startswith(("sleep-", "httpbin-", "notsleep-"))} != {"ambient"}:
            await trio.sleep(0.2)
    after = ET.parse(tmp_path / "after.svg").getroot()
    assert "namespaces in the ambient mesh: ambient-demo" in [t.text for t in after.iter(f"{SVG}text")]

    hbone = rf"IP {re.escape(sleep_ip)}\.\d+ > {re.escape(httpbin_ip)}\.15008: Flags \[P\.\]"
    printed, packets = await capture_while_curling(cluster, tmp_path / "mesh.pcap", hbone)
    assert "pcap: wrote" in printed
    assert re.search(hbone, packets), packets
    assert ".8000:" not in packets and f"{httpbin_ip}.8080:" not in packets


async def test_two_shells_on_one_cluster_see_each_others_changes(default_cluster: Cluster, tmp_path: Path) -> None:
    """Shell one changes the cluster and captures with `pcap` until Ctrl-C while shell two reads
    the change and makes the traffic; one exits, the other goes on."""
    prompt = f"(ambient:{default_cluster.name}) $"
    first, second = Terminal(width=200, height=40), Terminal(width=200, height=40)
    shell = f"cd {REPO} && {sys.executable} -m harness.cli --cluster {default_cluster.name} shell"
    capture = tmp_path / "two-shells.pcap"
    try:
        for terminal in (first, second):
            terminal.type(shell)
        for terminal in (first, second):
            await terminal.wait_for_prompt(prompt, timeout=30)
        assert len(list((default_cluster.run.path / "shell").glob("rc.*"))) == 2
        for line in ["kubectl apply -n ambient-demo -f - <<EOF", "apiVersion: v1", "kind: ConfigMap",
                     "metadata: {name: two-shells}", "data: {from: first}", "EOF"]:
            first.type(line)
        await first.wait_for("configmap/two-shells created")
        await first.wait_for_prompt(prompt)
        second.type("kubectl get configmap two-shells -n ambient-demo -o jsonpath='{.data.from}{\"\\n\"}'")
        await second.wait_for_prompt(prompt)
        assert re.search(r"^first$", second.screen(), re.M), second.screen()

        first.type(f"pcap sleep {capture} -f 'tcp port 8000'")
        await first.wait_for("listening on eth0", timeout=30)
        second.type("sleep curl -s -o /dev/null -w 'still here %{http_code}\\n' httpbin:8000")
        await second.wait_for("still here 200")
        await second.wait_for_prompt(prompt)
        syn = r"> 10\.96\.\d+\.\d+\.8000: Flags \[S\]"
        with trio.move_on_after(15):   # a Ctrl-C drops what tcpdump has not read yet
            while not re.search(syn, read_pcap(capture)):
                await trio.sleep(0.1)
        first.key("C-c")
        await first.wait_for(f"to {capture} (open it with Wireshark")
        await first.wait_for_prompt(prompt)
        assert re.search(syn, read_pcap(capture)), read_pcap(capture)

        first.type("exit")
        with trio.fail_after(10):
            while len(list((default_cluster.run.path / "shell").glob("rc.*"))) != 1:
                await trio.sleep(0.05)
        second.type("pods | grep -c ' Running '")
        await second.wait_for_prompt(prompt)
        second.type("exit")
        with trio.fail_after(10):
            while list((default_cluster.run.path / "shell").glob("rc.*")):
                await trio.sleep(0.05)
        history = (default_cluster.run.path / "shell_history").read_text()
        assert "kubectl apply -n ambient-demo -f - <<EOF" in history and "still here" in history
    finally:
        first.close()
        second.close()
        await default_cluster.kubectl("delete", "configmap", "two-shells", "-n", "ambient-demo")
