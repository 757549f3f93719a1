"""`ambient demo`: seed 002's walkthrough on the default topology, narrated, with a summary.

Every step is the post's own command line, run by bash with this cluster's `kubectl` first on
PATH, so pipes and quoting behave as they do on a real cluster. The cluster is torn down at the
end and the run directory removed; the last step checks that nothing of the run is left.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import trio

from harness import sandbox
from harness.cluster import Cluster, ClusterError

NAME = "ambient-demo"


@dataclass
class Step:
    narration: str
    command: str
    expect: Callable[[int, str], str | None]   # -> None when fine, else what was wrong


def contains(*needles: str) -> Callable[[int, str], str | None]:
    def check(code: int, output: str) -> str | None:
        missing = [n for n in needles if n not in output]
        if code != 0:
            return f"exit code {code}"
        return f"expected {missing[0]!r} in the output" if missing else None
    return check


def matches(pattern: str) -> Callable[[int, str], str | None]:
    def check(code: int, output: str) -> str | None:
        if code != 0:
            return f"exit code {code}"
        return None if re.search(pattern, output, re.M) else f"expected output matching {pattern!r}"
    return check


STEPS = [
    Step("The nodes: kind's control plane and two workers, on their fabric addresses.",
         "kubectl get nodes -o wide", matches(r"^ambient-worker2\s+Ready\s")),
    Step("Cluster add-ons: kube-proxy on every node, CoreDNS behind 10.96.0.10.",
         "kubectl get pods -n kube-system -o wide", matches(r"^coredns-\S+\s+1/1\s+Running")),
    Step("httpbin and sleep run on ambient-worker2, notsleep on ambient-worker (pod anti-affinity).",
         "kubectl get pods -n ambient-demo -o wide",
         matches(r"^httpbin-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+10\.244\.\d+\.\d+\s+ambient-worker2")),
    Step("httpbin listens on 8080 in its own network namespace.",
         "kubectl exec deploy/httpbin -n ambient-demo -- ss -ntlp", matches(r"0\.0\.0\.0:8080")),
    Step("sleep -> httpbin on the same node, by service name (cluster DNS + kube-proxy).",
         "kubectl exec deploy/sleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1",
         contains("<title>httpbin.org</title>")),
    Step("notsleep -> httpbin across nodes.",
         "kubectl exec deploy/notsleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1",
         contains("<title>httpbin.org</title>")),
    Step("The same by ClusterIP.",
         "IP=$(kubectl get svc httpbin -n ambient-demo -o jsonpath='{.spec.clusterIP}'); "
         "kubectl exec deploy/notsleep -n ambient-demo -- curl -s http://$IP:8000/ | grep title -m 1",
         contains("<title>httpbin.org</title>")),
    Step("Inside a pod: its hostname is the pod name, its resolv.conf the cluster's.",
         "kubectl exec deploy/sleep -n ambient-demo -- sh -c 'hostname; cat /etc/resolv.conf'",
         matches(r"^sleep-\S+\n(.|\n)*search ambient-demo\.svc\.cluster\.local")),
]


class Display:
    """Narration for a person at a terminal, plain lines for CI."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.color = stream.isatty()

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def say(self, text: str) -> None:
        print(self._paint("1", f"\n# {text}"), file=self.stream, flush=True)

    def command(self, text: str) -> None:
        print(self._paint("36", f"$ {text}"), file=self.stream, flush=True)

    def output(self, text: str) -> None:
        if text:
            print(text.rstrip("\n"), file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        print(self._paint("2", f"  ... {text}"), file=self.stream, flush=True)

    def result(self, ok: bool, why: str | None) -> None:
        label = self._paint("32", "PASS") if ok else self._paint("31", f"FAIL: {why}")
        print(f"  -> {label}", file=self.stream, flush=True)

    def table(self, rows: list[tuple[str, str, str]]) -> None:
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        print("", file=self.stream)
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)), file=self.stream)


async def run_step(cluster: Cluster, step: Step, display: Display) -> tuple[bool, str | None, float]:
    display.say(step.narration)
    display.command(step.command)
    env = dict(os.environ, PATH=f"{cluster.run.bin}:{os.environ.get('PATH', '')}")
    started = time.monotonic()
    result = await trio.run_process(["bash", "-c", step.command], check=False, capture_stdout=True,
                                    stderr=subprocess.STDOUT, env=env)
    elapsed = time.monotonic() - started
    output = result.stdout.decode(errors="replace")
    display.output(output)
    why = step.expect(result.returncode, output)
    display.result(why is None, why)
    return why is None, why, elapsed


async def run_demo(topology: Path, display: Display | None = None) -> int:
    display = display or Display()
    rows = [("STEP", "RESULT", "TIME")]
    display.say(f"Bringing up {topology} (seed 002's cluster) as {NAME}")
    started = time.monotonic()
    try:
        cluster = Cluster.from_file(topology, name=NAME, progress=display.progress)
        async with cluster:
            up = time.monotonic() - started
            display.progress(f"ready in {up:.2f}s")
            rows.append(("bring-up", "PASS", f"{up:.2f}s"))
            for step in STEPS:
                ok, why, elapsed = await run_step(cluster, step, display)
                rows.append((step.command if len(step.command) < 70 else step.command[:67] + "...",
                             "PASS" if ok else f"FAIL: {why}", f"{elapsed:.2f}s"))
            display.say("Tearing the cluster down")
    except ClusterError as exc:
        rows.append(("bring-up", f"FAIL: {exc}", f"{time.monotonic() - started:.2f}s"))
    left = [r.cluster for r in sandbox.runs() if r.cluster == NAME]
    rows.append(("nothing left behind", "PASS" if not left else f"FAIL: {left}", ""))
    display.table(rows)
    failed = [r for r in rows[1:] if r[1] != "PASS"]
    print(f"\n{len(rows) - 1 - len(failed)} passed, {len(failed)} failed", file=display.stream)
    return 1 if failed else 0
