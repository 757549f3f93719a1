"""One pod's life on its node: sandbox, containers, restarts, readiness, status, teardown."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from components.common.apiclient import ApiError
from harness import cni, images, network, probes, procs, volumes

if TYPE_CHECKING:
    from harness.kubelet import Kubelet, NodeRuntime

log = logging.getLogger("kubelet")

CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
READY_POLL = 0.05
READY_RECHECK = 2.0
TERMINATION_WAIT_MAX = 5.0
VOLUME_RETRY_START = 0.2
VOLUME_RETRY_MAX = 2.0


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRun:
    """What the kubelet knows of one container."""

    spec: dict[str, Any]
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    ready: bool = False
    process: trio.Process | None = None

    @property
    def name(self) -> str:
        return self.spec["name"]

    def status(self) -> dict[str, Any]:
        running = "running" in self.state
        return {
            "name": self.name, "image": self.spec.get("image", ""),
            "imageID": self.spec.get("image", ""),
            "containerID": f"ambient://{self.process.pid}" if self.process and running else "",
            "ready": self.ready, "started": running, "restartCount": self.restarts,
            "state": self.state, "lastState": self.last_state,
        }


class PodWorker:
    """Runs one pod until it is deleted (then tears it down and completes the deletion)."""

    def __init__(self, kubelet: "Kubelet", node: "NodeRuntime", pod: dict[str, Any]):
        self.kubelet = kubelet
        self.node = node
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.containers = [ContainerRun(c) for c in pod["spec"].get("containers", [])]
        self.cancel_scope = trio.CancelScope()
        self.deleting = False
        self.pause: procs.Pause | None = None
        self.pod_ip = ""
        self.host_ifname = ""
        self.start_time = now()
        self.sandbox_error = ""
        self._status_lock = trio.Lock()
        self.volumes = volumes.PodVolumes(self)
        self.finished = trio.Event()

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def host_network(self) -> bool:
        return bool(self.pod["spec"].get("hostNetwork"))

    def terminate(self) -> None:
        """Begin graceful deletion: stop containers, remove the sandbox, delete the pod object."""
        self.deleting = True
        self.cancel_scope.cancel()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            with self.cancel_scope:
                await self._run()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown()
                self.finished.set()

    async def _run(self) -> None:
        run = self.kubelet.run
        try:
            envs = {c.name: await self._container_env(c.spec) for c in self.containers}
            argvs = {c.name: images.argv_for(c.spec, envs[c.name]) for c in self.containers}
        except images.UnknownImage as exc:
            for c in self.containers:
                c.state = {"waiting": {"reason": "ErrImagePull", "message": str(exc)}}
            log.error("pod %s: %s", self.ref, exc)
            await self._push_status()
            await trio.sleep_forever()
        except ApiError as exc:
            for c in self.containers:
                c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            await self._push_status()
            await trio.sleep_forever()
        await self._push_status()
        mounts = await self._prepare_volumes()
        try:
            await self._create_sandbox(mounts)
        except (procs.SpawnError, OSError, RuntimeError) as exc:
            self.sandbox_error = f"failed to create pod sandbox: {exc}"
            log.error("pod %s: %s", self.ref, self.sandbox_error)
            await self._push_status()
            await trio.sleep_forever()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.volumes.keep_tokens_fresh)
            for container in self.containers:
                nursery.start_soon(self._supervise, container, argvs[container.name], envs[container.name],
                                   run.container_log(self.pod, container.name))
        await self._push_status()
        await trio.sleep_forever()

    async def _prepare_volumes(self) -> list[volumes.Mount]:
        """Fill the pod's volumes, retrying (as a kubelet retries FailedMount) until they can be."""
        delay = VOLUME_RETRY_START
        while True:
            try:
                return await self.volumes.prepare()
            except volumes.VolumeError as exc:
                await self._sandbox_failed(f"MountVolume.SetUp failed: {exc}")
            await trio.sleep(delay)
            delay = min(delay * 2, VOLUME_RETRY_MAX)

    async def _sandbox_failed(self, message: str) -> None:
        """Report why the sandbox is not ready yet, once per distinct reason."""
        if message != self.sandbox_error:
            log.warning("pod %s: %s", self.ref, message)
            self.sandbox_error = message
            await self._push_status()

    async def _create_sandbox(self, mounts: list[volumes.Mount]) -> None:
        run = self.kubelet.run
        pod_dir = run.pod_dir(self.namespace, self.name)
        pod_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox_error = ""
        mounts = list(mounts)
        if self.host_network:
            self.pod_ip = self.node.net.ip
            unshare, enter = ["--mount", "--propagation", "private"], procs.enter_argv(self.node.pause.pid, mount=False)
            if self.pod["spec"].get("dnsPolicy") == "ClusterFirstWithHostNet":
                (pod_dir / "resolv.conf").write_text(self._resolv_conf())
                mounts.append(volumes.Mount(pod_dir / "resolv.conf", "/etc/resolv.conf", False))
            script = volumes.mount_script(mounts, pod_dir / "overlays")
        else:
            self.pod_ip = self.node.net.allocate_ip()
            (pod_dir / "resolv.conf").write_text(self._resolv_conf())
            (pod_dir / "hosts").write_text(self._hosts_file())
            mounts += [volumes.Mount(pod_dir / "resolv.conf", "/etc/resolv.conf", False),
                       volumes.Mount(pod_dir / "hosts", "/etc/hosts", False)]
            script = ['hostname "$1"', *volumes.mount_script(mounts, pod_dir / "overlays"), "ip link set lo up"]
            unshare, enter = ["--net", "--uts", "--mount", "--propagation", "private"], None
        self.pause = await procs.start_pause(f"pod {self.ref}", script, unshare=unshare, enter=enter,
                                             args=[self._hostname(), str(pod_dir)], title=f"pause pod-uid={self.uid}")
        if not self.host_network:
            self.host_ifname = network.host_veth_name(self.uid)
            network.add_pod(self.node.net, self.pause.netns, self.pod_ip, self.host_ifname)
            await self._run_cni_plugins()
        (pod_dir / "sandbox.json").write_text(json.dumps({
            "uid": self.uid, "pause_pid": self.pause.pid, "node": self.node.net.name, "ip": self.pod_ip,
            "host_network": self.host_network, "host_veth": self.host_ifname}))
        log.info("pod %s: sandbox ready on %s with IP %s", self.ref, self.node.net.name, self.pod_ip)

    async def _run_cni_plugins(self) -> None:
        """Call the chained CNI plugin the node has (istio-cni), as the container runtime does
        after wiring the pod's network and before starting its containers; retry until it agrees."""
        delay = VOLUME_RETRY_START
        while True:
            try:
                await cni.add(self.kubelet.run.node_root(self.node.net.name), self.pause.netns, self.pod, self.pod_ip)
                if self.sandbox_error:
                    self.sandbox_error = ""
                    await self._push_status()
                return
            except cni.PluginError as exc:
                await self._sandbox_failed(f"failed to setup network for sandbox: {exc}")
            await trio.sleep(delay)
            delay = min(delay * 2, VOLUME_RETRY_MAX)

    async def _supervise(self, container: ContainerRun, argv: list[str], env: dict[str, str], log_path: Any) -> None:
        restart_policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = BACKOFF_START
        workdir = container.spec.get("workingDir")
        assert self.pause is not None
        while True:
            started_at = now()
            started = trio.current_time()
            try:
                process = await procs.start_in(self.pause.pid, argv, log=log_path, env=env, workdir=workdir)
            except OSError as exc:
                container.state = {"waiting": {"reason": "RunContainerError", "message": str(exc)}}
                await self._push_status()
                return
            container.process = process
            container.state = {"running": {"startedAt": started_at}}
            await self._push_status()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_readiness, container)
                code = await process.wait()
                nursery.cancel_scope.cancel()
            container.ready = False
            container.last_state = {}
            container.state = {"terminated": {
                "exitCode": code if code >= 0 else 128 - code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": started_at, "finishedAt": now()}}
            log.info("pod %s: container %s exited with %s", self.ref, container.name, code)
            if restart_policy == "Never" or (restart_policy == "OnFailure" and code == 0):
                await self._push_status()
                return
            if trio.current_time() - started > 10 * BACKOFF_MAX:
                backoff = BACKOFF_START
            container.last_state = container.state
            container.state = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {backoff:g}s restarting failed container={container.name} pod={self.name}_{self.namespace}"
                f"({self.uid})")}}
            await self._push_status()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            container.restarts += 1

    async def _watch_readiness(self, container: ContainerRun) -> None:
        netns = self.node.pause.netns
        while not await probes.ready(netns, self.pod_ip, container.spec):
            await trio.sleep(READY_POLL)
        container.ready = True
        await self._push_status()
        if not container.spec.get("readinessProbe"):
            return
        period = float(container.spec["readinessProbe"].get("periodSeconds", READY_RECHECK))
        while True:
            await trio.sleep(period)
            ready = await probes.ready(netns, self.pod_ip, container.spec)
            if ready != container.ready:
                container.ready = ready
                await self._push_status()

    async def _teardown(self) -> None:
        running = [c.process for c in self.containers if c.process is not None and c.process.returncode is None]
        if self.deleting:
            # Graceful, as for `kubectl delete`: SIGTERM, then SIGKILL after the grace period.
            grace = min(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)), TERMINATION_WAIT_MAX)
            for process in running:
                procs.kill_group(process, signal.SIGTERM)
            with trio.move_on_after(grace):
                for process in running:
                    await process.wait()
        for process in running:
            procs.kill_group(process)
        if self.pause is not None:
            self.pause.kill()
            await self.pause.process.wait()
        if self.pod_ip and not self.host_network:
            self.node.net.release_ip(self.pod_ip)
        log.info("pod %s: sandbox removed", self.ref)
        if self.deleting:
            try:
                await self.kubelet.api.delete("v1", "Pod", self.namespace, self.name, grace_period_seconds=0)
            except ApiError as exc:
                if exc.code != 404:
                    log.error("pod %s: final delete failed: %s", self.ref, exc)

    # -- status -----------------------------------------------------------------------------

    def _phase(self) -> str:
        states = [c.state for c in self.containers]
        if states and all("terminated" in s for s in states):
            failed = any(s["terminated"]["exitCode"] != 0 for s in states)
            return "Failed" if failed else "Succeeded"
        if self.pause is not None and any("running" in s or c.restarts for s, c in zip(states, self.containers)):
            return "Running"
        return "Pending"

    def status(self) -> dict[str, Any]:
        all_ready = bool(self.containers) and all(c.ready for c in self.containers)
        stamp = now()

        def condition(kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
            cond = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None,
                    "lastTransitionTime": stamp}
            if reason and not ok:
                cond["reason"] = reason
            return cond

        status: dict[str, Any] = {
            "phase": self._phase(),
            "conditions": [
                condition("PodReadyToStartContainers", self.pause is not None),
                condition("Initialized", True),
                condition("Ready", all_ready, "ContainersNotReady"),
                condition("ContainersReady", all_ready, "ContainersNotReady"),
                condition("PodScheduled", True),
            ],
            "hostIP": self.node.net.ip, "hostIPs": [{"ip": self.node.net.ip}],
            "startTime": self.start_time, "qosClass": "BestEffort",
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.pause is not None and self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        # Explicit nulls: the status goes out as a merge patch, where a key left out would keep
        # a sandbox error that has since cleared.
        status["message"] = self.sandbox_error or None
        status["reason"] = "FailedCreatePodSandBox" if self.sandbox_error else None
        return status

    async def _push_status(self) -> None:
        if self.deleting:
            return
        async with self._status_lock:
            try:
                await self.kubelet.api.patch("v1", "Pod", self.namespace, self.name,
                                             {"status": self.status()}, subresource="status")
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("pod %s: status update failed: %s", self.ref, exc)

    # -- files and environment --------------------------------------------------------------

    def _hostname(self) -> str:
        spec = self.pod["spec"]
        return spec.get("hostname") or self.name

    def _resolv_conf(self) -> str:
        ns = self.namespace
        return (f"search {ns}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
                f"nameserver {CLUSTER_DNS}\noptions ndots:5\n")

    def _hosts_file(self) -> str:
        return ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                f"{self.pod_ip}\t{self._hostname()}\n")

    def _base_env(self) -> dict[str, str]:
        return {
            "PATH": procs.DEFAULT_PATH, "HOME": "/root", "HOSTNAME": self._hostname(),
            "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
            "AMBIENT_APISERVER": self.kubelet.apiserver_endpoint, "PYTHONUNBUFFERED": "1",
        }

    def field(self, path: str) -> str:
        """A downward-API field of this pod (metadata.name, status.podIP, metadata.labels['x'], ...)."""
        spec, meta = self.pod["spec"], self.pod["metadata"]
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "metadata.uid": meta["uid"], "spec.nodeName": spec.get("nodeName", ""),
                  "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
                  "status.podIP": self.pod_ip, "status.hostIP": self.node.net.ip,
                  "status.podIPs": self.pod_ip, "status.hostIPs": self.node.net.ip}
        if path in simple:
            return simple[path]
        for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
            if path == prefix:
                # A downwardAPI volume file of all of them: sorted `key="value"` lines (Go's %q).
                return "\n".join(f'{k}={json.dumps(v)}' for k, v in sorted((meta.get(source) or {}).items()))
            if path.startswith(prefix + "['") and path.endswith("']"):
                return (meta.get(source) or {}).get(path[len(prefix) + 2:-2], "")
        return ""

    async def _container_env(self, container: dict[str, Any]) -> dict[str, str]:
        env = self._base_env()
        for item in container.get("env") or []:
            name = item["name"]
            if "value" in item:
                env[name] = images.expand(str(item["value"]), env)
            elif "valueFrom" in item:
                value = await self._value_from(item["valueFrom"])
                if value is not None:
                    env[name] = value
        return env

    async def _value_from(self, source: dict[str, Any]) -> str | None:
        if "fieldRef" in source:
            return self.field(source["fieldRef"].get("fieldPath", ""))
        if "resourceFieldRef" in source:
            return "0"
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if key in source:
                ref = source[key]
                try:
                    data = await self.kubelet.api.get("v1", kind, self.namespace, ref.get("name", ""))
                except ApiError as exc:
                    if exc.code == 404 and ref.get("optional"):
                        return None
                    raise
                value = (data.get("data") or {}).get(ref.get("key", ""))
                if value is not None and kind == "Secret":
                    value = base64.b64decode(value).decode(errors="replace")
                return value
        return None
