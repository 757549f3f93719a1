"""Every bug-report repro in topologies/repro/ gives, under `ambient run`, the verdict its README
states: all its steps pass. They share one bring-up of their topology (each repro undoes what it
did), so the whole file takes one cluster's start plus the steps."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import trio

from harness.runner import parse, script_topology

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
REPROS = REPO / "topologies" / "repro"


def readme_rows() -> dict[str, str]:
    """Repro directory -> the verdict column of its README row."""
    rows = {}
    for line in (REPROS / "README.md").read_text().splitlines():
        if m := re.match(r"^\| `([^`]+)` \|(?:[^|]*\|){2}\s*(.+?)\s*\|$", line):
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_repro_has_a_readme_row_naming_its_verdict() -> None:
    directories = sorted(p.parent.name for p in REPROS.glob("*/repro.sh"))
    rows = readme_rows()
    assert len(directories) >= 6 and sorted(rows) == directories, (directories, sorted(rows))
    for name, verdict in rows.items():
        assert re.search(r"\*\*(fixed|bug's|documented|not-a-bug|designed) [^*]*behaviour reproduced\*\*", verdict), \
            (name, verdict)


async def test_every_repro_passes_under_ambient_run(cluster_factory) -> None:
    scripts = sorted(REPROS.glob("*/repro.sh"))
    topologies = {script_topology(s.read_text(), s) for s in scripts}
    assert topologies == {REPO / "topologies" / "ambient.yaml"}, topologies
    cluster = await cluster_factory(topologies.pop(), name="e2e-repro")
    failures = []
    for script in scripts:
        steps = len(parse(script.read_text()))
        result = await trio.run_process([sys.executable, "-m", "harness.cli", "run", str(script),
                                         "--cluster", cluster.name], check=False, capture_stdout=True,
                                        capture_stderr=True, cwd=REPO)
        output = result.stdout.decode() + result.stderr.decode()
        if result.returncode != 0 or f"\n{steps} passed, 0 failed" not in output:
            failures.append(f"--- {script.parent.name}: exit code {result.returncode}\n{output[-6000:]}")
    assert not failures, "\n".join(failures)
