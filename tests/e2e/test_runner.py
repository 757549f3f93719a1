"""`ambient run`: a script's steps run against a cluster and checked by their expectations."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import trio

from harness import sandbox
from harness.cluster import Cluster

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]

SCRIPT = """\
# The pods of the demo namespace.
kubectl get pods -n ambient-demo -o wide
# expect: matches ^sleep-\\S+\\s+1/1\\s+Running
# expect: not contains CrashLoopBackOff

kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000 | grep title
# expect: contains <title>httpbin.org</title>

kubectl apply -n ambient-demo -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: runner-test}

data: {a: b}
EOF
# expect: contains configmap/runner-test created

for i in 1 2; do
  kubectl exec deploy/notsleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\\n' httpbin:8000
done
# expect: matches ^200\\n200$

kubectl exec deploy/sleep -n ambient-demo -- sh -c 'echo the exit code; exit 3'
# expect: exit 3
# expect-log httpbin ambient-worker2: "GET / HTTP/1.1" 200

kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000/headers
# expect: contains this text is not there
"""


async def test_a_script_passes_and_fails_on_its_expectations(default_cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text(SCRIPT)
    try:
        result = await trio.run_process([sys.executable, "-m", "harness.cli", "run", str(script),
                                         "--cluster", default_cluster.name], check=False, capture_stdout=True,
                                        capture_stderr=True, cwd=REPO)
        output = result.stdout.decode()
        assert result.returncode == 1, output + result.stderr.decode()
        assert "5 passed, 1 failed" in output, output
        assert "$ kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000 | grep title" in output
        assert "<title>httpbin.org</title>" in output
        assert "configmap/runner-test created" in output
        failure = output[output.index("FAIL: expected 'this text is not there' in the output"):]
        assert "the output ended with:" in failure and '"Host": "httpbin:8000"' in failure, failure
        table = output[output.rindex("STEP"):]
        assert "FAIL: expected 'this text is not there' in the output" in table, table
    finally:
        await default_cluster.kubectl("delete", "configmap", "runner-test", "-n", "ambient-demo")


async def test_seed_002_walkthrough_passes_on_its_own_cluster() -> None:
    name = f"e2e-run-seed002-{os.getpid()}"
    result = await trio.run_process([sys.executable, "-m", "harness.cli", "run", "topologies/walkthroughs/seed002.sh",
                                     "--topology", "topologies/default.yaml", "--name", name],
                                    check=False, capture_stdout=True, capture_stderr=True, cwd=REPO)
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "18 passed, 0 failed" in output, output
    assert "command terminated with exit code 56" in output
    assert "-A ISTIO_PRERT -p tcp -m tcp --dport 15008" in output
    assert name not in [run.cluster for run in sandbox.runs()]


async def test_seed_001_walkthrough_passes_on_the_bookinfo_cluster() -> None:
    """Seed 001 end to end: ingress gateway, L4 then L7 policy at the istio-mesh waypoint (403s,
    metrics), reviews 90/10 counted against a binomial bound; the script names its topology."""
    name = f"e2e-run-seed001-{os.getpid()}"
    result = await trio.run_process([sys.executable, "-m", "harness.cli", "run", "topologies/walkthroughs/seed001.sh",
                                     "--name", name],
                                    check=False, capture_stdout=True, capture_stderr=True, cwd=REPO)
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert re.search(r"\b34 passed, 0 failed", output), output
    assert "RBAC: access denied" in output
    assert 'response_code="403"' in output and 'source_workload="notsleep"' in output
    assert name not in [run.cluster for run in sandbox.runs()]
