"""The run daemon: brings a topology up inside the run's namespaces and keeps it running.

Started by `sandbox.launch` as the child of the run's pid 1. It reports progress as JSON lines on
the pipe named by $AMBIENT_READY_FD (`{"event": "progress"|"ready"|"failed", ...}`), writes
state.json for the other commands, and serves control.sock (`GET /status`, `POST /shutdown`).
When it exits, pid 1 exits and the kernel ends every process of the run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

from components.common import http, kinds, log as logsetup
from components.common.apiclient import ApiClient, ApiError
from harness import host, manifests, network, procs, readiness, topology
from harness.kubelet import Kubelet, NodeRuntime
from harness.sandbox import RunDir

log = logging.getLogger("daemon")

APISERVER_PORT = 6443
APISERVER_READY_TIMEOUT = 15.0
KUBELET_VERSION = "v1.29.2"


class BringUpError(Exception):
    """The topology could not be brought up; the message is for the user."""


class Reporter:
    """Progress lines to the launcher over the ready pipe."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def send(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), **fields}) + "\n"
        log.info("%s %s", event, fields.get("message", ""))
        if self.fd is None:
            return
        try:
            os.write(self.fd, line.encode())
        except OSError:
            self.fd = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Daemon:
    def __init__(self, run: RunDir, reporter: Reporter):
        self.run = run
        self.reporter = reporter
        self.topology = topology.load(run.topology_file)
        request = json.loads((run.path / "request.json").read_text())
        self.topology.name = request["name"]
        self.topology.path = Path(request["source"])
        self.api = ApiClient(run.apiserver_address)
        self.nodes: dict[str, NodeRuntime] = {}
        self.fabric: procs.Pause | None = None
        self.state: dict[str, Any] = {"cluster": self.topology.name, "phase": "starting",
                                      "topology": str(self.topology.path), "pid": os.getpid()}
        self.shutdown = trio.Event()

    @property
    def apiserver_endpoint(self) -> str:
        return f"{network.FABRIC_PREFIX}.2:{APISERVER_PORT}"

    def save_state(self, **changes: Any) -> None:
        self.state.update(changes)
        self.run.write_state(self.state)

    async def _prefer_legacy_iptables(self) -> None:
        """Make `iptables`/`iptables-save` the legacy backend inside the run, as on nodes where the
        alternatives point to iptables-legacy: the in-pod rules and kube-proxy's are legacy rules,
        and seed 002 reads them with plain `iptables-save`. One bind mount in the run's private
        mount namespace; the host's own alternatives are untouched."""
        legacy, nft = shutil.which("xtables-legacy-multi"), shutil.which("xtables-nft-multi")
        if not legacy or not nft:
            return
        result = await trio.run_process(["mount", "--bind", legacy, nft], check=False, capture_stderr=True)
        if result.returncode != 0:
            log.warning("could not make iptables-legacy the default in the run: %s", result.stderr.decode().strip())

    async def main(self) -> None:
        self.save_state()
        await self._prefer_legacy_iptables()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_control)
            try:
                started = trio.current_time()
                await self._bring_up(nursery)
            except (BringUpError, topology.TopologyError, procs.SpawnError) as exc:
                self.save_state(phase="failed", error=str(exc))
                self.reporter.send("failed", message=str(exc))
                nursery.cancel_scope.cancel()
                return
            elapsed = trio.current_time() - started
            self.save_state(phase="ready", ready_seconds=round(elapsed, 3))
            self.reporter.send("ready", message=f"cluster {self.topology.name} is ready", seconds=elapsed)
            self.reporter.close()
            await self.shutdown.wait()
            self.save_state(phase="stopping")
            nursery.cancel_scope.cancel()

    async def _bring_up(self, nursery: trio.Nursery) -> None:
        self.reporter.send("progress", message=f"creating {len(self.topology.nodes)} nodes")
        await self._create_nodes()
        self.reporter.send("progress", message="starting the apiserver")
        await nursery.start(self._supervise_apiserver)
        await self._register_nodes()
        await self._register_apiserver_pod()
        kubelet = Kubelet(self.run, self.api, self.nodes, self.apiserver_endpoint)
        await nursery.start(kubelet.serve)
        nursery.start_soon(self._publish_root_cert)
        self.reporter.send("progress", message="installing cluster add-ons (kube-proxy, CoreDNS)")
        await self._apply_files(manifests.load(manifests.SYSTEM))
        if self.topology.istio:
            profile = self.topology.istio["profile"]
            self.reporter.send("progress", message=f"installing Istio (profile {profile})")
            await self._apply_files(manifests.istio(profile, ingress_gateway=bool(self.topology.istio.get("ingressGateway"))))
        self.reporter.send("progress", message=f"applying {len(self.topology.manifests)} manifests from {self.topology.path}")
        await self._apply(self.topology.manifests, str(self.topology.path))
        self.reporter.send("progress", message="waiting for pods to be ready")
        timeout = float(os.environ.get("AMBIENT_READY_TIMEOUT", 60 + 0.5 * len(self.topology.manifests)))
        try:
            await readiness.wait_ready(self.api, timeout)
        except readiness.NotReady as exc:
            tails = await self._failing_log_tails()
            raise BringUpError(f"cluster {self.topology.name} did not come up: {exc}{tails}") from exc

    async def _create_nodes(self) -> None:
        self.fabric = await procs.start_pause("the fabric", ["ip link set lo up"], unshare=["--net"])
        network.create_fabric(self.fabric.netns)
        sysctls = ("net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 "
                   "net.ipv4.conf.all.route_localnet=1")
        for index, spec in enumerate(self.topology.nodes):
            pause = await procs.start_pause(
                f"node {spec.name}", ['hostname "$1"', f"sysctl -qw {sysctls}", "ip link set lo up"],
                unshare=["--net", "--uts"], args=[spec.name])
            net = network.NodeNet(spec.name, index, pause.netns)
            network.add_node(self.fabric.netns, net)
            self.nodes[spec.name] = NodeRuntime(net, pause)
        network.route_between([n.net for n in self.nodes.values()])
        self.save_state(nodes=[{"name": n.net.name, "ip": n.net.ip, "pod_cidr": n.net.pod_cidr,
                                "pause_pid": n.pause.pid} for n in self.nodes.values()],
                        fabric_pid=self.fabric.pid)

    async def _supervise_apiserver(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the apiserver on the control-plane node; restart it if it dies (a static pod)."""
        control_plane = next(iter(self.nodes.values()))
        argv = [sys.executable, "-m", "components.apiserver",
                "--listen", self.apiserver_endpoint, "--listen", self.run.apiserver_address,
                "--data-dir", str(self.run.data), "--service-cidr", "10.96.0.0/16",
                "--apiserver-endpoint", self.apiserver_endpoint]
        env = {"PATH": procs.DEFAULT_PATH, "PYTHONUNBUFFERED": "1"}
        started = False
        while True:
            process = await procs.start_in(control_plane.pause.pid, argv, log=self.run.logs / "kube-apiserver.log",
                                           env=env, mount=False)
            if not started:
                await self._wait_apiserver(process)
                task_status.started()
                started = True
            code = await process.wait()
            log.error("kube-apiserver exited with %s; restarting it", code)
            await trio.sleep(0.5)

    async def _wait_apiserver(self, process: trio.Process) -> None:
        with trio.move_on_after(APISERVER_READY_TIMEOUT):
            while process.returncode is None:
                try:
                    response = await http.request(self.run.apiserver_address, "GET", "/readyz")
                    if response.status == 200:
                        return
                except (OSError, http.HTTPError):
                    pass
                await trio.sleep(0.02)
        tail = _tail(self.run.logs / "kube-apiserver.log")
        raise BringUpError(f"the apiserver did not become ready (exit code {process.returncode}); its log ends:\n{tail}")

    async def _register_nodes(self) -> None:
        kernel = platform.release()
        os_image = host.os_image()
        for index, (name, node) in enumerate(self.nodes.items()):
            spec = self.topology.nodes[index]
            taints = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}] if index == 0 else []
            obj = {"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": name, "labels": topology.node_labels(self.topology, spec)},
                   "spec": {"podCIDR": node.net.pod_cidr, "podCIDRs": [node.net.pod_cidr], "taints": taints}}
            try:
                await self.api.create(obj)
                await self.api.patch("v1", "Node", None, name, {"status": {
                    "addresses": [{"type": "InternalIP", "address": node.net.ip}, {"type": "Hostname", "address": name}],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "message": "kubelet is posting ready status"}],
                    "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                                 "osImage": os_image, "kernelVersion": kernel, "operatingSystem": "linux",
                                 "architecture": "amd64", "containerRuntimeVersion": "ambient://0.1.0"},
                    "capacity": {"cpu": str(os.cpu_count()), "pods": "110"},
                    "allocatable": {"cpu": str(os.cpu_count()), "pods": "110"}}}, subresource="status")
            except ApiError as exc:
                if exc.code != 409:
                    raise BringUpError(f"registering node {name} failed: {exc}") from exc

    async def _register_apiserver_pod(self) -> None:
        """The mirror pod a kubelet publishes for the apiserver's static pod (seen in `get pods -A`)."""
        node = next(iter(self.nodes.values()))
        name = f"kube-apiserver-{node.net.name}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
            "annotations": {"kubernetes.io/config.mirror": "static", "kubernetes.io/config.source": "file"}},
            "spec": {"nodeName": node.net.name, "hostNetwork": True, "priorityClassName": "system-node-critical",
                     "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.29.2",
                                     "command": ["kube-apiserver"]}]}}
        ready = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                 for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        try:
            await self.api.create(pod)
            await self.api.patch("v1", "Pod", "kube-system", name, {"status": {
                "phase": "Running", "conditions": ready, "hostIP": node.net.ip, "podIP": node.net.ip,
                "podIPs": [{"ip": node.net.ip}], "startTime": stamp,
                "containerStatuses": [{"name": "kube-apiserver", "ready": True, "started": True, "restartCount": 0,
                                       "image": "registry.k8s.io/kube-apiserver:v1.29.2",
                                       "state": {"running": {"startedAt": stamp}}}]}}, subresource="status")
        except ApiError as exc:
            if exc.code != 409:
                raise BringUpError(f"registering the apiserver's mirror pod failed: {exc}") from exc

    async def _apply_files(self, entries: list[tuple[Path, int, dict[str, Any]]]) -> None:
        for path, index, obj in entries:
            await self._apply([topology.Manifest(index, obj)], str(path))

    async def _apply(self, manifests: list[topology.Manifest], source: str) -> None:
        for manifest in manifests:
            obj = manifest.obj
            kind = kinds.served(obj["apiVersion"], obj["kind"])
            if kind is not None and kind.namespaced and not obj["metadata"].get("namespace"):
                obj = {**obj, "metadata": {**obj["metadata"], "namespace": "default"}}
            try:
                await self.api.apply(obj)
            except ApiError as exc:
                raise BringUpError(f"{source}: document {manifest.document} ({manifest.describe()}): {exc}") from exc

    async def _failing_log_tails(self, lines: int = 8, most: int = 3) -> str:
        """The last lines of the logs of containers that are not ready (a few, for the error)."""
        try:
            pods = (await self.api.list("v1", "Pod"))["items"]
        except ApiError:
            return ""
        parts: list[str] = []
        for pod in pods:
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if status.get("ready") or len(parts) >= most:
                    continue
                path = self.run.container_log(pod, status["name"])
                if path.exists():
                    ref = f"{pod['metadata']['namespace']}/{pod['metadata']['name']} container {status['name']}"
                    parts.append(f"\nlog of {ref} ends:\n{_tail(path, lines)}")
        return "".join(parts)

    async def _publish_root_cert(self) -> None:
        """Keep <run>/root-cert.pem equal to the mesh root the CA publishes (istio-ca-root-cert)."""
        async for event, obj in self.api.reflect("v1", "ConfigMap", "istio-system",
                                                 field_selector="metadata.name=istio-ca-root-cert"):
            items = obj["items"] if event == "SYNC" else ([] if event == "DELETED" else [obj])
            for item in items:
                pem = (item.get("data") or {}).get("root-cert.pem")
                if pem:
                    self.run.root_cert.write_text(pem)
                    self.save_state(root_cert=str(self.run.root_cert))

    async def _serve_control(self) -> None:
        async def handle(request: http.Request) -> http.Response:
            if request.method == "GET" and request.path == "/status":
                return http.Response.json(self.state)
            if request.method == "POST" and request.path == "/shutdown":
                self.shutdown.set()
                return http.Response.json({"stopping": True})
            return http.Response.json({"error": "not found"}, 404)

        listener = await http.open_unix_listener(str(self.run.control_socket))
        await http.serve([listener], handle)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _run(run: RunDir) -> None:
    fd = os.environ.get("AMBIENT_READY_FD")
    reporter = Reporter(int(fd) if fd else None)
    try:
        daemon = Daemon(run, reporter)
    except topology.TopologyError as exc:
        reporter.send("failed", message=str(exc))
        return
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            async def on_signal() -> None:
                async for _ in signals:
                    daemon.shutdown.set()
                    reporter.send("failed", message="interrupted")
                    nursery.cancel_scope.cancel()

            nursery.start_soon(on_signal)
            await daemon.main()
            nursery.cancel_scope.cancel()


def main() -> None:
    logsetup.setup("klog")
    run = RunDir(Path(sys.argv[1]))
    trio.run(_run, run)


if __name__ == "__main__":
    main()
