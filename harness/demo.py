"""`ambient demo`: seed 002's walkthrough on the default topology, narrated, with a summary:
the cluster before the mesh, `istioctl install`, enrolling the namespace, the in-pod rules and
listeners, HBONE between ztunnels, and the L4 policy that refuses notsleep.

Every step is the post's own command line, run by bash with this cluster's `kubectl` first on
PATH, so pipes and quoting behave as they do on a real cluster. The cluster is torn down at the
end and the run directory removed; the last step checks that nothing of the run is left.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import sandbox
from harness.cluster import Cluster, ClusterError
from harness.steps import Display, run_bash

NAME = "ambient-demo"
STEP_TIMEOUT = 300.0


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


SEED_002_POLICY = """apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
 name: allow-sleep-to-httpbin
spec:
 selector:
   matchLabels:
     app: httpbin
 action: ALLOW
 rules:
 - from:
   - source:
       principals:
       - cluster.local/ns/ambient-demo/sa/sleep"""

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
    Step("Install Istio's ambient profile: istiod (with its CA), istio-cni and ztunnel on every node.",
         "istioctl install --set profile=ambient --skip-confirmation", contains("✔ Installation complete")),
    Step("istio-cni and ztunnel run as DaemonSets, one pod per node.",
         "kubectl get pod -n istio-system -o wide", contains("istio-cni-node-", "ztunnel-", "istiod-")),
    Step("Enroll the namespace: no pod restarts; istio-cni captures each pod in place.",
         "kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient && "
         "kubectl wait --for=jsonpath='{.metadata.annotations.ambient\\.istio\\.io/redirection}'=enabled "
         "pod --all -n ambient-demo --timeout=30s", contains("namespace/ambient-demo labeled", "condition met")),
    Step("The in-pod rules istio-cni installed in httpbin's network namespace (seed 002's).",
         "kubectl exec deploy/httpbin -n ambient-demo -- iptables-legacy-save | grep -E '^-A|^[*]'",
         contains("-A ISTIO_PRERT -p tcp -m tcp --dport 15008 -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15008 "
                  "--on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff",
                  "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001")),
    Step("ztunnel's listeners now sit inside the pod, next to the app.",
         "kubectl exec deploy/httpbin -n ambient-demo -- ss -ntlp",
         contains("127.0.0.1:15080", "*:15006", "*:15001", "*:15008", "0.0.0.0:8080")),
    Step("Marked replies go to ztunnel through table 100.",
         "kubectl exec deploy/httpbin -n ambient-demo -- ip rule; "
         "kubectl exec deploy/httpbin -n ambient-demo -- ip route show table 100",
         contains("from all fwmark 0x111/0xfff lookup 100", "local default dev lo scope host")),
    Step("sleep -> httpbin, now through HBONE (mTLS + HTTP/2 CONNECT) between ztunnels.",
         "kubectl exec deploy/sleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1",
         contains("<title>httpbin.org</title>")),
    Step("notsleep -> httpbin across nodes; the destination ztunnel logs both SPIFFE identities.",
         "kubectl exec deploy/notsleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1; "
         "ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel "
         "--field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}'); "
         "kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep 'direction=\"inbound\"' | grep notsleep | tail -1",
         contains("<title>httpbin.org</title>", 'src.identity="spiffe://cluster.local/ns/ambient-demo/sa/notsleep"',
                  ":15008", 'dst.identity="spiffe://cluster.local/ns/ambient-demo/sa/httpbin"')),
    Step("An L4 policy: only the sleep identity may reach httpbin.",
         "kubectl apply -n ambient-demo -f - <<END_OF_POLICY\n" + SEED_002_POLICY + "\nEND_OF_POLICY\n"
         "istioctl ztunnel-config policies",
         contains("authorizationpolicy.security.istio.io/allow-sleep-to-httpbin created",
                  "allow-sleep-to-httpbin Allow  WorkloadSelector")),
    Step("sleep is still allowed.",
         "kubectl exec deploy/sleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1",
         contains("<title>httpbin.org</title>")),
    Step("notsleep is refused: ztunnel answers the CONNECT with 401 and curl exits 56.",
         "kubectl exec deploy/notsleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1; "
         "ZTUNNEL_WORKER=$(kubectl get pod -n istio-system -l app=ztunnel "
         "--field-selector=spec.nodeName=ambient-worker -o=jsonpath='{.items[0].metadata.name}'); "
         "kubectl logs $ZTUNNEL_WORKER -n istio-system --tail 1 | grep -o 'error=.*'",
         lambda code, out: None if "command terminated with exit code 56" in out
         and 'error="http status: 401 Unauthorized"' in out else "expected curl's exit code 56 and the 401 in the log"),
]


async def run_step(cluster: Cluster, step: Step, display: Display) -> tuple[bool, str | None, float]:
    display.say(step.narration)
    display.command(step.command)
    code, output, elapsed = await run_bash(cluster.run.bin, step.command, STEP_TIMEOUT)
    display.output(output)
    why = step.expect(code, output)
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
                first_line = step.command.splitlines()[0]
                rows.append((first_line if len(first_line) < 70 else first_line[:67] + "...",
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
