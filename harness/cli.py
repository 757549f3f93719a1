"""The `ambient` command.

    ambient up [-d] [--name NAME] FILE     bring a topology up (foreground until Ctrl-C, or detached)
    ambient down [--cluster NAME]          tear a running cluster down
    ambient list                           the clusters of this host and their state
    ambient clean [--all]                  remove what crashed runs left (--all: stop live ones too)
    ambient kubectl ARGS...                kubectl against the running cluster
    ambient istioctl ARGS...               istioctl against the running cluster
    ambient exec [-n NS] POD|NODE -- CMD   run a command in a pod or on a node
    ambient demo                           the seed 002 walkthrough on the default topology
    ambient run SCRIPT [--topology FILE]   a script of commands with `# expect:` comments, checked
    ambient shell [FILE]                   an interactive bash on the cluster (FILE: brought up for it)
    ambient pcap POD|NODE [FILE]           tcpdump on the pod's (node's) interface into a pcap file
    ambient graph [-o FILE]                the topology as an SVG picture

With several clusters running, `--cluster NAME` (before the command) or $AMBIENT_CLUSTER picks one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from components.common.apiclient import ApiClient, ApiError
from harness import graph, pcap, podexec, ptyrelay, runner, sandbox, shell, topology
from harness.cluster import ClusterError, prepare_run, start_run, stop_run
from harness.runner import ScriptError, run_script

DEFAULT_TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "default.yaml"


def _progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


async def cmd_up(args: argparse.Namespace) -> int:
    run, topo = prepare_run(args.file, args.name)
    print(f"Bringing up cluster {run.cluster} ({len(topo.nodes)} nodes, {len(topo.manifests)} manifests)",
          file=sys.stderr)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        process = await start_run(run, detach=args.detach, progress=_progress)
        seconds = run.state().get("ready_seconds", 0)
        print(f"Cluster {run.cluster} is ready ({seconds:.2f}s). Run directory: {run.path}", file=sys.stderr)
        if args.detach:
            print(f"Stop it with: ambient down --cluster {run.cluster}", file=sys.stderr)
            return 0
        print("Press Ctrl-C to tear it down.", file=sys.stderr)
        async for _ in signals:
            break
    print(f"Tearing down cluster {run.cluster}", file=sys.stderr)
    await stop_run(run, process)
    return 0


async def cmd_down(args: argparse.Namespace) -> int:
    run = sandbox.resolve(args.cluster)
    await stop_run(run)
    print(f"cluster {run.cluster} stopped and removed", file=sys.stderr)
    return 0


async def cmd_list(_args: argparse.Namespace) -> int:
    rows = [("NAME", "STATE", "NODES", "RUN DIRECTORY")]
    for run in sandbox.runs():
        state = run.state()
        phase = state.get("phase", "unknown") if run.alive() else "dead (ambient clean removes it)"
        rows.append((run.cluster, phase, str(len(state.get("nodes", []))), str(run.path)))
    if len(rows) == 1:
        print("No clusters.", file=sys.stderr)
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths)) + "   " + row[3])
    return 0


async def cmd_clean(args: argparse.Namespace) -> int:
    for line in sandbox.clean(include_live=args.all):
        print(line, file=sys.stderr)
    return 0


def _split_cluster_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take `--cluster NAME` out of kubectl arguments (it names our cluster, not a kubeconfig one)."""
    rest, cluster, i = [], None, 0
    while i < len(argv):
        if argv[i] == "--":
            rest.extend(argv[i:])
            break
        if argv[i] == "--cluster" and i + 1 < len(argv):
            cluster, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--cluster="):
            cluster = argv[i].partition("=")[2]
        else:
            rest.append(argv[i])
        i += 1
    return cluster, rest


async def _exec_passthrough(argv: list[str], env: dict[str, str], stdin: bool) -> int:
    """Run a command on the user's terminal; Ctrl-C goes to the command, not to us."""
    with trio.open_signal_receiver(signal.SIGINT):
        result = await trio.run_process(argv, check=False, stdin=None if stdin else b"", env=env)
    return result.returncode


