"""scripts/bench's parts that need no cluster: its topologies, figures, table, JSON and /proc readings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from harness import topology
from harness.bench import __main__ as cli, runstats, topologies
from harness.bench.figures import Figure, document, machine, table


def test_generated_topologies_are_valid_and_sized_as_asked():
    spread = topology.parse(topologies.pods_over_nodes(4, 300))
    assert len(spread.nodes) == 4
    replicas = {m.obj["metadata"]["name"]: m.obj["spec"]["replicas"] for m in spread.manifests
                if m.obj["kind"] == "Deployment"}
    assert replicas == {"web": 150, "client": 150}
    mesh = topology.parse(topologies.mesh())
    namespaces = {m.obj["metadata"]["name"]: m.obj["metadata"]["labels"] for m in mesh.manifests
                  if m.obj["kind"] == "Namespace"}
    assert namespaces == {topologies.DIRECT: {}, topologies.L4: {"istio.io/dataplane-mode": "ambient"},
                          topologies.WAYPOINT: {"istio.io/dataplane-mode": "ambient"}}
    assert mesh.istio == {"profile": "ambient"}


def test_a_figure_not_measured_says_why_in_the_table_and_the_json():
    host = machine()
    figures = [Figure("latency_mesh", "request latency, L4 mesh", 5.3, "ms", "p50 5.30 ms", "p99 8.00 ms",
                      {"p50_ms": 5.3, "p99_ms": 8.0}),
               Figure.missing("latency_waypoint", "request latency, waypoint", "ms", "ErrImagePull: proxyv2")]
    printed = table(figures, host)
    assert "p50 5.30 ms" in printed
    assert "not measured: ErrImagePull: proxyv2" in printed
    doc = document(figures, host, {"quick": True})
    assert doc["figures"][0] == {"key": "latency_mesh", "label": "request latency, L4 mesh", "value": 5.3,
                                 "unit": "ms", "measurements": {"p50_ms": 5.3, "p99_ms": 8.0}}
    assert doc["figures"][1]["value"] is None and doc["figures"][1]["not_measured"] == "ErrImagePull: proxyv2"
    assert doc["machine"]["cpus"] == os.cpu_count() and doc["machine"]["memory_gib"] > 0


def test_memory_and_cpu_of_processes_come_from_proc():
    me = [Path(f"/proc/{os.getpid()}")]
    assert runstats.cpu_seconds(me) > 0
    used = runstats.memory(me + [Path("/proc/0")])  # a process that is gone is skipped
    assert used["processes"] == 1 and 0 < used["pss_mib"] <= used["rss_mib"]


def test_pod_counts_are_checked():
    assert cli.pod_counts("100,300") == [100, 300]
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated"):
        cli.pod_counts("a lot")
    with pytest.raises(argparse.ArgumentTypeError, match="between 2 and 1000"):
        cli.pod_counts("5000")


def test_quick_sizes_are_smaller_and_options_override_them():
    quick = cli.sizes(cli.parser().parse_args(["--quick", "--pods", "10", "--requests", "50"]))
    assert quick.pods == [10] and quick.requests == 50 and quick.transfer_bytes < cli.FULL.transfer_bytes
    assert cli.sizes(cli.parser().parse_args([])) == cli.FULL
