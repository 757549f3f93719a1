"""istiod-shaped config for ztunnel's unit tests (camelCase Workload, Service, Authorization)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

from components.ztunnel import logs

Obj = dict[str, Any]


def workload(name: str, ip: str | None, *, namespace: str = "default", sa: str | None = None,
             node: str = "node1", protocol: str = "HBONE", **extra: Any) -> Obj:
    obj: Obj = {
        "uid": f"Kubernetes//Pod/{namespace}/{name}", "name": name, "namespace": namespace,
        "workloadIps": [ip] if ip else [], "serviceAccount": sa or name, "trustDomain": "cluster.local",
        "node": node, "protocol": protocol, "networkMode": "Standard", "workloadName": name.rsplit("-", 1)[0],
        "workloadType": "pod", "canonicalName": name.rsplit("-", 1)[0], "canonicalRevision": "v1",
        "clusterId": "Kubernetes", "status": "Healthy", "authorizationPolicies": [], "services": [],
    }
    obj.update(extra)
    return obj


def service(name: str, vip: str, ports: dict[int, int], endpoints: list[tuple[Obj, dict[int, int]]] = (),
            *, namespace: str = "default", **extra: Any) -> Obj:
    obj: Obj = {
        "name": name, "namespace": namespace, "hostname": f"{name}.{namespace}.svc.cluster.local",
        "vips": [f"/{vip}"], "ports": {str(k): v for k, v in ports.items()}, "subjectAltNames": [],
        "endpoints": {w["uid"]: {"workloadUid": w["uid"], "port": {str(k): v for k, v in p.items()},
                                 "status": w.get("status", "Healthy")} for w, p in endpoints},
    }
    obj.update(extra)
    return obj


def allow_principal(principal: str, *, name: str = "allow", namespace: str = "default") -> Obj:
    return {"name": name, "namespace": namespace, "scope": "Namespace", "action": "Allow",
            "rules": [[[{"principals": [{"Exact": principal}]}]]], "dryRun": False}


def config(workloads: list[Obj] = (), services: list[Obj] = (), policies: list[Obj] = (), version: str = "1") -> Obj:
    return {"version": version, "workloads": list(workloads), "services": list(services),
            "policies": list(policies)}


class LogLines(logging.Handler):
    """ztunnel's log lines as formatted, kept for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logs.PlainFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def find(self, *parts: str) -> list[str]:
        return [line for line in self.lines if all(p in line for p in parts)]


@contextmanager
def captured_log() -> Iterator[LogLines]:
    """Capture every INFO+ log line of the process for the duration of the block."""
    handler = LogLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
