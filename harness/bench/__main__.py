"""`scripts/bench`: the figures users choose this emulator for, printed as a table.

Bring-up is measured from the start of `ambient up` until every pod is Running and Ready (every
declared TCP port answering), memory as the summed PSS and RSS of every process of the run.
Latency, throughput and connection rates are measured side by side in one meshed cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from harness.bench import figures, measure
from harness.bench.measure import Sizes
from harness.cluster import ClusterError

READY_TIMEOUT = 300  # seconds each bring-up may take before it counts as failed
FULL = Sizes(pods=[100, 300], transfer_bytes=2**30, requests=300, connection_seconds=5.0)
QUICK = Sizes(pods=[20, 60], transfer_bytes=128 * 2**20, requests=100, connection_seconds=2.0)


def sizes(args: argparse.Namespace) -> Sizes:
    chosen = QUICK if args.quick else FULL
    return Sizes(pods=args.pods if args.pods is not None else chosen.pods,
                 transfer_bytes=(args.transfer_mib * 2**20) if args.transfer_mib else chosen.transfer_bytes,
                 requests=args.requests or chosen.requests,
                 connection_seconds=chosen.connection_seconds)


def pod_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pods takes comma-separated pod counts, not {text!r}") from None
    if any(count < 2 or count > 4 * 250 for count in counts):
        raise argparse.ArgumentTypeError("each pod count must be between 2 and 1000 (4 nodes, a /24 each)")
    return counts


async def run(workdir: Path, chosen: Sizes) -> list[figures.Figure]:
    return await measure.bring_ups(workdir, chosen) + await measure.mesh_figures(workdir, chosen)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="FILE", help="also write every figure, with units and the machine, to FILE")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for development (20 and 60 pods, 128 MiB, 100 requests, 2 s): "
                        "not the published figures")
    p.add_argument("--pods", type=pod_counts, metavar="N,N", help="pod counts of the 4-node bring-ups (default 100,300)")
    p.add_argument("--transfer-mib", type=int, help="size of the bulk transfer in MiB (default 1024)")
    p.add_argument("--requests", type=int, help="requests per latency path (default 300)")
    return p


def main() -> None:
    args = parser().parse_args()
    if os.geteuid() != 0:
        print("scripts/bench needs root (it brings clusters up): sudo ./scripts/bench", file=sys.stderr)
        sys.exit(1)
    chosen = sizes(args)
    # A bring-up of hundreds of pods on a busy machine may take longer than the daemon's default
    # wait (scaled to manifests, not pods); a slow figure is still a figure.
    os.environ.setdefault("AMBIENT_READY_TIMEOUT", str(READY_TIMEOUT))
    host = figures.machine()
    try:
        with tempfile.TemporaryDirectory(prefix="ambient-bench-") as workdir:
            results = trio.run(run, Path(workdir), chosen)
    except (ClusterError, RuntimeError) as exc:
        print(f"scripts/bench: {exc}", file=sys.stderr)
        sys.exit(1)
    print(figures.table(results, host))
    if args.json:
        options: dict[str, Any] = {"quick": args.quick, **vars(chosen)}
        Path(args.json).write_text(json.dumps(figures.document(results, host, options), indent=2) + "\n")


if __name__ == "__main__":
    main()