async def run_kubectl(cluster: str | None, argv: list[str]) -> int:
    from harness.kubectl import KubectlContext, run as kubectl

    flag_cluster, argv = _split_cluster_flag(argv)
    run = sandbox.resolve(flag_cluster or cluster)

    async def exec_in_pod(pod: dict[str, Any], container: str, cmd: list[str], stdin: bool, tty: bool) -> int:
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        env = podexec.pod_env(pod, spec, os.environ.get("TERM") if tty else None)
        if tty:
            return await ptyrelay.run_on_pty(podexec.pod_exec_argv(run, pod, spec, ptyrelay.session_argv(cmd)),
                                             env, stdin=stdin)
        return await _exec_passthrough(podexec.pod_exec_argv(run, pod, spec, cmd), env, stdin)

    ctx = KubectlContext(api=ApiClient(run.apiserver_address), stdin=sys.stdin.buffer, stdout=sys.stdout,
                         stderr=sys.stderr, exec_in_pod=exec_in_pod, container_log_path=run.container_log,
                         cwd=Path.cwd())
    return await kubectl(argv, ctx)


async def run_istioctl(cluster: str | None, argv: list[str]) -> int:
    from harness.istioctl import IstioctlContext, run as istioctl

    flag_cluster, argv = _split_cluster_flag(argv)
    run = sandbox.resolve(flag_cluster or cluster)
    ctx = IstioctlContext(api=ApiClient(run.apiserver_address), stdin=sys.stdin, stdout=sys.stdout,
                          stderr=sys.stderr, cwd=Path.cwd())
    return await istioctl(argv, ctx)


async def cmd_exec(args: argparse.Namespace) -> int:
    run = sandbox.resolve(args.cluster)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ClusterError("nothing to run: ambient exec POD|NODE -- COMMAND...")
    if args.target in podexec.node_names(run):
        return await _exec_passthrough(podexec.node_exec_argv(run, args.target, command),
                                       dict(os.environ), stdin=True)
    pod = await _find_pod(ApiClient(run.apiserver_address), args.target, args.namespace)
    spec = pod["spec"]["containers"][0]
    return await _exec_passthrough(podexec.pod_exec_argv(run, pod, spec, command),
                                   podexec.pod_env(pod, spec, os.environ.get("TERM")), stdin=True)


async def _find_pod(api: ApiClient, target: str, namespace: str | None) -> dict[str, Any]:
    """A pod by name in a namespace, or by unique name (or name prefix) in any namespace."""
    if "/" in target and namespace is None:
        namespace, target = target.split("/", 1)
    try:
        pods = (await api.list("v1", "Pod", namespace))["items"]
    except ApiError as exc:
        raise ClusterError(str(exc)) from exc
    exact = [p for p in pods if p["metadata"]["name"] == target]
    matches = exact or [p for p in pods if p["metadata"]["name"].startswith(target + "-")]
    if len(matches) != 1:
        found = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in matches) or "none"
        raise ClusterError(f'no single pod or node named "{target}" (matching pods: {found})')
    return matches[0]


async def cmd_pcap(args: argparse.Namespace) -> int:
    run = sandbox.resolve(args.cluster)
    if args.target in podexec.node_names(run):
        enter, target = podexec.node_exec_argv(run, args.target, []), args.target
    else:
        pod = await _find_pod(ApiClient(run.apiserver_address), args.target, args.namespace)
        enter = podexec.pod_exec_argv(run, pod, pod["spec"]["containers"][0], [])
        target = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    path = Path(args.file or f"{target.rsplit('/', 1)[-1]}.pcap")
    return await pcap.capture(enter, target, args.interface, path, count=args.count, seconds=args.seconds,
                              bpf=args.filter.split())


async def cmd_graph(args: argparse.Namespace) -> int:
    run = sandbox.resolve(args.cluster)
    snapshot = await graph.collect(ApiClient(run.apiserver_address), run.cluster)
    path = Path(args.output or f"{run.cluster}.svg")
    try:
        path.write_text(graph.render_svg(snapshot))
    except OSError as exc:
        raise ClusterError(f"cannot write {path}: {exc.strerror}") from exc
    print(f"graph: wrote {path} ({len(snapshot.nodes)} nodes, {len(snapshot.pods)} pods, "
          f"{len(snapshot.services)} services; open it in a browser)", file=sys.stderr)
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return await run_demo(Path(args.topology))


async def cmd_run(args: argparse.Namespace) -> int:
    return await run_script(Path(args.script), topology=Path(args.topology) if args.topology else None,
                            name=args.name, cluster_name=args.cluster, timeout=args.timeout)


