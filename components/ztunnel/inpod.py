"""In-pod mode: the ZDS client that receives pods from istio-cni, and the state of their proxies
(ztunnel's `inpod/workloadmanager.rs` and `inpod/statemanager.rs`).

ztunnel connects to istio-cni's SOCK_SEQPACKET socket, says hello, and answers every request
with an ack (an error text for a NACK). istio-cni first sends a snapshot (an Add with the netns fd
or a Keep per pod it knows, then SnapshotSent), then Adds and Dels as pods come and go.

`StateManager` is the state machine, without I/O:
- Add starts a proxy (idempotent for the same uid and netns; a new netns replaces the proxy); a
  proxy that fails to start is NACKed, kept pending and retried every 5 s.
- Keep (before the snapshot ends only) keeps a running proxy through reconciliation.
- Del before the snapshot ends only forgets the uid; after, it stops the proxy at once.
- SnapshotSent stops every proxy not Added or Kept since this connection began; a second one on
  the same connection is a protocol error.
Proxies keep running across reconnections. Unlike ztunnel, which exits on a protocol error, this
client NACKs, drops the connection and reconnects (10 ms doubling to 15 s), so one bad peer
cannot stop the node's proxies.
"""

from __future__ import annotations

import fcntl
import logging
import socket
from typing import Any, Callable, Protocol

import trio

from components.common import zds
from components.ztunnel import logs
from components.ztunnel.config import PROXY_RETRY_INTERVAL, ZDS_BACKOFF_INITIAL, ZDS_BACKOFF_MAX
from components.ztunnel.sockets import Netns
from components.ztunnel.state import WorkloadInfo

log = logging.getLogger("components.ztunnel.inpod.workloadmanager")

ANNOUNCE_BACKOFF_INITIAL = 0.005

NS_GET_NSTYPE = 0xB703
CLONE_NEWNET = 0x40000000


class ProtocolError(Exception):
    """A message the protocol does not allow now: NACK and reconnect."""


class ProxyStartError(Exception):
    """A proxy that could not start: NACK, keep the pod pending, retry."""


class Proxy(Protocol):
    uid: str
    info: WorkloadInfo

    @property
    def netns_id(self) -> tuple[int, int]: ...

    def shutdown_now(self) -> None: ...

    def dump(self) -> dict[str, Any]: ...


ProxyFactory = Callable[[str, WorkloadInfo, Netns], Proxy]


def check_netns(fd: int) -> None:
    """Refuse an fd that is not a network namespace (ztunnel checks NS_GET_NSTYPE)."""
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as exc:
        raise ProxyStartError(f"fd is not a namespace: {exc}") from exc
    if kind != CLONE_NEWNET:
        raise ProxyStartError("fd is not a network namespace")


class StateManager:
    """Which pods have a running proxy, which are pending, and the snapshot bookkeeping."""

    def __init__(self, factory: ProxyFactory, on_change: Callable[[], None] = lambda: None) -> None:
        self._factory = factory
        self._on_change = on_change
        self.proxies: dict[str, Proxy] = {}
        self.pending: dict[str, tuple[WorkloadInfo, Netns]] = {}
        self.snapshot_names: set[str] = set()
        self.snapshot_received = False

    @property
    def ready(self) -> bool:
        """A first snapshot processed on this connection and no proxy failing to start."""
        return self.snapshot_received and not self.pending

    def reset_snapshot(self) -> None:
        """A new connection: a new snapshot will come. Pending pods will be sent again."""
        self.snapshot_names.clear()
        for _info, netns in self.pending.values():
            netns.close()
        self.pending.clear()
        self.snapshot_received = False
        self._on_change()

    def process(self, request: zds.WorkloadRequest, netns: Netns | None = None) -> None:
        """Apply one request; ProtocolError or ProxyStartError when it must be NACKed.

        The netns (of an Add) is the manager's from here on, used or closed.
        """
        if isinstance(request, zds.AddWorkload):
            assert netns is not None
            self._add(request, netns)
        elif isinstance(request, zds.KeepWorkload):
            logs.emit(logs.pod_keep(request.uid))
            if self.snapshot_received:
                raise ProtocolError("pod keep received after snapshot")
            self.snapshot_names.add(request.uid)
        elif isinstance(request, zds.DelWorkload):
            logs.emit(logs.pod_deleted(request.uid))
            if not self.snapshot_received:
                self.snapshot_names.discard(request.uid)
                self._drop_pending(request.uid)
            else:
                self._delete(request.uid)
        elif isinstance(request, zds.SnapshotSent):
            logs.emit(logs.snapshot_received())
            if self.snapshot_received:
                raise ProtocolError("pod snapshot received already")
            self._reconcile()
            self.snapshot_received = True
        self._on_change()

    def _add(self, request: zds.AddWorkload, netns: Netns) -> None:
        info = request.workload_info
        logs.emit(logs.pod_received(request.uid, info.name if info else "", info.namespace if info else ""))
        if info is None:
            netns.close()
            raise ProtocolError("workload_info is required but not present")
        if not self.snapshot_received:
            self.snapshot_names.add(request.uid)
        workload = WorkloadInfo(info.name, info.namespace, info.service_account)
        existing = self.proxies.get(request.uid)
        if existing is not None:
            if existing.netns_id == netns.id:
                netns.close()
                self._drop_pending(request.uid)
                return
            self._delete(request.uid)
        self._start(request.uid, workload, netns)

    def _start(self, uid: str, info: WorkloadInfo, netns: Netns) -> None:
        self._drop_pending(uid, keep=netns)
        try:
            if netns.fd is not None:
                check_netns(netns.fd)
            proxy = self._factory(uid, info, netns)
        except (OSError, ProxyStartError) as exc:
            self.pending[uid] = (info, netns)
            raise ProxyStartError(f"error creating proxy {uid}: {_error_text(exc)}") from exc
        self.proxies[uid] = proxy

    def _drop_pending(self, uid: str, keep: Netns | None = None) -> None:
        entry = self.pending.pop(uid, None)
        if entry is not None and entry[1] is not keep:
            entry[1].close()

    def _delete(self, uid: str) -> None:
        self._drop_pending(uid)
        proxy = self.proxies.pop(uid, None)
        if proxy is not None:
            proxy.shutdown_now()

    def _reconcile(self) -> None:
        for uid in [u for u in self.proxies if u not in self.snapshot_names]:
            self._delete(uid)
        self.snapshot_names.clear()

    def retry_pending(self) -> None:
        """Try the pending pods' proxies again."""
        for uid, (info, netns) in list(self.pending.items()):
            log.info("retrying workload uid=%s", uid)
            try:
                self._start(uid, info, netns)
            except ProxyStartError as exc:
                log.info("retrying workload failed uid=%s: %s", uid, exc)
        self._on_change()

    def shutdown(self) -> None:
        for uid in list(self.proxies):
            self._delete(uid)
        for uid in list(self.pending):
            self._drop_pending(uid)

    def dump(self) -> dict[str, Any]:
        """`workloadState` of the config dump: each pod's proxy by uid."""
        result = {uid: proxy.dump() for uid, proxy in self.proxies.items()}
        for uid, (info, _netns) in self.pending.items():
            result[uid] = {"state": "Pending", "info": {"name": info.name, "namespace": info.namespace,
                                                        "serviceAccount": info.service_account}}
        return dict(sorted(result.items()))


