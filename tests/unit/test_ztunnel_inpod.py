"""In-pod mode: the ZDS state machine (ztunnel's statemanager tests) and the client against a
fake istio-cni server on a real SOCK_SEQPACKET socket (reference 3)."""

from __future__ import annotations

import os
import socket

import pytest
import trio

from components.common import zds
from components.ztunnel.inpod import ProtocolError, ProxyStartError, StateManager, ZdsClient
from components.ztunnel.sockets import Netns
from components.ztunnel.state import WorkloadInfo

INFO = zds.WorkloadInfo("httpbin-1", "default", "httpbin")


class FakeProxy:
    def __init__(self, uid: str, info: WorkloadInfo, netns: Netns) -> None:
        self.uid, self.info, self.netns = uid, info, netns
        self.stopped = False

    @property
    def netns_id(self):
        return self.netns.id

    def shutdown_now(self) -> None:
        self.stopped = True
        self.netns.close()

    def dump(self):
        return {"state": "Up"}


class Factory:
    def __init__(self) -> None:
        self.started: list[FakeProxy] = []
        self.failing = False

    def __call__(self, uid, info, netns):
        if self.failing:
            raise OSError(98, "Address in use")
        proxy = FakeProxy(uid, info, netns)
        self.started.append(proxy)
        return proxy


def own_netns() -> Netns:
    return Netns(os.open("/proc/self/ns/net", os.O_RDONLY))


def other_netns(tmp_path) -> Netns:
    """An fd with another (dev, inode) than our netns; only the manager's bookkeeping looks."""
    path = tmp_path / f"ns{len(os.listdir(tmp_path))}"
    path.write_text("")
    netns = Netns(os.open(path, os.O_RDONLY))
    return netns


def add(uid: str = "uid-1", info=INFO) -> zds.AddWorkload:
    return zds.AddWorkload(uid, info)


def test_add_is_idempotent_for_the_same_netns():
    factory = Factory()
    manager = StateManager(factory)
    manager.process(add(), own_netns())
    manager.process(add(), own_netns())
    assert len(factory.started) == 1 and not factory.started[0].stopped


def test_add_with_another_netns_replaces_the_proxy(tmp_path, monkeypatch):
    monkeypatch.setattr("components.ztunnel.inpod.check_netns", lambda fd: None)
    factory = Factory()
    manager = StateManager(factory)
    manager.process(add(), own_netns())
    manager.process(add(), other_netns(tmp_path))
    assert [p.stopped for p in factory.started] == [True, False]
    assert manager.proxies["uid-1"] is factory.started[1]


def test_add_without_workload_info_is_a_protocol_error():
    manager = StateManager(Factory())
    with pytest.raises(ProtocolError, match="workload_info is required"):
        manager.process(zds.AddWorkload("uid-1", None), own_netns())


def test_failed_start_is_pending_then_retried_and_blocks_readiness():
    factory = Factory()
    factory.failing = True
    manager = StateManager(factory)
    manager.process(zds.SnapshotSent())
    with pytest.raises(ProxyStartError, match=r"error creating proxy uid-1: Address in use \(os error 98\)"):
        manager.process(add(), own_netns())
    assert "uid-1" in manager.pending and not manager.ready
    manager.retry_pending()
    assert "uid-1" in manager.pending
    factory.failing = False
    manager.retry_pending()
    assert not manager.pending and "uid-1" in manager.proxies and manager.ready


def test_delete_of_a_pending_workload_before_snapshot_forgets_it():
    factory = Factory()
    factory.failing = True
    manager = StateManager(factory)
    with pytest.raises(ProxyStartError):
        manager.process(add(), own_netns())
    manager.process(zds.DelWorkload("uid-1"))
    manager.process(zds.SnapshotSent())
    assert manager.ready and not manager.proxies


def test_snapshot_reconciles_proxies_not_added_or_kept():
    factory = Factory()
    manager = StateManager(factory)
    for uid in ("a", "b", "c"):
        manager.process(add(uid), own_netns())
    manager.process(zds.SnapshotSent())
    assert sorted(manager.proxies) == ["a", "b", "c"]
    # istio-cni reconnects (say ztunnel's connection dropped): a new snapshot.
    manager.reset_snapshot()
    assert not manager.ready
    manager.process(add("a"), own_netns())
    manager.process(zds.KeepWorkload("b"))
    manager.process(zds.SnapshotSent())
    assert sorted(manager.proxies) == ["a", "b"]
    assert [p.uid for p in factory.started if p.stopped] == ["c"]
    assert len(factory.started) == 3  # "a" was running already: not restarted


def test_protocol_errors():
    manager = StateManager(Factory())
    manager.process(zds.SnapshotSent())
    with pytest.raises(ProtocolError, match="pod snapshot received already"):
        manager.process(zds.SnapshotSent())
    with pytest.raises(ProtocolError, match="pod keep received after snapshot"):
        manager.process(zds.KeepWorkload("x"))


