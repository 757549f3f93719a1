"""ZDS: protobuf bytes as ztunnel's prost/Go's protobuf produce them, and fd passing over SEQPACKET."""

from __future__ import annotations

import fcntl
import os
import socket

import pytest
import trio

from components.common import zds
from components.common.zds import (Ack, AddWorkload, DelWorkload, KeepWorkload, SnapshotSent, WorkloadInfo,
                                   ZdsClosed, ZdsError, ZdsHello)

ADD = AddWorkload("u1", WorkloadInfo("a", "b", "c"))
# Field numbers of zds.proto: add=1, del=2, snapshot_sent=3, keep=5; DelWorkload.uid is field 2.
VECTORS = [
    (ADD, "0a0f" "0a027531" "1209" "0a0161" "120162" "1a0163"),
    (AddWorkload("u1"), "0a04" "0a027531"),
    (AddWorkload("u1", WorkloadInfo()), "0a06" "0a027531" "1200"),
    (KeepWorkload("u1"), "2a04" "0a027531"),
    (DelWorkload("u1"), "1204" "12027531"),
    (SnapshotSent(), "1a00"),
]


@pytest.mark.parametrize("request_, hexbytes", VECTORS)
def test_requests_encode_as_protobuf(request_, hexbytes):
    assert zds.encode_request(request_).hex() == hexbytes
    assert zds.decode_request(bytes.fromhex(hexbytes)) == request_


def test_hello_and_acks():
    assert zds.encode_hello(ZdsHello()).hex() == "0801"
    assert zds.decode_hello(bytes.fromhex("0801")) == ZdsHello(1)
    assert zds.encode_response(Ack()).hex() == "0a00"
    assert zds.encode_response(Ack("bad")).hex() == "0a05" "0a03626164"
    assert zds.decode_response(bytes.fromhex("0a00")) == Ack("")
    assert zds.decode_response(bytes.fromhex("0a050a03626164")) == Ack("bad")


def test_unknown_fields_are_skipped():
    # AddWorkload.windows_namespace (field 3), a fixed32 and a varint field the reader does not know.
    body = bytes.fromhex("0a027531" "1a0377696e" "3d01020304" "4001")
    assert zds.decode_request(b"\x0a" + bytes([len(body)]) + body) == AddWorkload("u1")
    assert zds.decode_hello(bytes.fromhex("0801" "1203616263")) == ZdsHello(1)


def test_long_strings_use_multibyte_lengths():
    uid = "x" * 300
    encoded = zds.encode_request(DelWorkload(uid))
    assert encoded[:3].hex() == "12af02"  # 303 = 0xaf 0x02
    assert zds.decode_request(encoded) == DelWorkload(uid)


@pytest.mark.parametrize("hexbytes, message", [
    ("", "no payload"),
    ("0a05", "^failed to decode Protobuf message: buffer underflow$"),
    ("0a", "^failed to decode Protobuf message: invalid varint$"),
    ("0f", "^failed to decode Protobuf message: invalid wire type value: 7$"),
    ("0b", "unsupported wire type value: 3"),
    ("08ffffffffffffffffffff01", "invalid varint"),
    ("0a020a05", "buffer underflow"),
    ("0a03" "0a01ff", "invalid string value: data is not UTF-8 encoded"),
])
def test_malformed_requests(hexbytes, message):
    with pytest.raises(ZdsError, match=message):
        zds.decode_request(bytes.fromhex(hexbytes))


def test_response_without_ack_is_an_error():
    with pytest.raises(ZdsError, match="no payload"):
        zds.decode_response(b"")


def _pair() -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    return trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_add_carries_one_netns_fd():
    left, right = _pair()
    with left, right:
        netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            await zds.send_request(left, ADD, netns)
            request, fd = await zds.receive_request(right)
        finally:
            os.close(netns)
        assert request == ADD and fd is not None
        try:
            assert os.stat(f"/proc/self/fd/{fd}").st_ino == os.stat("/proc/self/ns/net").st_ino
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        finally:
            os.close(fd)


async def test_hello_snapshot_and_acks_round_trip():
    left, right = _pair()
    with left, right:
        await zds.send_hello(right)
        assert await zds.receive_hello(left) == ZdsHello(1)
        for request in (KeepWorkload("k"), DelWorkload("d"), SnapshotSent()):
            await zds.send_request(left, request)
            assert await zds.receive_request(right) == (request, None)
            await zds.send_ack(right, "" if request != SnapshotSent() else "nope")
        assert [await zds.receive_ack(left) for _ in range(3)] == [Ack(), Ack(), Ack("nope")]


async def test_add_without_fd_is_refused_by_the_sender_and_the_receiver():
    left, right = _pair()
    with left, right:
        with pytest.raises(ValueError):
            await zds.send_request(left, ADD)
        with pytest.raises(ValueError):
            await zds.send_request(left, DelWorkload("d"), 0)
        await zds.send_datagram(left, zds.encode_request(ADD))
        with pytest.raises(ZdsError, match="^No control message$"):
            await zds.receive_request(right)


async def test_fds_on_other_messages_are_closed_and_refused():
    left, right = _pair()
    with left, right:
        r, w = os.pipe()
        try:
            before = _open_fds()
            await zds.send_datagram(left, zds.encode_request(DelWorkload("d")), [r])
            with pytest.raises(ZdsError, match="^Unexpected control message$"):
                await zds.receive_request(right)
            await zds.send_datagram(left, zds.encode_request(ADD), [r, w])
            with pytest.raises(ZdsError, match="^Expected 1 FD, got 2$"):
                await zds.receive_request(right)
            await zds.send_datagram(left, b"garbage", [r, w])  # counted before decoding, as ztunnel does
            with pytest.raises(ZdsError, match="^Expected 1 FD, got 2$"):
                await zds.receive_request(right)
            await zds.send_datagram(left, zds.encode_response(Ack()), [w])
            with pytest.raises(ZdsError, match="^Unexpected control message$"):
                await zds.receive_ack(right)
            assert _open_fds() == before
        finally:
            os.close(r)
            os.close(w)


async def test_truncation_is_an_error():
    left, right = _pair()
    with left, right:
        await zds.send_datagram(left, b"\x00" * (zds.MAX_MESSAGE + 1))
        with pytest.raises(ZdsError, match="^received truncated message$"):
            await zds.receive_datagram(right)
        r, w = os.pipe()
        try:
            before = _open_fds()
            await zds.send_datagram(left, zds.encode_request(ADD), [r] * (zds.MAX_FDS + 2))
            with pytest.raises(ZdsError, match="^received truncated message$"):
                await zds.receive_datagram(right)
            assert _open_fds() == before
        finally:
            os.close(r)
            os.close(w)


async def test_closed_peer():
    left, right = _pair()
    with right:
        left.close()
        with pytest.raises(ZdsClosed):
            await zds.receive_request(right)
        with pytest.raises(ZdsError, match="write failed"):
            await zds.send_ack(right)
