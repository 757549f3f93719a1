"""tcpdump on a node's interface, read as it captures: TCP segments parsed from the pcap stream,
and the TLS records a direction of a connection carries.

    async with capture(cluster, "ambient-worker", veth) as packets:   # returns once tcpdump listens
        ...traffic...
        await packets.wait_until(lambda p: ..., timeout=10)
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import trio

from harness import podexec
from harness.cluster import Cluster

PCAP_HEADER = 24
RECORD_HEADER = 16
ETHERNET = 14
IPV4 = 0x0800
TCP = 6
SYN, FIN, RST = 0x02, 0x01, 0x04
TLS_CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
TLS_VERSIONS = {0x0301, 0x0303}


@dataclass(frozen=True)
class Segment:
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    flags: int
    payload: bytes


class Packets:
    """The TCP segments captured so far (IPv4 over Ethernet; anything else is skipped)."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._buffer = b""
        self._header: tuple[str, int] | None = None  # struct byte order, link type

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if self._header is None:
            if len(self._buffer) < PCAP_HEADER:
                return
            magic = self._buffer[:4]
            order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
            self._header = (order, struct.unpack(order + "I", self._buffer[20:24])[0])
            self._buffer = self._buffer[PCAP_HEADER:]
        order, linktype = self._header
        while len(self._buffer) >= RECORD_HEADER:
            length = struct.unpack(order + "I", self._buffer[8:12])[0]
            if len(self._buffer) < RECORD_HEADER + length:
                return
            frame = self._buffer[RECORD_HEADER:RECORD_HEADER + length]
            self._buffer = self._buffer[RECORD_HEADER + length:]
            if linktype == 1:
                self._parse_frame(frame)

    def _parse_frame(self, frame: bytes) -> None:
        if len(frame) < ETHERNET + 20 or struct.unpack("!H", frame[12:14])[0] != IPV4:
            return
        ip = frame[ETHERNET:]
        header_length = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != TCP:
            return
        tcp = ip[header_length:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        offset = (tcp[12] >> 4) * 4
        self.segments.append(Segment(".".join(map(str, ip[12:16])), sport, ".".join(map(str, ip[16:20])), dport,
                                     seq, tcp[13], bytes(tcp[offset:])))

    def between(self, ip_a: str, ip_b: str) -> list[Segment]:
        """Segments between two addresses, either way."""
        return [s for s in self.segments if {s.src, s.dst} == {ip_a, ip_b}]

    def stream(self, src: str, dst: str, dport: int | None = None, sport: int | None = None) -> bytes:
        """The bytes one direction carried (segments in capture order, retransmissions once)."""
        seen: set[tuple[int, int]] = set()
        data = b""
        for s in self.segments:
            if (s.src, s.dst) != (src, dst) or not s.payload:
                continue
            if (dport is not None and s.dport != dport) or (sport is not None and s.sport != sport):
                continue
            if (s.sport, s.seq) in seen:
                continue
            seen.add((s.sport, s.seq))
            data += s.payload
        return data

    async def wait_until(self, predicate: Callable[["Packets"], object], timeout: float) -> None:
        with trio.fail_after(timeout):
            while not predicate(self):
                await trio.sleep(0.02)


def tls_records(data: bytes) -> list[tuple[str, int, bytes]]:
    """(content type, length, first bytes) of each TLS record; ValueError if `data` is not TLS."""
    records = []
    while data:
        if len(data) < 5:
            raise ValueError(f"truncated TLS record header: {data!r}")
        kind, version, length = data[0], struct.unpack("!H", data[1:3])[0], struct.unpack("!H", data[3:5])[0]
        if kind not in TLS_CONTENT_TYPES or version not in TLS_VERSIONS:
            raise ValueError(f"not a TLS record: {data[:16]!r}")
        records.append((TLS_CONTENT_TYPES[kind], length, data[5:5 + min(length, 4)]))
        data = data[5 + length:]
    return records


@asynccontextmanager
async def capture(cluster: Cluster, node: str, interface: str, bpf: str = "tcp",
                  timeout: float = 60.0) -> AsyncIterator[Packets]:
    """Run tcpdump on `interface` of `node` (its netns) for the block; yields once it listens.

    tcpdump is a process of the run (entered through its pid 1) in the process group this starts,
    which is signalled at the end; `timeout` bounds the capture whatever happens (`--foreground`
    keeps it in that group).
    """
    tcpdump = ["tcpdump", "-i", interface, "-nn", "-U", "-s", "0", "-w", "-", bpf]
    argv = podexec.node_exec_argv(cluster.run, node, ["timeout", "--foreground", str(int(timeout)), *tcpdump])
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, start_new_session=True)
    packets = Packets()
    listening = trio.Event()
    errors: list[bytes] = []

    async def read_pcap() -> None:
        assert process.stdout is not None
        async for chunk in process.stdout:
            packets.feed(chunk)

    async def read_errors() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            errors.append(chunk)
            if b"listening on" in b"".join(errors):
                listening.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_pcap)
            nursery.start_soon(read_errors)
            with trio.move_on_after(10):
                await listening.wait()
            if not listening.is_set():
                raise AssertionError(f"tcpdump did not start on {node}/{interface}: {b''.join(errors).decode()}")
            try:
                yield packets
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
