"""Chained CNI plugins of a node, as the container runtime calls them for a new pod sandbox.

A node agent that installs a plugin (istio-cni) writes `etc/cni/net.d/istio-cni.conf` in the
node's filesystem (`<run>/nodes/<node>/...`): JSON `{"type": "istio-cni", "plugin_socket": PATH}`,
PATH being where it serves `POST /cmdadd` (a hostPath, so the same path under the node's root).
The kubelet calls it after wiring the pod's network and before starting containers; a failure
keeps the pod in ContainerCreating and is retried, as a failing CNI ADD does on a real node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from components.common import http

PLUGIN_CONF = Path("etc/cni/net.d/istio-cni.conf")
ADD_TIMEOUT = 30.0


class PluginError(Exception):
    """A CNI plugin refused the pod or could not be reached."""


def plugin_socket(node_root: Path) -> Path | None:
    """The plugin socket a node's istio-cni registered, or None when no plugin is configured."""
    try:
        conf = json.loads((node_root / PLUGIN_CONF).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return node_root / str(conf.get("plugin_socket", "")).lstrip("/")


async def add(node_root: Path, netns: str, pod: dict[str, Any], pod_ip: str) -> None:
    socket = plugin_socket(node_root)
    if socket is None:
        return
    meta = pod["metadata"]
    event = {"Netns": netns, "PodName": meta["name"], "PodNamespace": meta["namespace"],
             "PodUID": meta["uid"], "IPs": [pod_ip]}
    try:
        with trio.fail_after(ADD_TIMEOUT):
            response = await http.request(f"unix:{socket}", "POST", "/cmdadd",
                                          headers=[("content-type", "application/json")],
                                          body=json.dumps(event).encode())
    except (OSError, http.HTTPError, trio.TooSlowError) as exc:
        raise PluginError(f"plugin type=\"istio-cni\" failed (add): cannot reach {socket}: {exc}") from exc
    if response.status != 200:
        detail = response.body.decode(errors="replace").strip()
        raise PluginError(f"plugin type=\"istio-cni\" failed (add): {detail}")
