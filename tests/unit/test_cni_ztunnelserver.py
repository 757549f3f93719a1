"""istio-cni's ZDS server against a fake ztunnel on a real SEQPACKET socket: snapshot, Add/Del routing, failures."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio

from components.cni import ztunnelserver
from components.cni.ztunnelserver import SnapshotEntry, ZdsFailure, ZtunnelServer
from components.common import zds
from components.common.zds import AddWorkload, DelWorkload, KeepWorkload, SnapshotSent, WorkloadInfo

INFO = WorkloadInfo("httpbin", "ambient-demo", "httpbin")
NETNS_INODE = os.stat("/proc/self/ns/net").st_ino


class FakeZtunnel:
    """ztunnel's side: connect, say hello, receive requests and ack them."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    async def connect(self) -> "FakeZtunnel":
        await self.sock.connect(str(self.path))
        await zds.send_hello(self.sock)
        return self

    async def receive(self) -> tuple[zds.WorkloadRequest, int | None]:
        request, fd = await zds.receive_request(self.sock)
        if fd is not None:
            assert os.fstat(fd).st_ino == NETNS_INODE
            os.close(fd)
        return request, fd

    async def exchange(self, error: str = "") -> zds.WorkloadRequest:
        request, _ = await self.receive()
        await zds.send_ack(self.sock, error)
        return request

    async def snapshot(self) -> list[zds.WorkloadRequest]:
        received = []
        while not received or received[-1] != SnapshotSent():
            received.append(await self.exchange())
        return received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def netns_fd():
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.fixture
async def server(tmp_path: Path, nursery: trio.Nursery, netns_fd: int) -> ZtunnelServer:
    entries = [SnapshotEntry("a", INFO, netns_fd), SnapshotEntry("b", WorkloadInfo("b", "ns", "sa"), None)]
    zserver = ZtunnelServer(str(tmp_path / "ztunnel" / "ztunnel.sock"), lambda: list(entries))
    zserver.entries = entries  # type: ignore[attr-defined]
    await nursery.start(zserver.run)
    zserver.snapshot_ready.set()
    return zserver


async def connected(server: ZtunnelServer) -> FakeZtunnel:
    fake = await FakeZtunnel(Path(server.path)).connect()
    assert await fake.snapshot() == [AddWorkload("a", INFO), KeepWorkload("b"), SnapshotSent()]
    return fake


async def test_snapshot_adds_held_netns_and_keeps_the_rest(server: ZtunnelServer):
    fake = await connected(server)
    assert server.connections == 1
    fake.close()


async def test_snapshot_waits_until_ready(tmp_path: Path, nursery: trio.Nursery):
    zserver = ZtunnelServer(str(tmp_path / "z.sock"), lambda: [])
    await nursery.start(zserver.run)
    fake = await FakeZtunnel(tmp_path / "z.sock").connect()
    with trio.move_on_after(0.2) as waited:
        await fake.receive()
    assert waited.cancelled_caught
    zserver.snapshot_ready.set()
    assert await fake.exchange() == SnapshotSent()


async def test_add_without_connection(server: ZtunnelServer, netns_fd: int):
    with pytest.raises(ZdsFailure, match="^no ztunnel connection$"):
        await server.pod_added("c", INFO, netns_fd)
    await server.pod_deleted("c")  # nobody to tell: fine


async def test_add_goes_to_the_newest_connection_del_to_all(server: ZtunnelServer, nursery: trio.Nursery,
                                                            netns_fd: int):
    old, new = await connected(server), await connected(server)
    nursery.start_soon(server.pod_added, "c", INFO, netns_fd)
    assert await new.exchange() == AddWorkload("c", INFO)
    nursery.start_soon(server.pod_deleted, "c")
    assert await old.exchange() == DelWorkload("c")
    assert await new.exchange() == DelWorkload("c")
    with trio.move_on_after(0.1) as nothing:
        await old.receive()
    assert nothing.cancelled_caught


async def test_nack_is_an_error(server: ZtunnelServer, nursery: trio.Nursery, netns_fd: int):
    fake = await connected(server)
    async with trio.open_nursery() as inner:
        inner.start_soon(fake.exchange, "failure to start proxy")
        with pytest.raises(ZdsFailure, match="got ack error: failure to start proxy"):
            await server.pod_added("c", INFO, netns_fd)


async def test_requests_are_answered_one_at_a_time(server: ZtunnelServer, nursery: trio.Nursery, netns_fd: int):
    fake = await connected(server)
    done = []

    async def add(uid: str) -> None:
        await server.pod_added(uid, INFO, netns_fd)
        done.append(uid)

    nursery.start_soon(add, "c")
    nursery.start_soon(add, "d")
    first, _ = await fake.receive()
    with trio.move_on_after(0.1) as waited:
        await fake.receive()  # the second is not sent before the first is acked
    assert waited.cancelled_caught and done == []
    await zds.send_ack(fake.sock)
    second = await fake.exchange()
    assert {first.uid, second.uid} == {"c", "d"}  # type: ignore[union-attr]
    await trio.sleep(0.05)
    assert sorted(done) == ["c", "d"]


async def test_a_vanished_ztunnel_fails_its_requests(server: ZtunnelServer, netns_fd: int):
    fake = await connected(server)
    async with trio.open_nursery() as inner:
        async def vanish() -> None:
            await fake.receive()
            fake.close()

        inner.start_soon(vanish)
        with pytest.raises(ZdsFailure):
            await server.pod_added("c", INFO, netns_fd)
    await trio.sleep(0.05)
    assert server.connections == 0


async def test_missing_ack_times_out_and_drops_the_connection(server: ZtunnelServer, netns_fd: int,
                                                              monkeypatch: pytest.MonkeyPatch):
    fake = await connected(server)
    monkeypatch.setattr(ztunnelserver, "READ_WRITE_DEADLINE", 0.1)
    with pytest.raises(ZdsFailure, match="timed out"):
        await server.pod_added("c", INFO, netns_fd)
    assert server.connections == 0
    with pytest.raises(zds.ZdsClosed):
        while True:
            await fake.receive()


async def test_idle_connection_is_checked(server: ZtunnelServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ztunnelserver, "KEEPALIVE_INTERVAL", 0.05)
    fake = await connected(server)
    await trio.sleep(0.2)
    assert server.connections == 1  # a quiet ztunnel is alive
    await zds.send_ack(fake.sock)  # ztunnel never speaks unasked
    await trio.sleep(0.2)
    assert server.connections == 0
    fake2 = await connected(server)
    fake2.close()
    await trio.sleep(0.2)
    assert server.connections == 0  # EOF noticed while idle


async def test_reconnect_gets_a_new_snapshot(server: ZtunnelServer, netns_fd: int):
    first = await connected(server)
    first.close()
    server.entries.append(SnapshotEntry("c", INFO, netns_fd))  # type: ignore[attr-defined]
    again = await FakeZtunnel(Path(server.path)).connect()
    assert await again.snapshot() == [AddWorkload("a", INFO), KeepWorkload("b"), AddWorkload("c", INFO),
                                      SnapshotSent()]


async def test_stale_socket_is_replaced_and_removed_at_exit(tmp_path: Path):
    path = tmp_path / "ztunnel.sock"
    path.write_text("stale")
    zserver = ZtunnelServer(str(path), lambda: [])
    async with trio.open_nursery() as nursery:
        await nursery.start(zserver.run)
        assert path.is_socket() and zserver.listening
        nursery.cancel_scope.cancel()
    assert not path.exists() and not zserver.listening
