"""ZDS, the protocol istio-cni (server) and ztunnel (client) speak over a Unix SOCK_SEQPACKET socket.

One protobuf message per datagram (no length prefix), in the wire format of ztunnel's
`proto/zds.proto` (package `istio.workload.zds`), so either side interoperates with the real one:

    ZdsHello         { Version version = 1; }                      V1 = 1; ztunnel sends it first
    WorkloadRequest  { oneof payload { AddWorkload add = 1; KeepWorkload keep = 5;
                                       DelWorkload del = 2; SnapshotSent snapshot_sent = 3; } }
    AddWorkload      { string uid = 1; WorkloadInfo workload_info = 2; }
    WorkloadInfo     { string name = 1; string namespace = 2; string service_account = 3; }
    KeepWorkload     { string uid = 1; }
    DelWorkload      { string uid = 2; }
    SnapshotSent     { }
    WorkloadResponse { oneof payload { Ack ack = 1; } }
    Ack              { string error = 1; }                         empty error = ACK, else NACK

An AddWorkload carries the pod's netns fd by SCM_RIGHTS (exactly one); no other message carries
fds. Every request is answered by one WorkloadResponse before the next is sent (acks correlate
only by order). The protobuf encoding is hand-written: varints and length-delimited fields only.
Errors read as ztunnel's do (its NACK says "failure to read message : " and this text): prost's
decode errors, "no payload", "received truncated message", "Expected 1 FD, got N".
"""

from __future__ import annotations

import array
import os
import socket
from dataclasses import dataclass
from typing import Sequence, Union

import trio

VERSION_V1 = 1
MAX_MESSAGE = 1024  # ztunnel's receive buffer; a longer datagram is an error (MSG_TRUNC)
MAX_FDS = 4  # room to see (and close) fds beyond the one an Add may carry

_VARINT = 0
_FIXED64 = 1
_LENGTH = 2
_FIXED32 = 5


class ZdsError(Exception):
    """A ZDS protocol or transport error (the message is what the peer would log)."""


def _decode_error(description: str) -> ZdsError:
    """A message that does not parse, worded as prost's DecodeError."""
    return ZdsError(f"failed to decode Protobuf message: {description}")


class ZdsClosed(ZdsError):
    """The peer closed the connection."""


@dataclass(frozen=True)
class ZdsHello:
    version: int = VERSION_V1


@dataclass(frozen=True)
class WorkloadInfo:
    name: str = ""
    namespace: str = ""
    service_account: str = ""


@dataclass(frozen=True)
class AddWorkload:
    uid: str
    workload_info: WorkloadInfo | None = None


@dataclass(frozen=True)
class KeepWorkload:
    uid: str


@dataclass(frozen=True)
class DelWorkload:
    uid: str


@dataclass(frozen=True)
class SnapshotSent:
    pass


@dataclass(frozen=True)
class Ack:
    error: str = ""


WorkloadRequest = Union[AddWorkload, KeepWorkload, DelWorkload, SnapshotSent]


# -- protobuf wire format -------------------------------------------------------------------

def _varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # negative int32/int64 are sent as 10-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _decode_error("invalid varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise _decode_error("invalid varint")


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _string_field(field: int, value: str) -> bytes:
    """A proto3 string: omitted when empty."""
    if not value:
        return b""
    raw = value.encode()
    return _key(field, _LENGTH) + _varint(len(raw)) + raw


def _message_field(field: int, body: bytes) -> bytes:
    """An embedded message: always present once set, even when empty (oneof members, set fields)."""
    return _key(field, _LENGTH) + _varint(len(body)) + body


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a message into (field number, wire type, value); fixed-width values are skipped."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise _decode_error("invalid tag value: 0")
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
            out.append((field, wire_type, value))
        elif wire_type == _LENGTH:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise _decode_error("buffer underflow")
            out.append((field, wire_type, data[pos:pos + size]))
            pos += size
        elif wire_type in (_FIXED64, _FIXED32):
            pos += 8 if wire_type == _FIXED64 else 4
            if pos > len(data):
                raise _decode_error("buffer underflow")
        elif wire_type > _FIXED32:
            raise _decode_error(f"invalid wire type value: {wire_type}")
        else:
            raise _decode_error(f"unsupported wire type value: {wire_type} (groups)")
    return out


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise _decode_error("string field is not length-delimited")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise _decode_error("invalid string value: data is not UTF-8 encoded") from exc


