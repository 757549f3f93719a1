"""`ambient shell [FILE]`: an interactive bash on a cluster.

The cluster's `kubectl` and `istioctl` come first on PATH, the prompt names the cluster, history is
kept in the run directory, and shortcuts are bash functions:

    pods                      kubectl get pods -A -o wide
    nodes                     kubectl get nodes -o wide
    logs COMPONENT NODE       the log of the pod COMPONENT-... on NODE (ztunnel, istio-cni, ...)
    pcap POD|NODE [FILE]      tcpdump on its eth0 into FILE (default ./<pod>.pcap) until Ctrl-C;
                              -c N packets, --seconds S, -f 'tcp port 15008', -n NAMESPACE
    graph [FILE]              the cluster as an SVG picture (default ./<cluster>.svg): nodes, pods,
                              their IPs and mesh membership, ztunnels, waypoints, services
    POD-OR-NODE COMMAND...    `ambient exec`: e.g. `sleep curl -s httpbin:8000`, `ambient-worker ip route`

A shortcut hides a command of the same name (`sleep` the pod hides sleep(1): `command sleep 1`).
Shortcuts are made for the pods present when the shell starts. Tab completes pod and node names.

With FILE the topology is brought up first and torn down when the shell exits; without, the shell
attaches to the running cluster (several shells may).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from harness import podexec
from harness.cluster import Cluster

# Names a shortcut must not hide: the shell's own words and the tools of the session.
RESERVED = {"pods", "nodes", "logs", "pcap", "graph", "kubectl", "istioctl", "ambient", "exit", "cd", "echo", "test",
            "time", "for", "do", "done", "if", "then", "fi", "while", "case", "esac", "function", "select", "until"}


def shortcut_names(pods: list[dict[str, Any]], nodes: list[str]) -> list[str]:
    """The pod name prefixes (a Deployment's or DaemonSet's name) and node names that become shortcuts."""
    names = set(nodes)
    for pod in pods:
        name = pod["metadata"]["name"]
        owners = {o.get("kind") for o in pod["metadata"].get("ownerReferences", [])}
        if owners & {"ReplicaSet", "Deployment"}:
            name = name.rsplit("-", 2)[0]
        elif "DaemonSet" in owners:
            name = name.rsplit("-", 1)[0]
        names.add(name)
    return sorted(n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", n) and n not in RESERVED)


def rc_text(cluster: str, bin_dir: Path, history: Path, shortcuts: list[str]) -> str:
    """The bash startup file of an `ambient shell`."""
    ambient = f"{shlex.quote(sys.executable)} -m harness.cli --cluster {shlex.quote(cluster)}"
    lines = [
        "[ -f ~/.bashrc ] && . ~/.bashrc",
        f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\"",
        f"export AMBIENT_CLUSTER={shlex.quote(cluster)}",
        f"HISTFILE={shlex.quote(str(history))}",
        "HISTSIZE=10000; HISTFILESIZE=10000; shopt -s histappend; PROMPT_COMMAND='history -a'",
        f"PS1='(ambient:{cluster}) $ '",
        f"ambient() {{ {ambient} \"$@\"; }}",
        "pods() { kubectl get pods -A -o wide \"$@\"; }",
        "nodes() { kubectl get nodes -o wide \"$@\"; }",
        "pcap() { ambient pcap \"$@\"; }",
        "graph() { if [ $# -gt 0 ] && [ \"${1#-}\" = \"$1\" ]; then ambient graph -o \"$@\"; "
        "else ambient graph \"$@\"; fi; }",
        "logs() {",
        "  if [ $# -lt 2 ]; then echo 'usage: logs COMPONENT NODE [kubectl logs flags]' >&2; return 2; fi",
        "  local found",
        "  found=$(kubectl get pods -A --field-selector spec.nodeName=\"$2\" | awk -v c=\"$1\" "
        "'NR > 1 && ($2 == c || index($2, c \"-\") == 1) {print $1, $2; exit}')",
        "  if [ -z \"$found\" ]; then echo \"logs: no pod $1-... on node $2\" >&2; return 1; fi",
        "  set -- \"${found#* }\" \"${found%% *}\" \"${@:3}\"",
        "  kubectl logs \"$1\" -n \"$2\" \"${@:3}\"",
        "}",
        "_ambient_names() {",
        "  local words",
        "  words=$({ kubectl get pods -A | awk 'NR > 1 {print $2}'; kubectl get nodes | awk 'NR > 1 {print $1}'; }"
        " 2>/dev/null)",
        "  COMPREPLY=($(compgen -W \"$words\" -- \"${COMP_WORDS[COMP_CWORD]}\"))",
        "}",
    ]
    for name in shortcuts:
        lines.append(f"{name}() {{ ambient exec {name} -- \"$@\"; }}")
    lines.append("complete -F _ambient_names logs pcap " + " ".join(shortcuts))
    return "\n".join(lines) + "\n"


async def write_rc(cluster: Cluster) -> Path:
    """Write this shell's rc file into the run directory (one per shell, so several can attach)."""
    pods = (await cluster.api.list("v1", "Pod"))["items"]
    names = shortcut_names(pods, podexec.node_names(cluster.run))
    directory = cluster.run.path / "shell"
    directory.mkdir(exist_ok=True)
    rc = directory / f"rc.{os.getpid()}.bash"
    rc.write_text(rc_text(cluster.name, cluster.run.bin, cluster.run.path / "shell_history", names))
    return rc


async def run_shell(topology: Path | None, name: str | None, cluster_name: str | None) -> int:
    """Bring the topology up (or attach), run the interactive shell, tear down what was brought up."""
    cluster = Cluster.from_file(topology, name=name, progress=lambda m: print(f"  ... {m}", file=sys.stderr)) \
        if topology is not None else Cluster.attach(cluster_name)
    async with cluster:
        rc = await write_rc(cluster)
        try:
            with trio.open_signal_receiver(signal.SIGINT):   # Ctrl-C belongs to the shell
                result = await trio.run_process(["bash", "--rcfile", str(rc), "-i"], check=False, stdin=None)
        finally:
            rc.unlink(missing_ok=True)
    return result.returncode
