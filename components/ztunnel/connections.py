"""Inbound connections a proxy is carrying, so a policy change can close the ones it now denies
(ztunnel's ConnectionManager and PolicyWatcher).

Each tracked connection holds its RBAC input and a cancel scope around its data copy. On every
new config the proxy re-evaluates them all against the new policies and the destination
workload as the new config describes it (a selector policy that now lists the workload counts),
closing the denied ones with `connection closed due to policy change`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import trio

from components.ztunnel import logs, rbac
from components.common.addresses import format_address
from components.ztunnel.state import ProxyState, Workload


@dataclass(eq=False)
class TrackedConnection:
    conn: rbac.Connection
    workload: Workload
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    closed_by_policy: bool = False

    def close_for_policy(self) -> None:
        self.closed_by_policy = True
        self.scope.cancel()

    def dump(self) -> dict[str, Any]:
        c = self.conn
        return {"src": format_address((c.src_ip, c.src_port)), "dst": format_address((c.dst_ip, c.dst_port)),
                "srcIdentity": c.src_identity, "workload": self.workload.uid}


class ConnectionManager:
    def __init__(self) -> None:
        self._tracked: set[TrackedConnection] = set()

    def __len__(self) -> int:
        return len(self._tracked)

    @contextmanager
    def track(self, conn: rbac.Connection, workload: Workload) -> Iterator[TrackedConnection]:
        """Track for the body; run the connection's copy inside `tracked.scope`."""
        tracked = TrackedConnection(conn, workload)
        self._tracked.add(tracked)
        try:
            yield tracked
        finally:
            self._tracked.discard(tracked)

    def reevaluate(self, state: ProxyState) -> list[TrackedConnection]:
        """Close the connections the policies of `state` deny; return them."""
        closed = []
        for tracked in list(self._tracked):
            workload = state.workload_by_uid(tracked.workload.uid) or tracked.workload
            decision = rbac.evaluate(state.policies, workload.raw, tracked.conn)
            if not decision.allowed:
                logs.emit(logs.no_longer_allowed(tracked.conn, workload.uid))
                tracked.close_for_policy()
                closed.append(tracked)
        return closed

    def close_all(self) -> None:
        for tracked in list(self._tracked):
            tracked.scope.cancel()

    def dump(self) -> list[dict[str, Any]]:
        return [t.dump() for t in self._tracked]
