"""`ambient shell`: an interactive bash on a running cluster, driven through a real terminal."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import trio

from harness.cluster import Cluster
from tests.e2e.terminal import Terminal

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


async def test_shell_runs_the_posts_commands_and_shortcuts(default_cluster: Cluster) -> None:
    prompt = f"(ambient:{default_cluster.name}) $"
    terminal = Terminal(width=200, height=60)
    try:
        terminal.type(f"cd {REPO} && {sys.executable} -m harness.cli --cluster {default_cluster.name} shell")
        await terminal.wait_for_prompt(prompt, timeout=30)
        terminal.type("kubectl get pods -A")
        await terminal.wait_for("kube-system    kube-proxy-")
        await terminal.wait_for_prompt(prompt)
        assert "ambient-demo" in terminal.screen() and "Running" in terminal.screen()
        terminal.type("kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000 | grep title")
        await terminal.wait_for("<title>httpbin.org</title>")
        await terminal.wait_for_prompt(prompt)
        for line in ["kubectl apply -n ambient-demo -f - <<EOF", "apiVersion: v1", "kind: ConfigMap",
                     "metadata:", "  name: shell-test", "data:", "  greeting: hello", "EOF"]:
            terminal.type(line)
        await terminal.wait_for("configmap/shell-test created")
        await terminal.wait_for_prompt(prompt)
        terminal.type("for i in 1 2 3; do kubectl exec deploy/notsleep -n ambient-demo -- "
                      "curl -s -o /dev/null -w \"code=%{http_code} try=$i\\n\" httpbin:8000; done")
        await terminal.wait_for("code=200 try=3")
        await terminal.wait_for_prompt(prompt)
        assert "code=200 try=1" in terminal.screen() and "code=200 try=2" in terminal.screen()
        terminal.type("sleep curl -s httpbin:8000/ip; nodes")
        await terminal.wait_for('"origin": "10.244.')
        await terminal.wait_for_prompt(prompt)
        assert re.search(r"^ambient-worker2\s+Ready\s", terminal.screen(), re.M), terminal.screen()
        terminal.type("logs httpbin ambient-worker2 --tail 1")
        await terminal.wait_for('"GET /ip HTTP/1.1" 200')
        await terminal.wait_for_prompt(prompt)
        terminal.type("exit")
        with trio.fail_after(10):   # the shell's rc file goes when it exits
            while list((default_cluster.run.path / "shell").glob("rc.*")):
                await trio.sleep(0.05)
    finally:
        terminal.close()
        await default_cluster.kubectl("delete", "configmap", "shell-test", "-n", "ambient-demo")