async def cmd_shell(args: argparse.Namespace) -> int:
    return await shell.run_shell(Path(args.file) if args.file else None, args.name, args.cluster)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ambient", description="An Istio ambient mesh emulated on network namespaces.")
    parser.add_argument("--cluster", help="the cluster to talk to when several are running")
    # `--cluster` is also accepted after the command (`ambient down --cluster demo`).
    cluster_flag = argparse.ArgumentParser(add_help=False)
    cluster_flag.add_argument("--cluster", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a topology up")
    up.add_argument("-d", "--detach", action="store_true", help="return once ready, leave the cluster running")
    up.add_argument("--name", help="cluster name (default: the topology's metadata.name)")
    up.add_argument("file", help="topology file")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="tear the running cluster down", parents=[cluster_flag])
    down.set_defaults(func=cmd_down)
    sub.add_parser("list", help="clusters on this host").set_defaults(func=cmd_list)
    clean = sub.add_parser("clean", help="remove what crashed runs left")
    clean.add_argument("--all", action="store_true", help="also stop and remove running clusters")
    clean.set_defaults(func=cmd_clean)
    kubectl = sub.add_parser("kubectl", help="kubectl against the running cluster", add_help=False)
    kubectl.add_argument("args", nargs=argparse.REMAINDER)
    istioctl = sub.add_parser("istioctl", help="istioctl against the running cluster", add_help=False)
    istioctl.add_argument("args", nargs=argparse.REMAINDER)
    execp = sub.add_parser("exec", help="run a command in a pod or on a node", parents=[cluster_flag])
    execp.add_argument("-n", "--namespace")
    execp.add_argument("target", help="pod name (or ns/name), or node name")
    execp.add_argument("command", nargs=argparse.REMAINDER)
    execp.set_defaults(func=cmd_exec)
    demo = sub.add_parser("demo", help="the seed 002 walkthrough on the default topology")
    demo.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    demo.set_defaults(func=cmd_demo)
    runp = sub.add_parser("run", help="run a script of commands unattended and check its expectations",
                          parents=[cluster_flag], description=runner.__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    runp.add_argument("script", help="bash script: steps separated by blank lines, `# expect:` comments")
    runp.add_argument("--topology", help="bring this topology up first and tear it down after "
                                         "(default: use the running cluster)")
    runp.add_argument("--name", help="cluster name for --topology (default: the topology's metadata.name)")
    runp.add_argument("--timeout", type=float, default=300.0, help="seconds a step may take (default 300)")
    runp.set_defaults(func=cmd_run)
    shellp = sub.add_parser("shell", help="an interactive bash with the cluster's kubectl, istioctl and shortcuts",
                            parents=[cluster_flag], description=shell.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    shellp.add_argument("file", nargs="?", help="topology to bring up for the shell (default: the running cluster)")
    shellp.add_argument("--name", help="cluster name for FILE (default: the topology's metadata.name)")
    shellp.set_defaults(func=cmd_shell)
    pcapp = sub.add_parser("pcap", help="capture a pod's (or node's) packets into a pcap file for Wireshark",
                           parents=[cluster_flag], description=pcap.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    pcapp.add_argument("-n", "--namespace")
    pcapp.add_argument("-i", "--interface", default="eth0", help="interface in the pod or node (default eth0)")
    pcapp.add_argument("-c", "--count", type=int, help="stop after this many packets")
    pcapp.add_argument("--seconds", type=float, help="stop after this many seconds")
    pcapp.add_argument("target", help="pod name (or ns/name, or a Deployment's name prefix), or node name")
    pcapp.add_argument("file", nargs="?", help="pcap file to write (default: ./<pod name>.pcap)")
    pcapp.add_argument("-f", "--filter", default="", help="a tcpdump filter, e.g. -f 'tcp port 15008'")
    pcapp.set_defaults(func=cmd_pcap)
    graphp = sub.add_parser("graph", help="the topology as an SVG picture: nodes, pods, mesh, waypoints, services",
                            parents=[cluster_flag])
    graphp.add_argument("-o", "--output", help="SVG file to write (default: ./<cluster>.svg)")
    graphp.set_defaults(func=cmd_graph)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("up", "down", "exec", "demo", "run", "shell", "kubectl", "istioctl", "clean", "pcap",
                        "graph") and os.geteuid() != 0:
        print("ambient: this command needs root (network namespaces, veths, iptables): run it with sudo",
              file=sys.stderr)
        sys.exit(1)
    try:
        if args.command == "kubectl":
            code = trio.run(run_kubectl, args.cluster, args.args)
        elif args.command == "istioctl":
            code = trio.run(run_istioctl, args.cluster, args.args)
        else:
            code = trio.run(args.func, args)
    except (ClusterError, sandbox.RunError, topology.TopologyError, podexec.ExecError, ScriptError,
            pcap.PcapError) as exc:
        print(f"ambient: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
