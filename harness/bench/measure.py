"""The measurements: clusters brought up and torn down, and traffic between pods of a meshed cluster,
each comparison measured side by side in the same cluster."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from harness import readiness
from harness.bench import runstats, topologies
from harness.bench.figures import Figure
from harness.bench.topologies import DIRECT, L4, WAYPOINT
from harness.cluster import Cluster, ClusterError

PATH_READY_TIMEOUT = 60.0  # kube-proxy programming the Services, ztunnel (and istiod's push) serving the pods
WAYPOINT_READY_TIMEOUT = 90.0
WAYPOINT_SELECTOR = "gateway.networking.k8s.io/gateway-name=waypoint"
IMAGE_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
"""Waiting reasons that do not clear during a run: the images a run can start are fixed."""


def note(message: str) -> None:
    """Progress on stderr, so the table on stdout stays clean."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Sizes:
    pods: list[int]          # pod counts of the 4-node bring-ups
    transfer_bytes: int
    requests: int            # per latency path
    connection_seconds: float


async def bring_up(key: str, label: str, topology: Path, name: str) -> Figure:
    """From the start of `ambient up` until every pod is Running and Ready; memory and CPU then."""
    note(label)
    started = time.monotonic()
    try:
        async with Cluster.from_file(topology, name=name) as cluster:
            seconds = time.monotonic() - started
            pods = len((await cluster.api.list("v1", "Pod"))["items"])
            processes = runstats.run_processes(cluster.run)
            memory = runstats.memory(processes)
            cpu = runstats.cpu_seconds(processes)
            stopping = time.monotonic()
    except ClusterError as exc:
        first_line = str(exc).splitlines()[0]
        return Figure.missing(key, label, "s", f"the bring-up failed after {time.monotonic() - started:.0f} s: {first_line}")
    teardown = time.monotonic() - stopping
    data = {"bring_up_s": round(seconds, 2), "pods": pods, **memory, "cpu_s": round(cpu, 1),
            "teardown_s": round(teardown, 2)}
    return Figure(key, label, data["bring_up_s"], "s", f"{seconds:.2f} s",
                  f"{pods} pods, {memory['processes']} processes, {memory['pss_mib']:.0f} MiB PSS "
                  f"({memory['rss_mib']:.0f} MiB RSS), CPU {cpu:.1f} s; teardown {teardown:.1f} s", data)


async def bring_ups(workdir: Path, sizes: Sizes) -> list[Figure]:
    figures = [await bring_up("bring_up_default", "bring-up, default topology (seed 002's cluster)",
                              topologies.DEFAULT_TOPOLOGY, "bench-default")]
    for pods in sizes.pods:
        path = workdir / f"bench-{pods}.yaml"
        path.write_text(topologies.pods_over_nodes(4, pods))
        figures.append(await bring_up(f"bring_up_4_nodes_{pods}_pods",
                                      f"bring-up, 4 nodes, {pods} pods ({pods // 2} httpbin, {pods - pods // 2} clients)",
                                      path, f"bench-{pods}"))
    return figures


async def _loadgen(cluster: Cluster, namespace: str, *args: str) -> dict[str, Any]:
    result = await cluster.exec("client", sys.executable, "-m", "components.apps.loadgen", *args, namespace=namespace)
    if result.exit_code != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} in namespace {namespace} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def _wait_for_path(cluster: Cluster, namespace: str, *, through_waypoint: bool = False) -> None:
    """Until client -> httpbin answers 200 (kube-proxy has programmed the Service, ztunnel serves
    the pods), and, through a waypoint, until the answer comes from it: a Ready waypoint reaches
    the client's ztunnel only with istiod's next push."""
    async def answered() -> bool:
        headers = (await cluster.exec("client", "curl", "-s", "-o", "/dev/null", "-D", "-", "--max-time", "2",
                                      "httpbin:8000/get", namespace=namespace)).stdout.lower()
        return headers.startswith("http/1.1 200") and (not through_waypoint or "server: istio-envoy" in headers)

    try:
        with trio.fail_after(PATH_READY_TIMEOUT):
            while not await answered():
                await trio.sleep(0.2)
    except trio.TooSlowError:
        how = "through the waypoint " if through_waypoint else ""
        raise RuntimeError(f"client -> httpbin:8000 in namespace {namespace} did not answer 200 {how}"
                           f"within {PATH_READY_TIMEOUT:.0f} s") from None


