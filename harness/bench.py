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


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    results["bring-up default topology"] = await bring_up(DEFAULT_TOPOLOGY, "bench-default")
    generated = Path(args.workdir) / "bench-100.yaml"
    generated.write_text(generated_topology(4, 100))
    results["bring-up 4 nodes, 100 pods"] = await bring_up(generated, "bench-100")
    return results


def print_table(results: dict[str, Any]) -> None:
    rows = [("FIGURE", "VALUE", "DETAIL")]
    for name, figures in results.items():
        if name.startswith("bring-up"):
            rows.append((name, f"{figures['seconds']:.2f} s",
                         f"{figures['pods']} pods, {figures['processes']} processes, "
                         f"{figures['pss_mib']:.0f} MiB PSS ({figures['rss_mib']:.0f} MiB RSS)"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    machine = results["machine"]
    print(f"\nmachine: {machine['cpus']} CPUs, kernel {machine['kernel']}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workdir", default="/tmp", help="where generated topologies are written")
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