def rust_duration(seconds: float) -> str:
    """A duration as Rust's Debug prints one: `20ms`, `1.28s`, `15s`."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return logs.os_error(exc)
    return str(exc)


class ZdsClient:
    """Keeps a connection to istio-cni's ZDS socket and feeds the StateManager."""

    def __init__(self, path: str, manager: StateManager) -> None:
        self.path = path
        self.manager = manager
        self.connected = False

    @property
    def ready(self) -> bool:
        return self.connected and self.manager.ready

    async def run(self) -> None:
        """Connect, announce, process; again on any failure, proxies kept running meanwhile."""
        announce_backoff = ANNOUNCE_BACKOFF_INITIAL
        while True:
            sock = await self._connect()
            with sock:
                try:
                    await zds.send_hello(sock)
                except zds.ZdsError as exc:
                    log.error("node agent announcement failed (%s), retrying in %s", exc,
                              rust_duration(announce_backoff))
                    await trio.sleep(announce_backoff)
                    announce_backoff = min(announce_backoff * 2, ZDS_BACKOFF_MAX)
                    continue
                logs.emit(logs.handling_new_stream())
                self.connected = True
                self.manager.reset_snapshot()
                try:
                    await self._process(sock)
                    log.info("process stream ended with eof")
                except (zds.ZdsError, ProtocolError) as exc:
                    log.warning("process stream ended: %s", exc)
                finally:
                    self.connected = False
                if self.manager.snapshot_received:
                    announce_backoff = ANNOUNCE_BACKOFF_INITIAL

    async def _connect(self) -> trio.socket.SocketType:
        """A connection to istio-cni, retrying with backoff (10 ms doubling, at most 15 s)."""
        backoff = ZDS_BACKOFF_INITIAL
        while True:
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                await sock.connect(self.path)
                return sock
            except OSError as exc:
                sock.close()
                backoff = min(backoff * 2, ZDS_BACKOFF_MAX)
                log.warning("failed to connect to the Istio CNI node agent over %s, is the node agent healthy? "
                            "details: %s. retrying in %s", f'"{self.path}"', _error_text(exc), rust_duration(backoff))
                await trio.sleep(backoff)

    async def _process(self, sock: trio.socket.SocketType) -> None:
        retry_at: float | None = None
        while True:
            if self.manager.pending and retry_at is None:
                log.info("scheduling retry uids=%s", sorted(self.manager.pending))
                retry_at = trio.current_time() + PROXY_RETRY_INTERVAL
            received = None
            with trio.move_on_at(retry_at if retry_at is not None else float("inf")):
                try:
                    received = await zds.receive_request(sock)
                except zds.ZdsClosed:
                    return
                except zds.ZdsError as exc:
                    log.error("failed to read message: %s", exc)
                    await zds.send_ack(sock, f"failure to read message : {exc}")
                    raise
            if received is None:
                retry_at = None
                self.manager.retry_pending()
                continue
            request, fd = received
            netns = Netns(fd) if fd is not None else None
            try:
                self.manager.process(request, netns)
            except ProxyStartError as exc:
                log.error("failed to start proxy: %s", exc)
                await zds.send_ack(sock, f"failure to start proxy : {exc}")
                continue
            except ProtocolError as exc:
                log.error("failed to process message: %s", exc)
                await zds.send_ack(sock, f"failure to process message : {exc}")
                raise
            await zds.send_ack(sock)

