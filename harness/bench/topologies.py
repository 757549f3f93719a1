"""The clusters the benchmark brings up, written as topology files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_TOPOLOGY = REPO / "topologies" / "default.yaml"

CLIENT_NODE = "ambient-worker"
SERVER_NODE = "ambient-worker2"
DIRECT, L4, WAYPOINT = "direct", "mesh", "l7"
"""Namespaces of the mesh cluster: not enrolled, enrolled in ambient, enrolled and behind a waypoint."""


def pods_over_nodes(nodes: int, pods: int) -> str:
    """`nodes` nodes (one control plane) and `pods` pods: half httpbin servers, half sleeping clients."""
    servers = pods // 2
    clients = pods - servers
    names = ["control-plane"] + [f"worker{i}" for i in range(1, nodes)]
    return f"""kind: Cluster
metadata: {{name: bench-{pods}}}
nodes: [{", ".join(names)}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: load}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: load}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8000, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: load}}
spec:
  replicas: {servers}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: web, image: docker.io/mccutchen/go-httpbin:v2.15.0, ports: [{{containerPort: 8080}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: load}}
spec:
  replicas: {clients}
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {{name: client, image: curlimages/curl, command: [/bin/sleep, infinity]}}
"""


def _namespace(name: str, labels: str, sink: bool) -> str:
    docs = [f"""apiVersion: v1
kind: Namespace
metadata: {{name: {name}, labels: {labels}}}
---
apiVersion: v1
kind: Service
metadata: {{name: httpbin, namespace: {name}}}
spec: {{selector: {{app: httpbin}}, ports: [{{name: http, port: 8000, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: httpbin, namespace: {name}, labels: {{app: httpbin}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {SERVER_NODE}}}
  containers: [{{name: httpbin, image: docker.io/mccutchen/go-httpbin, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {name}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {CLIENT_NODE}}}
  terminationGracePeriodSeconds: 0
  containers: [{{name: client, image: busybox, command: [sleep, infinity]}}]"""]
    if sink:
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: sink, namespace: {name}}}
spec: {{selector: {{app: sink}}, ports: [{{name: tcp, port: 9000}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: sink, namespace: {name}, labels: {{app: sink}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {SERVER_NODE}}}
  containers: [{{name: sink, image: ambient/loadgen, ports: [{{containerPort: 9000}}]}}]""")
    return "\n---\n".join(docs)


def mesh() -> str:
    """Seed 002's cluster with Istio; the same apps in a plain, an ambient and a waypoint namespace
    (servers on ambient-worker2, clients on ambient-worker, so every figure crosses nodes). The
    waypoint itself is applied by the benchmark, as a user would, once the cluster is up."""
    ambient = "{istio.io/dataplane-mode: ambient}"
    return "\n---\n".join([
        f"""kind: Cluster
metadata: {{name: bench-mesh}}
nodes: [ambient-control-plane, {CLIENT_NODE}, {SERVER_NODE}]
istio: {{profile: ambient}}""",
        _namespace(DIRECT, "{}", sink=True),
        _namespace(L4, ambient, sink=True),
        _namespace(WAYPOINT, ambient, sink=False),
    ]) + "\n"
