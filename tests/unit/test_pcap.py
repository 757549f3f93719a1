"""`ambient pcap`: the tcpdump command line and reading the pcap it writes."""

from __future__ import annotations

import struct

import pytest

from harness.pcap import PcapError, count_records, tcpdump_argv


def test_tcpdump_writes_packet_by_packet_to_stdout_with_limits_and_filter() -> None:
    assert tcpdump_argv("eth0", None, None, []) == ["tcpdump", "-i", "eth0", "-nn", "--immediate-mode", "-U", "-s", "0",
                                                    "-w", "-"]
    assert tcpdump_argv("eth0", 5, None, ["tcp", "port", "15008"])[-5:] == ["-c", "5", "tcp", "port", "15008"]
    timed = tcpdump_argv("eth0", None, 2.5, [])
    assert timed[:5] == ["timeout", "--signal=INT", "--foreground", "2.5", "tcpdump"]


def pcap_bytes(frames: list[bytes], order: str = "<") -> bytes:
    header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    return header + b"".join(struct.pack(order + "IIII", 0, 0, len(f), len(f)) + f for f in frames)


def test_records_are_counted_in_either_byte_order_and_other_files_are_refused() -> None:
    assert count_records(pcap_bytes([b"a" * 60, b"b" * 42, b"c"])) == 3
    assert count_records(pcap_bytes([b"a" * 60], order=">")) == 1
    assert count_records(pcap_bytes([])) == 0
    with pytest.raises(PcapError, match="not a pcap file"):
        count_records(b"<?xml version='1.0'?>" + b"\0" * 10)
