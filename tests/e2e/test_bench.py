"""scripts/bench end to end at small sizes: every figure measured (the waypoint included), the
table printed, and the JSON carrying values, units and the machine (needs root)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pytest_plugin import REPO, require_root

pytestmark = pytest.mark.e2e

KEYS = ["bring_up_default", "bring_up_4_nodes_6_pods", "bring_up_mesh", "latency_direct", "latency_mesh",
        "latency_waypoint", "throughput_direct", "throughput_hbone", "throughput_ratio", "ztunnel_cpu_per_gib",
        "ztunnel_memory", "connections_direct", "connections_mesh"]


def test_bench_measures_every_figure_and_writes_them_as_json(tmp_path: Path) -> None:
    require_root()
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "harness.bench", "--quick", "--pods", "6", "--transfer-mib", "16", "--requests", "20",
         "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "not measured" not in result.stdout, result.stdout
    assert "request latency, waypoint" in result.stdout and "HBONE throughput / direct" in result.stdout
    document = json.loads(out.read_text())
    figures = {f["key"]: f for f in document["figures"]}
    assert list(figures) == KEYS
    for figure in figures.values():
        assert isinstance(figure["value"], (int, float)) and figure["value"] > 0, figure
    assert figures["latency_waypoint"]["unit"] == "ms"
    assert figures["latency_waypoint"]["measurements"]["requests"] == 20
    assert figures["throughput_hbone"]["measurements"]["bytes"] == 16 * 2**20
    assert figures["bring_up_4_nodes_6_pods"]["measurements"]["pods"] > 6  # and kube-proxy, CoreDNS
    assert figures["connections_mesh"]["measurements"]["failed"] == 0
    assert document["machine"]["cpus"] >= 1 and document["options"]["pods"] == [6]
