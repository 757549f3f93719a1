"""The CNI plugin's way in: the agent captures a new pod before its containers start.

Contract with the kubelet (the harness), as istio-cni's plugin talks to its node agent:

- While the agent runs, `<cni-conf-dir>/istio-cni.conf` exists (default /etc/cni/net.d, a hostPath
  of the node, so the harness finds it under the node's directory) and holds
  `{"type": "istio-cni", "plugin_socket": "/var/run/istio-cni/pluginevent.sock"}`: the socket's
  path inside the agent pod, also a hostPath of the node. The agent writes the file once the socket
  listens and removes it on a clean shutdown; a file left by a killed agent means the plugin is
  still configured and pods on the node cannot start until an agent answers (fail closed).
- For every non-hostNetwork pod of that node, after its network is wired (veth, IP, routes) and
  before its containers start, the kubelet sends HTTP/1.1 over that Unix socket:
  `POST /cmdadd` with JSON `{"Netns": "/proc/<pause pid>/ns/net", "PodName": ..., "PodNamespace": ...,
  "PodUID": ..., "IPs": ["10.244.1.5"]}`.
- 200 `{}`: go on (the pod was captured: in-pod rules installed and ztunnel acked its Add; or it
  is not an ambient pod). 400: malformed request. 500 with a text message (e.g. `failed to add pod
  to ztunnel: partial add error: no ztunnel connection`): the pod must not start; retry the call
  with back-off, as the kubelet retries a failed sandbox.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import trio

from components.cni import enrollment
from components.cni.controller import Controller
from components.cni.dataplane import AddError, Dataplane
from components.common import http

log = logging.getLogger("cni")
MARKER_NAME = "istio-cni.conf"
SIDECAR_CONTAINER = "istio-proxy"


class BadRequest(Exception):
    pass


def parse_add_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"failed to parse CNI event payload: {exc}") from exc
    if not isinstance(event, dict):
        raise BadRequest("failed to parse CNI event payload: not a JSON object")
    for key in ("Netns", "PodName", "PodNamespace"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise BadRequest(f"CNI event payload misses {key}")
    ips = event.get("IPs") or []
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise BadRequest("CNI event payload: IPs must be a list of addresses")
    if not isinstance(event.get("PodUID", ""), str):
        raise BadRequest("CNI event payload: PodUID must be a string")
    return event


def write_marker(conf_dir: str, plugin_socket: str) -> str:
    """Announce the plugin on this node (atomically); returns the file's path."""
    os.makedirs(conf_dir, exist_ok=True)
    path = os.path.join(conf_dir, MARKER_NAME)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"type": "istio-cni", "plugin_socket": plugin_socket}, f)
        f.write("\n")
    os.replace(temporary, path)
    return path


def remove_marker(conf_dir: str) -> None:
    try:
        os.unlink(os.path.join(conf_dir, MARKER_NAME))
    except FileNotFoundError:
        pass


class PluginServer:
    def __init__(self, socket_path: str, conf_dir: str, controller: Controller, dataplane: Dataplane):
        self.socket_path = socket_path
        self.conf_dir = conf_dir
        self.controller = controller
        self.dataplane = dataplane

    async def handle(self, request: http.Request) -> http.Response:
        if request.path != "/cmdadd":
            return http.Response.text("not found\n", 404)
        if request.method != "POST":
            return http.Response.text("method not allowed\n", 405)
        try:
            event = parse_add_event(request.body)
        except BadRequest as exc:
            log.error("Failed to process CNI event payload: %s", exc)
            return http.Response.text(f"{exc}\n", 400)
        try:
            await self.add(event)
        except AddError as exc:
            log.error("Failed to handle add event: %s", exc)
            return http.Response.text(f"{exc}\n", 500)
        return http.Response.json({})

    async def add(self, event: dict[str, Any]) -> None:
        name, namespace, uid = event["PodName"], event["PodNamespace"], event.get("PodUID", "")
        pod = await self.controller.wait_for_pod(namespace, name, uid)
        if pod is None:
            raise AddError(f"got event for pod {name} in namespace {namespace} but could not find in pod cache "
                           "after retries")
        ns = self.controller.namespaces.get(namespace)
        if (enrollment.is_terminal(pod) or enrollment.is_ztunnel_pod(pod, self.controller.system_namespace)
                or not enrollment.redirection_enabled(pod, ns)):
            containers = enrollment.container_names(pod)
            if SIDECAR_CONTAINER not in containers:
                log.info("excluded because it does not have %s container (have [%s])", SIDECAR_CONTAINER,
                         " ".join(containers))
            return
        ips = event.get("IPs") or enrollment.pod_ips(pod)
        if not ips:
            raise AddError(f"pod {name} does not appear to have any assigned IPs")
        await self.dataplane.add_pod_to_mesh(pod, ips, event["Netns"], via_plugin=True)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the plugin socket; the marker file exists exactly while it does."""
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        listener = await http.open_unix_listener(self.socket_path)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(http.serve, [listener], self.handle)
                write_marker(self.conf_dir, self.socket_path)
                task_status.started()
        finally:
            remove_marker(self.conf_dir)
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass
            listener.socket.close()