async def _enroll_in_waypoint(cluster: Cluster) -> tuple[list[dict[str, Any]], str | None]:
    """`istioctl waypoint apply --enroll-namespace` on the waypoint namespace, then wait for the
    waypoint pods to be Ready. Returns them, and why they are not (None once they are)."""
    applied = await cluster.istioctl("waypoint", "apply", "-n", WAYPOINT, "--enroll-namespace")
    if not applied.ok:
        return [], f"istioctl waypoint apply failed: {applied.stderr.strip() or applied.stdout.strip()}"
    deadline = time.monotonic() + WAYPOINT_READY_TIMEOUT
    while True:
        pods = (await cluster.api.list("v1", "Pod", WAYPOINT, label_selector=WAYPOINT_SELECTOR))["items"]
        problems = [problem for problem in map(readiness.pod_problem, pods) if problem]
        if pods and not problems:
            return pods, None
        final = [p for p in problems if any(reason in p for reason in IMAGE_PULL_FAILURES)]
        if final:
            return pods, final[0]
        if time.monotonic() > deadline:
            return pods, (problems[0] if problems else "no waypoint pod was created") + \
                f" (after {WAYPOINT_READY_TIMEOUT:.0f} s)"
        await trio.sleep(0.5)


def _latency(key: str, path: str, figures: dict[str, Any]) -> Figure:
    return Figure(key, f"request latency, {path}", figures["p50_ms"], "ms", f"p50 {figures['p50_ms']:.2f} ms",
                  f"p99 {figures['p99_ms']:.2f} ms, mean {figures['mean_ms']:.2f} ms, "
                  f"{figures['requests']} requests", figures)


def _transfer(key: str, path: str, figures: dict[str, Any]) -> Figure:
    data = {"bytes": figures["bytes"], "seconds_s": figures["seconds"], "gbit_per_s": figures["gbit_per_s"]}
    return Figure(key, f"{figures['bytes'] / 2**30:g} GiB across nodes, {path}", figures["gbit_per_s"], "Gbit/s",
                  f"{figures['gbit_per_s']:.2f} Gbit/s", f"{figures['seconds']:.2f} s", data)


def _connections(key: str, path: str, figures: dict[str, Any], concurrency: int) -> Figure:
    data = {"connections": figures["connections"], "failed": figures["failed"], "per_s": figures["per_second"],
            "concurrency": concurrency}
    return Figure(key, f"new connections per second, {path}", figures["per_second"], "/s",
                  f"{figures['per_second']:.0f}/s",
                  f"{figures['connections']} opened and closed by {concurrency} concurrent clients, "
                  f"{figures['failed']} failed", data)


async def _ztunnel_processes(cluster: Cluster) -> list[Path]:
    """The processes of the ztunnels of the client's and the server's nodes."""
    pods = (await cluster.api.list("v1", "Pod", "istio-system", label_selector="app=ztunnel"))["items"]
    chosen = [p for p in pods if p["spec"].get("nodeName") in (topologies.CLIENT_NODE, topologies.SERVER_NODE)]
    return [proc for pod in chosen for proc in runstats.pod_processes(cluster.run, pod)]


def _ztunnel_memory(ztunnels: list[Path]) -> Figure:
    used = runstats.memory(ztunnels)
    count = max(used["processes"], 1)
    pss, rss = round(used["pss_mib"] / count, 1), round(used["rss_mib"] / count, 1)
    return Figure("ztunnel_memory", "ztunnel memory, each", pss, "MiB", f"{pss:.0f} MiB PSS",
                  f"{rss:.0f} MiB RSS; mean of the client's and the server's ztunnel after the transfers",
                  {"pss_mib": pss, "rss_mib": rss, "ztunnels": used["processes"]})


