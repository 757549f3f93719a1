"""`scripts/bench`: the figures users choose this emulator for, printed as a table.

Bring-up is measured from the start of `ambient up` until every pod is Running and Ready (every
declared TCP port answering), memory as the summed PSS and RSS of every process of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from harness import sandbox
from harness.cluster import Cluster

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = REPO / "topologies" / "default.yaml"


def generated_topology(nodes: int, pods: int) -> str:
    """`nodes` nodes (one control plane) and `pods` pods: half httpbin servers, half sleep clients."""
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


def run_memory(run: sandbox.RunDir) -> dict[str, float]:
    """Summed PSS and RSS (MiB) of every process in the run's PID namespace, and their count."""
    pidns = run.launch().get("pidns")
    pss = rss = 0
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "ns" / "pid") != pidns:
                continue
            rollup = (proc / "smaps_rollup").read_text()
        except OSError:
            continue
        count += 1
        for line in rollup.splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                pss += int(value.split()[0])
            elif key == "Rss":
                rss += int(value.split()[0])
    return {"processes": count, "pss_mib": round(pss / 1024, 1), "rss_mib": round(rss / 1024, 1)}


async def bring_up(topology: Path, name: str) -> dict[str, Any]:
    started = time.monotonic()
    cluster = Cluster.from_file(topology, name=name)
    async with cluster:
        seconds = time.monotonic() - started
        pods = len((await cluster.api.list("v1", "Pod"))["items"])
        memory = run_memory(cluster.run)
    return {"seconds": round(seconds, 2), "pods": pods, **memory}


def mesh_topology() -> str:
    """Seed 002's cluster with Istio; the same server and client apps in a plain and a meshed namespace
    (servers on ambient-worker2, clients on ambient-worker, so every figure crosses nodes)."""
    parts = ["""kind: Cluster
metadata: {name: bench-mesh}
nodes: [ambient-control-plane, ambient-worker, ambient-worker2]
istio: {profile: ambient}"""]
    for ns, labels in (("plain", "{}"), ("mesh", "{istio.io/dataplane-mode: ambient}")):
        parts.append(f"""apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {labels}}}
---
apiVersion: v1
kind: Service
metadata: {{name: httpbin, namespace: {ns}}}
spec: {{selector: {{app: httpbin}}, ports: [{{name: http, port: 8000, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: sink, namespace: {ns}}}
spec: {{selector: {{app: sink}}, ports: [{{name: tcp, port: 9000}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: httpbin, namespace: {ns}, labels: {{app: httpbin}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: ambient-worker2}}
  containers: [{{name: httpbin, image: docker.io/mccutchen/go-httpbin, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: sink, namespace: {ns}, labels: {{app: sink}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: ambient-worker2}}
  containers: [{{name: sink, image: ambient/loadgen, ports: [{{containerPort: 9000}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: ambient-worker}}
  terminationGracePeriodSeconds: 0
  containers: [{{name: client, image: busybox, command: [sleep, infinity]}}]""")
    return "\n---\n".join(parts) + "\n"


def ztunnel_cpu_seconds(run: sandbox.RunDir) -> float:
    """CPU time (user + system) used so far by every ztunnel process of the run."""
    pidns = run.launch().get("pidns")
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "ns" / "pid") != pidns or b"components.ztunnel" not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


async def loadgen(cluster: Cluster, namespace: str, *args: str) -> dict[str, Any]:
    result = await cluster.exec("client", sys.executable, "-m", "components.apps.loadgen", *args, namespace=namespace)
    if result.exit_code != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} in {namespace} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def mesh_figures(workdir: Path, transfer_bytes: int) -> dict[str, Any]:
    """Latency, throughput and connection rate, plain next to meshed, in one run."""
    path = workdir / "bench-mesh.yaml"
    path.write_text(mesh_topology())
    figures: dict[str, Any] = {}
    async with Cluster.from_file(path) as cluster:
        for ns in ("plain", "mesh"):
            with trio.fail_after(30):  # until kube-proxy has programmed the Services and ztunnel is serving
                while (await cluster.exec("client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                          "--max-time", "2", "httpbin:8000/get", namespace=ns)).stdout != "200":
                    await trio.sleep(0.2)
        for ns in ("plain", "mesh"):
            figures[f"latency {ns}"] = await loadgen(cluster, ns, "latency", "http://httpbin:8000/get", "-n", "300")
        for ns in ("plain", "mesh"):
            before = ztunnel_cpu_seconds(cluster.run)
            figures[f"transfer {ns}"] = await loadgen(cluster, ns, "send", "sink:9000", "--bytes", str(transfer_bytes))
            cpu = ztunnel_cpu_seconds(cluster.run) - before
            figures[f"transfer {ns}"]["ztunnel_cpu_s_per_gib"] = round(cpu / (transfer_bytes / 2**30), 2)
        for ns in ("plain", "mesh"):
            figures[f"connections {ns}"] = await loadgen(cluster, ns, "connections", "sink:9000", "--seconds", "5")
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    results["bring-up default topology"] = await bring_up(DEFAULT_TOPOLOGY, "bench-default")
    generated = Path(args.workdir) / "bench-100.yaml"
    generated.write_text(generated_topology(4, 100))
    results["bring-up 4 nodes, 100 pods"] = await bring_up(generated, "bench-100")
    results.update(await mesh_figures(Path(args.workdir), args.transfer_mib * 2**20))
    return results


def print_table(results: dict[str, Any]) -> None:
    rows = [("FIGURE", "VALUE", "DETAIL")]
    for name, figures in results.items():
        if name.startswith("bring-up"):
            rows.append((name, f"{figures['seconds']:.2f} s",
                         f"{figures['pods']} pods, {figures['processes']} processes, "
                         f"{figures['pss_mib']:.0f} MiB PSS ({figures['rss_mib']:.0f} MiB RSS)"))
        elif name.startswith("latency"):
            rows.append((f"request latency, {name.split()[1]} (sleep -> httpbin, new connection each)",
                         f"p50 {figures['p50_ms']:.2f} ms", f"p99 {figures['p99_ms']:.2f} ms, {figures['requests']} requests"))
        elif name.startswith("transfer"):
            rows.append((f"{figures['bytes'] / 2**30:g} GiB across nodes, {name.split()[1]}",
                         f"{figures['gbit_per_s']:.2f} Gbit/s",
                         f"{figures['seconds']:.2f} s, ztunnel CPU {figures['ztunnel_cpu_s_per_gib']:.2f} s/GiB"))
        elif name.startswith("connections"):
            rows.append((f"new connections per second, {name.split()[1]}", f"{figures['per_second']:.0f}/s",
                         f"{figures['connections']} in 5 s, {figures['failed']} failed"))
    if "transfer plain" in results and "transfer mesh" in results:
        ratio = results["transfer mesh"]["gbit_per_s"] / results["transfer plain"]["gbit_per_s"]
        rows.append(("HBONE throughput / direct", f"{ratio:.2f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    machine = results["machine"]
    print(f"\nmachine: {machine['cpus']} CPUs, kernel {machine['kernel']}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workdir", default="/tmp", help="where generated topologies are written")
    parser.add_argument("--transfer-mib", type=int, default=1024, help="size of the bulk transfer (default 1 GiB)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("scripts/bench needs root (it brings clusters up): sudo ./scripts/bench", file=sys.stderr)
        sys.exit(1)
    results = trio.run(main_async, args)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