def _body(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise _decode_error("message field is not length-delimited")
    return value


def _strings(data: bytes) -> dict[int, str]:
    """The string fields of a message whose fields are all strings (last occurrence wins)."""
    return {field: _text(value) for field, wire_type, value in _fields(data) if wire_type == _LENGTH}


# -- messages -------------------------------------------------------------------------------

def encode_hello(hello: ZdsHello) -> bytes:
    return _key(1, _VARINT) + _varint(hello.version) if hello.version else b""


def decode_hello(data: bytes) -> ZdsHello:
    version = 0
    for field, wire_type, value in _fields(data):
        if field == 1 and wire_type == _VARINT:
            assert isinstance(value, int)
            version = value
    return ZdsHello(version)


def _encode_info(info: WorkloadInfo) -> bytes:
    return (_string_field(1, info.name) + _string_field(2, info.namespace)
            + _string_field(3, info.service_account))


def encode_request(request: WorkloadRequest) -> bytes:
    if isinstance(request, AddWorkload):
        body = _string_field(1, request.uid)
        if request.workload_info is not None:
            body += _message_field(2, _encode_info(request.workload_info))
        return _message_field(1, body)
    if isinstance(request, KeepWorkload):
        return _message_field(5, _string_field(1, request.uid))
    if isinstance(request, DelWorkload):
        return _message_field(2, _string_field(2, request.uid))
    if isinstance(request, SnapshotSent):
        return _message_field(3, b"")
    raise TypeError(f"not a WorkloadRequest: {request!r}")


def _decode_add(body: bytes) -> AddWorkload:
    uid, info = "", None
    for field, wire_type, value in _fields(body):
        if field == 1 and wire_type == _LENGTH:
            uid = _text(value)
        elif field == 2 and wire_type == _LENGTH:
            strings = _strings(_body(value))
            info = WorkloadInfo(strings.get(1, ""), strings.get(2, ""), strings.get(3, ""))
    return AddWorkload(uid, info)


def decode_request(data: bytes) -> WorkloadRequest:
    request: WorkloadRequest | None = None
    for field, wire_type, value in _fields(data):
        if wire_type != _LENGTH:
            continue
        body = _body(value)
        if field == 1:
            request = _decode_add(body)
        elif field == 5:
            request = KeepWorkload(_strings(body).get(1, ""))
        elif field == 2:
            request = DelWorkload(_strings(body).get(2, ""))
        elif field == 3:
            request = SnapshotSent()
    if request is None:
        raise ZdsError("no payload")
    return request


def encode_response(ack: Ack) -> bytes:
    return _message_field(1, _string_field(1, ack.error))


def decode_response(data: bytes) -> Ack:
    ack: Ack | None = None
    for field, wire_type, value in _fields(data):
        if field == 1 and wire_type == _LENGTH:
            ack = Ack(_strings(_body(value)).get(1, ""))
    if ack is None:
        raise ZdsError("no payload")
    return ack


# -- one message per datagram, fds by SCM_RIGHTS ---------------------------------------------

def close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % array.array("i").itemsize
            fds.extend(array.array("i", payload[:usable]))
    return fds


async def send_datagram(sock: trio.socket.SocketType, data: bytes, fds: Sequence[int] = ()) -> None:
    """Send one message as one datagram, with `fds` attached by SCM_RIGHTS."""
    ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    try:
        await sock.sendmsg([data], ancdata)
    except OSError as exc:
        raise ZdsError(f"write failed: {exc}") from exc


async def receive_datagram(sock: trio.socket.SocketType) -> tuple[bytes, list[int]]:
    """Receive one datagram and the fds that came with it (close-on-exec; the caller owns them).

    A message longer than MAX_MESSAGE or with more fds than there is room for is an error (its
    fds are closed), worded as ztunnel's for both. A closed connection raises ZdsClosed.
    """
    try:
        data, ancdata, flags, _ = await sock.recvmsg(
            MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize), socket.MSG_CMSG_CLOEXEC)
    except OSError as exc:
        raise ZdsError(f"read failed: {exc}") from exc
    fds = _received_fds(ancdata)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        close_fds(fds)
        raise ZdsError("received truncated message")
    if not data and not fds:
        raise ZdsClosed("connection closed by peer")
    return data, fds


def claim_fds(request: WorkloadRequest, fds: list[int]) -> int | None:
    """Apply ztunnel's rules to the fds that came with `request`: the netns fd of an Add, or None.

    No message carries more than one fd ("Expected 1 FD, got N"); an Add exactly one ("No control
    message" if none); any other message none ("Unexpected control message"). On error every
    received fd is closed.
    """
    _at_most_one_fd(fds)
    if isinstance(request, AddWorkload):
        if not fds:
            raise ZdsError("No control message")
        return fds[0]
    if fds:
        close_fds(fds)
        raise ZdsError("Unexpected control message")
    return None


def _at_most_one_fd(fds: list[int]) -> None:
    if len(fds) > 1:
        close_fds(fds)
        raise ZdsError(f"Expected 1 FD, got {len(fds)}")


def _no_fds(fds: list[int]) -> None:
    if fds:
        close_fds(fds)
        raise ZdsError("Unexpected control message")


async def send_hello(sock: trio.socket.SocketType, hello: ZdsHello = ZdsHello()) -> None:
    await send_datagram(sock, encode_hello(hello))


async def receive_hello(sock: trio.socket.SocketType) -> ZdsHello:
    data, fds = await receive_datagram(sock)
    _no_fds(fds)
    return decode_hello(data)


async def send_request(sock: trio.socket.SocketType, request: WorkloadRequest,
                       netns_fd: int | None = None) -> None:
    """Send a request; an AddWorkload must come with the pod's netns fd, nothing else may."""
    if isinstance(request, AddWorkload) != (netns_fd is not None):
        raise ValueError("AddWorkload, and only AddWorkload, carries a netns fd")
    await send_datagram(sock, encode_request(request), () if netns_fd is None else (netns_fd,))


async def receive_request(sock: trio.socket.SocketType) -> tuple[WorkloadRequest, int | None]:
    """Receive a request and, for an Add, the netns fd it carried (the caller closes it).

    The fds are counted before the message is decoded, as ztunnel does.
    """
    data, fds = await receive_datagram(sock)
    _at_most_one_fd(fds)
    try:
        request = decode_request(data)
    except ZdsError:
        close_fds(fds)
        raise
    return request, claim_fds(request, fds)


async def send_ack(sock: trio.socket.SocketType, error: str = "") -> None:
    await send_datagram(sock, encode_response(Ack(error)))


async def receive_ack(sock: trio.socket.SocketType) -> Ack:
    data, fds = await receive_datagram(sock)
    _no_fds(fds)
    return decode_response(data)
