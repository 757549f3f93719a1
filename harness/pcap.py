"""`ambient pcap POD|NODE [FILE]`: a tcpdump capture on a pod's (or node's) interface, written as a
pcap file on the host for Wireshark.

tcpdump runs inside the pod's network namespace (entered as `kubectl exec` enters it) and writes
the capture to its stdout, which is copied into FILE here, so FILE is a path of the user's shell
whatever the pod's mount namespace holds. It runs until Ctrl-C (which tcpdump and this process
both receive: tcpdump flushes and prints its counts, then the file is closed), until `-c N`
packets, or until `--seconds S`.
"""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import trio

PCAP_HEADER = 24
RECORD_HEADER = 16
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}


class PcapError(Exception):
    """The capture could not run; the message says why."""


def tcpdump_argv(interface: str, count: int | None, seconds: float | None, bpf: list[str]) -> list[str]:
    """tcpdump writing a pcap stream to stdout, whole packets (-s 0), each as it arrives (without
    --immediate-mode the kernel hands packets over in blocks, and a Ctrl-C drops the last block)."""
    argv = ["tcpdump", "-i", interface, "-nn", "--immediate-mode", "-U", "-s", "0", "-w", "-"]
    if count is not None:
        argv += ["-c", str(count)]
    argv += bpf
    if seconds is not None:
        argv = ["timeout", "--signal=INT", "--foreground", f"{seconds:g}", *argv]
    return argv


def count_records(data: bytes) -> int:
    """The number of packets in a pcap file's bytes; PcapError if they are not a pcap file."""
    order = PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < PCAP_HEADER:
        raise PcapError("not a pcap file (bad magic number)")
    offset, packets = PCAP_HEADER, 0
    while offset + RECORD_HEADER <= len(data):
        length = struct.unpack(order + "I", data[offset + 8:offset + 12])[0]
        offset += RECORD_HEADER + length
        packets += 1
    return packets


async def _ignore(interrupts: AsyncIterator[int]) -> None:
    """Consume the signals (a receiver re-raises the ones left unread when it closes)."""
    async for _ in interrupts:
        pass


async def capture(enter_argv: list[str], target: str, interface: str, path: Path, *, count: int | None = None,
                  seconds: float | None = None, bpf: list[str] | None = None) -> int:
    """Capture with `enter_argv` (how to enter the pod or node) + tcpdump into `path`; the exit code."""
    argv = enter_argv + tcpdump_argv(interface, count, seconds, bpf or [])
    try:
        output = path.open("wb")
    except OSError as exc:
        raise PcapError(f"cannot write {path}: {exc.strerror}") from exc
    with output:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT) as interrupts:
                nursery.start_soon(_ignore, interrupts)   # Ctrl-C is tcpdump's: it flushes and exits
                process = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
                assert process.stdout is not None
                async for chunk in process.stdout:
                    output.write(chunk)
                    output.flush()
                code = await process.wait()
                nursery.cancel_scope.cancel()
    data = path.read_bytes()
    if not data:
        path.unlink()
        raise PcapError(f"tcpdump on {target} ({interface}) wrote nothing (exit code {code}); nothing saved")
    packets = count_records(data)
    print(f"pcap: wrote {packets} packet{'s' if packets != 1 else ''} captured on {target} ({interface}) "
          f"to {path} (open it with Wireshark or `tcpdump -r {path}`)", file=sys.stderr, flush=True)
    return 0 if code in (0, 124, -signal.SIGINT, 128 + signal.SIGINT) else code