def test_delete_after_snapshot_stops_at_once():
    factory = Factory()
    manager = StateManager(factory)
    manager.process(zds.SnapshotSent())
    manager.process(add(), own_netns())
    manager.process(zds.DelWorkload("uid-1"))
    assert factory.started[0].stopped and not manager.proxies
    manager.process(zds.DelWorkload("uid-1"))  # idempotent


def test_add_delete_add_starts_one_proxy_each_time():
    factory = Factory()
    manager = StateManager(factory)
    manager.process(zds.SnapshotSent())
    manager.process(add(), own_netns())
    manager.process(zds.DelWorkload("uid-1"))
    manager.process(add(), own_netns())
    assert len(factory.started) == 2 and list(manager.proxies) == ["uid-1"]


def test_not_a_netns_fd_is_refused(tmp_path):
    manager = StateManager(Factory())
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ProxyStartError, match="not a namespace"):
        manager.process(add(), Netns(os.open(path, os.O_RDONLY)))


# The client, against a fake istio-cni.

class FakeCni:
    def __init__(self, path: str) -> None:
        self.path = path
        self.listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    async def start(self) -> None:
        await self.listener.bind(self.path)
        self.listener.listen()

    async def accept(self) -> trio.socket.SocketType:
        conn, _ = await self.listener.accept()
        hello = await zds.receive_hello(conn)
        assert hello.version == zds.VERSION_V1
        return conn

    @staticmethod
    async def send(conn, request, with_netns: bool = False) -> zds.Ack:
        fd = os.open("/proc/self/ns/net", os.O_RDONLY) if with_netns else None
        try:
            await zds.send_request(conn, request, fd)
        finally:
            if fd is not None:
                os.close(fd)
        return await zds.receive_ack(conn)


async def test_client_snapshot_acks_and_reconnect(tmp_path):
    cni = FakeCni(str(tmp_path / "ztunnel.sock"))
    factory = Factory()
    manager = StateManager(factory)
    client = ZdsClient(cni.path, manager)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)  # before the server exists: retries with backoff
        await trio.sleep(0.05)
        await cni.start()
        with trio.fail_after(5):
            conn = await cni.accept()
            assert (await cni.send(conn, add("a"), with_netns=True)).error == ""
            assert not client.ready
            assert (await cni.send(conn, zds.SnapshotSent())).error == ""
            assert client.ready
            ack = await cni.send(conn, zds.KeepWorkload("late"))
            assert ack.error == "failure to process message : pod keep received after snapshot"
            # The client dropped the connection after the protocol error and comes back.
            conn.close()
            conn = await cni.accept()
            assert not client.ready and list(manager.proxies) == ["a"]  # proxies survive
            assert (await cni.send(conn, zds.SnapshotSent())).error == ""
            assert manager.proxies == {} and factory.started[0].stopped
            conn.close()
        nursery.cancel_scope.cancel()


async def test_client_nacks_a_failing_proxy_and_retries_it(tmp_path, autojump_clock):
    cni = FakeCni(str(tmp_path / "ztunnel.sock"))
    await cni.start()
    factory = Factory()
    factory.failing = True
    manager = StateManager(factory)
    client = ZdsClient(cni.path, manager)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        conn = await cni.accept()
        ack = await cni.send(conn, add("a"), with_netns=True)
        assert ack.error.startswith("failure to start proxy : error creating proxy a:")
        assert (await cni.send(conn, zds.SnapshotSent())).error == ""
        assert not client.ready
        factory.failing = False
        await trio.sleep(6)
        assert client.ready and list(manager.proxies) == ["a"]
        conn.close()
        nursery.cancel_scope.cancel()


async def test_client_add_without_fd_is_nacked(tmp_path):
    cni = FakeCni(str(tmp_path / "ztunnel.sock"))
    await cni.start()
    client = ZdsClient(cni.path, StateManager(Factory()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        with trio.fail_after(5):
            conn = await cni.accept()
            await zds.send_datagram(conn, zds.encode_request(add("a")))
            ack = await zds.receive_ack(conn)
            assert "No control message" in ack.error
        conn.close()
        nursery.cancel_scope.cancel()


async def test_interop_with_our_istio_cni_server(tmp_path):
    """Against the emulator's own istio-cni ZDS server: snapshot, then an Add and a Del."""
    from components.cni.ztunnelserver import SnapshotEntry, ZtunnelServer

    held = os.open("/proc/self/ns/net", os.O_RDONLY)
    server = ZtunnelServer(str(tmp_path / "ztunnel.sock"),
                           lambda: [SnapshotEntry("snap", INFO, held), SnapshotEntry("kept", INFO, None)])
    factory = Factory()
    manager = StateManager(factory)
    client = ZdsClient(server.path, manager)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            server.snapshot_ready.set()
            nursery.start_soon(client.run)
            with trio.fail_after(5):
                while not client.ready:
                    await trio.sleep(0.01)
                assert list(manager.proxies) == ["snap"]
                await server.pod_added("new", zds.WorkloadInfo("sleep-1", "default", "sleep"), held)
                assert sorted(manager.proxies) == ["new", "snap"]
                await server.pod_deleted("snap")
                assert list(manager.proxies) == ["new"] and factory.started[0].stopped
            nursery.cancel_scope.cancel()
    finally:
        os.close(held)
