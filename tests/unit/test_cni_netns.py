"""istio-cni's rules applied for real, in network namespaces these tests create with `unshare -n`
(never the host's): seed 002's iptables-save, idempotency and reconciliation (#50072), tolerant
removal (#53829, #58293), the host probe rule and ipset (#52218, #60607), finding a pod's netns,
and the agent process end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import trio

from components.cni import inpod, podnetns
from components.cni.hostprobe import HostProbe
from components.cni.rules import Verdict
from components.common import zds
from components.common.apiclient import ApiClient
from components.common.zds import AddWorkload, SnapshotSent, WorkloadInfo
from tests.unit.test_apiserver_support import add_node, api, apiserver, pod, run_pod, signing_key  # noqa: F401
from tests.unit.test_cni_rules import SEED_RESTORE_INPUT, SEED_SAVE_MANGLE, SEED_SAVE_NAT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "iptables-legacy-save", "ipset")),
    reason="needs root (and unshare, nsenter, iptables-legacy, ipset): creates network namespaces with unshare -n")

SEED_SAVE = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
             ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":ISTIO_OUTPUT - [0:0]", ":ISTIO_PRERT - [0:0]",
             *SEED_SAVE_MANGLE, "COMMIT",
             "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":ISTIO_OUTPUT - [0:0]", *SEED_SAVE_NAT, "COMMIT"]
SEED_IP_RULE = ["0:\tfrom all lookup local", "32764:\tfrom all fwmark 0x111/0xfff lookup 100",
                "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"]
OWN_NETNS = os.stat("/proc/self/ns/net").st_ino


def start_netns(*argv: str) -> subprocess.Popen:
    """A process in a new netns (by default `sleep infinity`), once it is there."""
    process = subprocess.Popen(["unshare", "-n", *(argv or ("sleep", "infinity"))])
    for _ in range(200):
        try:
            if os.stat(f"/proc/{process.pid}/ns/net").st_ino != OWN_NETNS:
                return process
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    process.kill()
    raise RuntimeError("unshare -n did not start")


@pytest.fixture
def netns() -> Iterator[str]:
    process = start_netns()
    yield f"/proc/{process.pid}/ns/net"
    process.kill()
    process.wait()


def run_in(path: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True, check=check)


def saved(path: str, *tables: str) -> list[str]:
    args = [arg for table in tables for arg in ("-t", table)]
    return [line for line in run_in(path, "iptables-legacy-save", *args).stdout.splitlines() if not line.startswith("#")]


def test_inpod_rules_are_seed_002s(netns: str):
    assert inpod.create_rules(netns) is Verdict.CLEAN
    assert saved(netns) == SEED_SAVE
    assert run_in(netns, "ip", "rule").stdout.splitlines() == SEED_IP_RULE
    assert run_in(netns, "ip", "route", "show", "table", "100").stdout.strip() == "local default dev lo scope host"


def test_added_twice_is_one_set(netns: str):
    assert inpod.create_rules(netns) is Verdict.CLEAN
    assert inpod.create_rules(netns) is Verdict.COMPATIBLE
    assert saved(netns) == SEED_SAVE
    assert run_in(netns, "ip", "rule").stdout.splitlines() == SEED_IP_RULE


def test_rules_restored_by_the_real_agent_are_compatible(netns: str):
    restore = ["iptables-legacy-restore", "--noflush"]
    subprocess.run(["nsenter", f"--net={netns}", *restore], input=SEED_RESTORE_INPUT + "\n", text=True, check=True)
    again = subprocess.run(["nsenter", f"--net={netns}", *restore], input=SEED_RESTORE_INPUT + "\n", text=True,
                           capture_output=True)
    assert again.returncode == 1 and "line 2 failed" in again.stderr  # #50072, the seed's duplicate add
    assert inpod.create_rules(netns) is Verdict.COMPATIBLE
    assert saved(netns) == SEED_SAVE


def test_leftovers_are_reconciled_into_one_set(netns: str):
    for command in ("-t mangle -N ISTIO_PRERT", "-t mangle -A PREROUTING -j ISTIO_PRERT",
                    "-t mangle -A PREROUTING -j ISTIO_PRERT", "-t mangle -A ISTIO_PRERT -p tcp -j ACCEPT",
                    "-t mangle -N ISTIO_STALE", "-t nat -A POSTROUTING -j ACCEPT"):
        run_in(netns, "iptables-legacy", *command.split())
    assert inpod.create_rules(netns) is Verdict.RECONCILE
    assert saved(netns, "mangle") == SEED_SAVE[:SEED_SAVE.index("*nat")]
    nat = SEED_SAVE[SEED_SAVE.index("*nat"):]
    jump = nat.index("-A OUTPUT -j ISTIO_OUTPUT")
    assert saved(netns, "nat") == nat[:jump + 1] + ["-A POSTROUTING -j ACCEPT"] + nat[jump + 1:]  # not ours: kept
    assert inpod.create_rules(netns) is Verdict.COMPATIBLE


def test_removal_tolerates_what_is_already_gone(netns: str):
    inpod.create_rules(netns)
    run_in(netns, "ip", "rule", "del", "pref", "32764")  # #58293: gone behind the agent's back
    run_in(netns, "iptables-legacy", "-t", "mangle", "-F", "ISTIO_PRERT")
    inpod.delete_rules(netns)
    assert not [line for line in saved(netns) if "ISTIO" in line]
    assert "32764" not in run_in(netns, "ip", "rule").stdout
    assert run_in(netns, "ip", "route", "show", "table", "100").stdout == ""
    inpod.delete_rules(netns)  # nothing left: still fine (#53829)
    assert inpod.create_rules(netns) is Verdict.CLEAN


def test_host_probe_rule_and_ipset(netns: str):
    host = HostProbe(netns)
    assert host.ensure_rules() is Verdict.CLEAN
    assert host.ensure_rules() is Verdict.COMPATIBLE
    run_in(netns, "iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-j", "ISTIO_POSTRT")  # a stray duplicate
    assert host.check_rules() is Verdict.RECONCILE
    assert host.ensure_rules() is Verdict.RECONCILE
    assert saved(netns, "nat")[-3:] == [
        "-A POSTROUTING -j ISTIO_POSTRT",
        "-A ISTIO_POSTRT -p tcp -m owner --socket-exists -m set --match-set istio-inpod-probes-v4 dst "
        "-j SNAT --to-source 169.254.7.127", "COMMIT"]
    run_in(netns, "iptables-legacy", "-t", "nat", "-F", "ISTIO_POSTRT")  # #60607: someone flushed it
    assert host.check_rules() is Verdict.RECONCILE
    # #52218: pod A had the IP, pod B reuses it, A's late removal must leave B's entry.
    host.add("10.244.1.5", "uid-a")
    host.add("10.244.1.5", "uid-b")
    assert host.remove("10.244.1.5", "uid-a") is False
    assert host.entries() == {"10.244.1.5": "uid-b"}
    assert host.remove("10.244.1.5", "uid-b") is True
    host.sync({"10.244.1.6": "uid-c", "10.244.1.7": "uid-d"})
    host.sync({"10.244.1.7": "uid-d"})
    assert host.entries() == {"10.244.1.7": "uid-d"}


def test_finding_a_pods_netns(tmp_path: Path):
    sandbox = start_netns(sys.executable, "-c", "import time; time.sleep(60)", "pod-uid=1234-abcd")
    plain = start_netns()
    try:
        found = podnetns.find_by_uid("1234-abcd")
        assert found == f"/proc/{sandbox.pid}/ns/net"
        assert podnetns.find_by_uid("nope") is None
        run_in(f"/proc/{plain.pid}/ns/net", "ip", "addr", "add", "10.244.1.5/32", "dev", "lo")
        fake_proc = tmp_path / "proc"  # only our own namespaces are looked into
        for process in (sandbox, plain):
            (fake_proc / str(process.pid) / "ns").mkdir(parents=True)
            (fake_proc / str(process.pid) / "ns" / "net").symlink_to(f"/proc/{process.pid}/ns/net")
        by_ip = podnetns.find_by_ip("10.244.1.5", fake_proc)
        assert by_ip is not None and os.stat(by_ip).st_ino == os.stat(f"/proc/{plain.pid}/ns/net").st_ino
        assert podnetns.find_by_ip("10.244.1.6", fake_proc) is None
        fd = podnetns.open_netns(found)
        try:
            assert podnetns.same_netns(fd, found) and not podnetns.same_netns(fd, by_ip)
        finally:
            os.close(fd)
        with pytest.raises(OSError):
            podnetns.open_netns("/proc/self/ns/uts")
    finally:
        for process in (sandbox, plain):
            process.kill()
            process.wait()


# -- the agent process, in a node netns of its own ----------------------------------------------

async def _exists(path: Path) -> None:
    with trio.fail_after(10):
        while not path.exists():
            await trio.sleep(0.05)


async def _ztunnel(path: Path) -> trio.socket.SocketType:
    """Connect as ztunnel does, once the agent listens, and say hello."""
    await _exists(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_SEQPACKET)
    await sock.connect(str(path))
    await zds.send_hello(sock)
    return sock


async def _requests(sock: trio.socket.SocketType, count: int) -> list[tuple[object, int | None]]:
    """Receive and ack `count` requests: (request, inode of the netns fd it carried)."""
    out = []
    with trio.fail_after(10):
        for _ in range(count):
            request, fd = await zds.receive_request(sock)
            inode = None
            if fd is not None:
                inode = os.fstat(fd).st_ino
                os.close(fd)
            out.append((request, inode))
            await zds.send_ack(sock)
    return out


def _agent(tmp_path: Path, api: ApiClient) -> subprocess.Popen:
    argv = ["unshare", "-n", "--", sys.executable, "-m", "components.cni", "--api", api.address, "--node", "worker",
            "--zds-socket", str(tmp_path / "ztunnel.sock"), "--plugin-socket", str(tmp_path / "plugin.sock"),
            "--cni-conf-dir", str(tmp_path / "net.d"), "--host-rules-check-interval", "0.5"]
    log = open(tmp_path / "agent.log", "a")
    return subprocess.Popen(argv, stderr=log, stdout=log, cwd=Path(__file__).parents[2])


async def _stop(agent: subprocess.Popen) -> None:
    agent.send_signal(signal.SIGTERM)
    with trio.fail_after(10):
        while agent.poll() is None:
            await trio.sleep(0.05)
    assert agent.returncode == 0


async def test_agent_end_to_end(api: ApiClient, tmp_path: Path):
    await add_node(api, "worker")
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ambient-demo"}})
    created = await api.create(pod("httpbin-5c779fc757-9dxfm", "ambient-demo", nodeName="worker",
                                   containers=[{"name": "httpbin", "image": "x"}]))
    uid = created["metadata"]["uid"]
    sandbox = start_netns(sys.executable, "-c", "import time; time.sleep(120)", f"pod-uid={uid}")
    pod_netns = f"/proc/{sandbox.pid}/ns/net"
    await run_pod(api, "ambient-demo", "httpbin-5c779fc757-9dxfm", "10.244.1.5")
    agent = _agent(tmp_path, api)
    try:
        node = f"/proc/{agent.pid}/ns/net"
        sock = await _ztunnel(tmp_path / "ztunnel.sock")
        assert await _requests(sock, 1) == [(SnapshotSent(), None)]
        await _exists(tmp_path / "net.d" / "istio-cni.conf")
        assert json.loads((tmp_path / "net.d" / "istio-cni.conf").read_text())["plugin_socket"] == str(
            tmp_path / "plugin.sock")
        run_in(node, "ip", "link", "set", "lo", "up")
        ready = run_in(node, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8000/readyz")
        assert ready.stdout == "200"
        await api.patch("v1", "Namespace", None, "ambient-demo",
                        {"metadata": {"labels": {"istio.io/dataplane-mode": "ambient"}}})
        info = WorkloadInfo("httpbin-5c779fc757-9dxfm", "ambient-demo", "default")
        assert await _requests(sock, 1) == [(AddWorkload(uid, info), os.stat(pod_netns).st_ino)]
        assert saved(pod_netns) == SEED_SAVE
        host_rules = [line for line in saved(node, "nat") if "ISTIO_POSTRT" in line]
        assert len(host_rules) == 3  # the chain, one jump, one rule
        assert "add istio-inpod-probes-v4 10.244.1.5 comment" in run_in(node, "ipset", "save").stdout
        run_in(node, "iptables-legacy", "-t", "nat", "-F", "POSTROUTING")  # #60607
        with trio.fail_after(5):
            while len([line for line in saved(node, "nat") if "ISTIO_POSTRT" in line]) != 3:
                await trio.sleep(0.1)
        await _stop(agent)
        assert not (tmp_path / "net.d" / "istio-cni.conf").exists()
        assert saved(pod_netns) == SEED_SAVE  # pods keep their rules across agent restarts
        sock.close()

        agent = _agent(tmp_path, api)  # a new node netns; the pod netns is the one that matters here
        sock = await _ztunnel(tmp_path / "ztunnel.sock")
        assert await _requests(sock, 2) == [(AddWorkload(uid, info), os.stat(pod_netns).st_ino), (SnapshotSent(), None)]
        assert saved(pod_netns) == SEED_SAVE
        log = (tmp_path / "agent.log").read_text()
        assert "Found compatible residues of old iptables rules/chains, reconciliation not needed" in log
        assert "in pod mode - adding pod ambient-demo/httpbin-5c779fc757-9dxfm to ztunnel" in log
        sock.close()
        await _stop(agent)
    finally:
        agent.kill()
        agent.wait()
        sandbox.kill()
        sandbox.wait()


def test_host_rules_are_not_duplicated_by_restarts(netns: str):
    for _ in range(3):
        HostProbe(netns).ensure_rules()
    assert len([line for line in saved(netns, "nat") if line.startswith("-A POSTROUTING")]) == 1
