"""Pytest fixtures that give tests running clusters.

- `default_cluster` (session): `topologies/default.yaml`, shared by tests that do not disturb it.
- `cluster_factory`: `await cluster_factory(path_or_text, name=...)` starts a cluster of the
  test's own, torn down after the test.
- `cluster_up(topology, name)`: the context manager behind them, for a module's own cluster.

Both need root; without it the test is skipped with a reason that says so.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import trio

from harness.cluster import Cluster

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = REPO / "topologies" / "default.yaml"
ROOT_REASON = "end-to-end test: needs root (network namespaces, veths, iptables); run with sudo ./scripts/test"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(ROOT_REASON)


@contextmanager
def cluster_up(topology: Path, name: str) -> Iterator[Cluster]:
    """A cluster for a session- or module-scoped fixture: brought up on entry, torn down on exit."""
    require_root()
    cluster = Cluster.from_file(topology, name=name)
    trio.run(cluster.__aenter__)
    try:
        yield cluster
    finally:
        trio.run(cluster.__aexit__, None, None, None)


@pytest.fixture(scope="session")
def default_cluster() -> Iterator[Cluster]:
    """The default topology, brought up once for the session (as cluster `e2e-default`)."""
    with cluster_up(DEFAULT_TOPOLOGY, "e2e-default") as cluster:
        yield cluster


StartCluster = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def cluster_factory() -> AsyncIterator[StartCluster]:
    """Start clusters for one test: `await cluster_factory(topology, name=...)`.

    `topology` is a path or the YAML text itself.
    """
    require_root()
    started: list[Cluster] = []
    with tempfile.TemporaryDirectory(prefix="ambient-topology-") as tmp:

        async def start(topology: str | Path, *, name: str | None = None) -> Cluster:
            path = Path(topology) if isinstance(topology, Path) or "\n" not in str(topology) else None
            if path is None:
                path = Path(tmp) / f"topology-{len(started)}.yaml"
                path.write_text(str(topology))
            cluster = Cluster.from_file(path, name=name)
            await cluster.__aenter__()
            started.append(cluster)
            return cluster

        try:
            yield start
        finally:
            with trio.CancelScope(shield=True):
                for cluster in reversed(started):
                    await cluster.__aexit__(None, None, None)
