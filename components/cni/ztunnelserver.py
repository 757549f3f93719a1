"""istio-cni's side of ZDS: the server ztunnel connects to (`cni/pkg/nodeagent/ztunnelserver.go`).

For each connection: read ztunnel's hello, send the snapshot (an Add with the netns fd for every
captured pod whose netns is held, a Keep for the others, waiting for each ack), SnapshotSent,
then forward Adds and Dels one at a time, each answered by its ack within 5 s. Adds go to the
newest connection, Dels to all. Any failed exchange drops the connection (the acks would no
longer line up); ztunnel reconnects and gets a fresh snapshot. While idle, a short read checks
that ztunnel is still there (it never speaks unasked).
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field
from typing import Callable

import trio

from components.common import zds
from components.common.zds import Ack, AddWorkload, DelWorkload, KeepWorkload, SnapshotSent, WorkloadInfo

log = logging.getLogger("ambient")

READ_WRITE_DEADLINE = 5.0
KEEPALIVE_INTERVAL = 1.0
KEEPALIVE_READ = 0.01
QUEUE_SIZE = 100


class ZdsFailure(Exception):
    """An Add or Del that ztunnel did not acknowledge (no connection, NACK, broken connection)."""


@dataclass(frozen=True)
class SnapshotEntry:
    uid: str
    info: WorkloadInfo
    netns_fd: int | None  # None: the agent does not hold this pod's netns (sent as Keep)


@dataclass
class _Pending:
    request: zds.WorkloadRequest
    fd: int | None  # a dup owned by this request, closed once sent or failed
    done: trio.Event = field(default_factory=trio.Event)
    ack: Ack | None = None
    error: str = ""

    def finish(self, ack: Ack | None = None, error: str = "") -> None:
        if self.fd is not None:
            zds.close_fds([self.fd])
            self.fd = None
        self.ack, self.error = ack, error
        self.done.set()

    async def result(self) -> Ack:
        await self.done.wait()
        if self.ack is None:
            raise ZdsFailure(self.error)
        return self.ack


class _Connection:
    _ids = itertools.count(1)

    def __init__(self, sock: trio.socket.SocketType):
        self.id = next(self._ids)
        self.sock = sock
        self.closed = False
        self._send, self._receive = trio.open_memory_channel[_Pending](QUEUE_SIZE)

    def submit(self, request: zds.WorkloadRequest, fd: int | None) -> _Pending:
        if self.closed:
            raise ZdsFailure("ztunnel connection closed")
        pending = _Pending(request, None if fd is None else os.dup(fd))
        try:
            self._send.send_nowait(pending)
        except trio.WouldBlock:
            pending.finish(error="too many requests queued for ztunnel")
        return pending

    async def next(self) -> _Pending:
        return await self._receive.receive()

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        while True:
            try:
                self._receive.receive_nowait().finish(error="ztunnel connection closed")
            except trio.WouldBlock:
                return


def _version_name(version: int) -> str:
    return {0: "NOT_USED", zds.VERSION_V1: "V1"}.get(version, str(version))


class ZtunnelServer:
    def __init__(self, path: str, snapshot: Callable[[], list[SnapshotEntry]]):
        """`snapshot` is read once per connection, after `snapshot_ready` is set."""
        self.path = path
        self._snapshot = snapshot
        self.snapshot_ready = trio.Event()
        self.listening = False
        self._conns: list[_Connection] = []

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the SEQPACKET socket (a stale file is replaced) and serve ztunnels until cancelled."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_SEQPACKET)
        try:
            await listener.bind(self.path)
            listener.listen(16)
            self.listening = True
            task_status.started()
            async with trio.open_nursery() as nursery:
                while True:
                    sock, _ = await listener.accept()
                    nursery.start_soon(self._handle, _Connection(sock))
        finally:
            self.listening = False
            listener.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    async def pod_added(self, uid: str, info: WorkloadInfo, netns_fd: int) -> None:
        """Send an Add to the newest connection and wait for its ack."""
        if not self._conns:
            raise ZdsFailure("no ztunnel connection")
        ack = await self._conns[-1].submit(AddWorkload(uid, info), netns_fd).result()
        if ack.error:
            log.error("add-workload: got ack error: %s", ack.error)
            raise ZdsFailure(f"got ack error: {ack.error}")

    async def pod_deleted(self, uid: str) -> None:
        """Send a Del to every connection and wait for their acks (no connection: nothing to do)."""
        pending = []
        errors = []
        for conn in list(self._conns):
            try:
                pending.append(conn.submit(DelWorkload(uid), None))
            except ZdsFailure as exc:
                errors.append(str(exc))
        for request in pending:
            try:
                ack = await request.result()
            except ZdsFailure as exc:
                errors.append(str(exc))
                continue
            if ack.error:
                errors.append(f"got ack error: {ack.error}")
        if errors:
            raise ZdsFailure("; ".join(errors))

    async def _exchange(self, conn: _Connection, request: zds.WorkloadRequest, fd: int | None) -> Ack:
        try:
            with trio.fail_after(READ_WRITE_DEADLINE):
                await zds.send_request(conn.sock, request, fd)
                return await zds.receive_ack(conn.sock)
        except trio.TooSlowError:
            raise zds.ZdsError("timed out waiting for ztunnel's ack") from None

    async def _send_snapshot(self, conn: _Connection) -> None:
        # dup the fds at once: the pods' own fds may be closed while we wait for acks
        entries = [(e.uid, e.info, None if e.netns_fd is None else os.dup(e.netns_fd)) for e in self._snapshot()]
        try:
            for uid, info, fd in entries:
                if fd is None:
                    log.info("netns not available for local pod %s. sending keep to ztunnel", uid)
                    ack = await self._exchange(conn, KeepWorkload(uid), None)
                else:
                    ack = await self._exchange(conn, AddWorkload(uid, info), fd)
                if ack.error:
                    log.error("add-workload: got ack error: %s", ack.error)
        finally:
            zds.close_fds([fd for _, _, fd in entries if fd is not None])
        ack = await self._exchange(conn, SnapshotSent(), None)
        if ack.error:
            log.error("snap-sent: got ack error: %s", ack.error)

    async def _keepalive(self, conn: _Connection) -> None:
        with trio.move_on_after(KEEPALIVE_READ):
            await zds.receive_datagram(conn.sock)
            raise zds.ZdsError("ztunnel protocol error, unexpected message")

    async def _handle(self, conn: _Connection) -> None:
        self._conns.append(conn)
        log.info("ztunnel connected")
        try:
            with trio.fail_after(READ_WRITE_DEADLINE):
                hello = await zds.receive_hello(conn.sock)
            log.info("received hello from ztunnel. %s", _version_name(hello.version))
            await self.snapshot_ready.wait()
            await self._send_snapshot(conn)
            while True:
                with trio.move_on_after(KEEPALIVE_INTERVAL) as idle:
                    pending = await conn.next()
                if idle.cancelled_caught:
                    await self._keepalive(conn)
                    continue
                error = "ztunnel connection closed"
                try:
                    pending.finish(await self._exchange(conn, pending.request, pending.fd))
                except zds.ZdsError as exc:
                    error = str(exc)
                    raise
                finally:
                    if not pending.done.is_set():
                        pending.finish(error=error)
        except zds.ZdsClosed:
            pass
        except (zds.ZdsError, trio.TooSlowError) as exc:
            log.error("failed to handle conn: %s", exc or "timed out waiting for ztunnel's hello")
        finally:
            self._conns.remove(conn)
            conn.close()
            log.info("ztunnel disconnected")