async def mesh_figures(workdir: Path, sizes: Sizes) -> list[Figure]:
    """Latency (direct, L4 mesh, waypoint), throughput, ztunnel CPU and connection rate in one cluster."""
    path = workdir / "bench-mesh.yaml"
    path.write_text(topologies.mesh())
    figures: list[Figure] = []
    concurrency = 8
    note("mesh cluster: latency, throughput, connection rate")
    started = time.monotonic()
    async with Cluster.from_file(path) as cluster:
        seconds = time.monotonic() - started
        pods = len((await cluster.api.list("v1", "Pod"))["items"])
        figures.append(Figure("bring_up_mesh", "bring-up, 3 nodes with Istio ambient and the benchmark's apps",
                              round(seconds, 2), "s", f"{seconds:.2f} s",
                              f"{pods} pods: istiod, istio-cni and ztunnel per node, kube-proxy, CoreDNS, apps",
                              {"bring_up_s": round(seconds, 2), "pods": pods}))
        waypoints, waypoint_problem = await _enroll_in_waypoint(cluster)
        for ns in (DIRECT, L4):
            await _wait_for_path(cluster, ns)
        if not waypoint_problem:
            await _wait_for_path(cluster, WAYPOINT, through_waypoint=True)
        requests = str(sizes.requests)
        url = "http://httpbin:8000/get"
        figures.append(_latency("latency_direct", "direct (client -> httpbin, new connection each)",
                                await _loadgen(cluster, DIRECT, "latency", url, "-n", requests)))
        figures.append(_latency("latency_mesh", "L4 mesh (both ztunnels, HBONE)",
                                await _loadgen(cluster, L4, "latency", url, "-n", requests)))
        waypoint_label = "waypoint (ztunnel -> waypoint -> ztunnel)"
        if waypoint_problem:
            figures.append(Figure.missing("latency_waypoint", f"request latency, {waypoint_label}", "ms",
                                          waypoint_problem))
        else:
            figure = _latency("latency_waypoint", waypoint_label,
                              await _loadgen(cluster, WAYPOINT, "latency", url, "-n", requests))
            nodes = sorted({p["spec"].get("nodeName", "?") for p in waypoints})
            figure.detail += f"; waypoint on {', '.join(nodes)} (answers carry server: istio-envoy)"
            figures.append(figure)

        size = str(sizes.transfer_bytes)
        direct = await _loadgen(cluster, DIRECT, "send", "sink:9000", "--bytes", size)
        ztunnels = await _ztunnel_processes(cluster)
        before = runstats.cpu_seconds(ztunnels)
        hbone = await _loadgen(cluster, L4, "send", "sink:9000", "--bytes", size)
        cpu_per_gib = (runstats.cpu_seconds(ztunnels) - before) / (sizes.transfer_bytes / 2**30)
        ratio = hbone["gbit_per_s"] / direct["gbit_per_s"]
        figures += [
            _transfer("throughput_direct", "direct", direct),
            _transfer("throughput_hbone", "HBONE (mTLS + HTTP/2 CONNECT)", hbone),
            Figure("throughput_ratio", "HBONE throughput / direct", round(ratio, 3), "", f"{ratio:.2f}"),
            Figure("ztunnel_cpu_per_gib", "ztunnel CPU time per GiB through HBONE", round(cpu_per_gib, 2), "s/GiB",
                   f"{cpu_per_gib:.2f} s/GiB", "user + system, the client's and the server's ztunnel together",
                   {"cpu_s_per_gib": round(cpu_per_gib, 2), "bytes": sizes.transfer_bytes}),
            _ztunnel_memory(ztunnels),
        ]
        seconds = str(sizes.connection_seconds)
        for key, ns, label in (("connections_direct", DIRECT, "direct"), ("connections_mesh", L4, "L4 mesh")):
            figures.append(_connections(key, label, await _loadgen(
                cluster, ns, "connections", "sink:9000", "--seconds", seconds, "--concurrency", str(concurrency)),
                concurrency))
    return figures
