"""DNS messages, the cluster cache, the TCP framing and the HTTP side ports (no sockets)."""

from __future__ import annotations

import logging
import re

import trio
import trio.testing
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from components.common.http import Request
from components.dns.__main__ import corefile
from components.dns.cluster import ClusterState
from components.dns.corelog import CoreDNSFormatter
from components.dns.message import format_error, pack_for, respond, truncate
from components.dns.metrics import Metrics
from components.dns.records import build
from components.dns.server import DnsServer, http_handler, log_line, split_address

PEER = ("10.244.1.3", 44215)


def service(name: str, ns: str, cluster_ip: str) -> dict:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]}}


def endpoints(name: str, ns: str, ips: list[str]) -> dict:
    return {"metadata": {"name": name, "namespace": ns},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": "http", "port": 80}]}]}


def synced_state() -> ClusterState:
    state = ClusterState()
    state.apply("Service", "SYNC", {"items": [service("httpbin", "ambient-demo", "10.96.12.34"),
                                              service("big", "ns", "None")]})
    state.apply("Endpoints", "SYNC", {"items": [
        endpoints("big", "ns", [f"10.244.1.{i}" for i in range(2, 80)])]})
    return state


def query(name: str, qtype: str = "A", bufsize: int | None = None) -> DNSRecord:
    request = DNSRecord.question(name, qtype)
    if bufsize:
        request.add_ar(EDNS0(udp_len=bufsize))
    return request


def test_reply_flags_match_coredns_for_cluster_names():
    reply = respond(synced_state().records(), query("httpbin.ambient-demo.svc.cluster.local"))
    assert (reply.header.qr, reply.header.aa, reply.header.rd, reply.header.ra) == (1, 1, 1, 0)
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["10.96.12.34"]


def test_nxdomain_reply_carries_the_soa():
    reply = respond(synced_state().records(), query("nothere.ambient-demo.svc.cluster.local"))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_unsynced_is_servfail():
    assert respond(None, query("httpbin.ambient-demo.svc.cluster.local")).header.rcode == RCODE.SERVFAIL


def test_other_opcodes_are_notimp():
    request = query("x.cluster.local")
    request.header.opcode = 5   # UPDATE
    assert respond(build([], []), request).header.rcode == RCODE.NOTIMP


def test_edns_is_echoed():
    reply = respond(build([], []), query("cluster.local", "SOA", bufsize=1232))
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]


def test_big_udp_answers_are_truncated_but_not_over_tcp():
    state = synced_state()
    request = query("big.ns.svc.cluster.local")
    reply = respond(state.records(), request)
    assert len(reply.rr) == 78
    short = DNSRecord.parse(pack_for(reply, request, "udp"))
    assert short.header.tc == 1 and short.rr == []
    assert len(DNSRecord.parse(pack_for(reply, request, "tcp")).rr) == 78
    roomy = query("big.ns.svc.cluster.local", bufsize=4096)
    assert len(DNSRecord.parse(pack_for(respond(state.records(), roomy), roomy, "udp")).rr) == 78
    assert truncate(reply).header.id == reply.header.id


def test_garbage_gets_formerr_if_the_header_parses():
    request = query("x.cluster.local")
    data = request.pack()[:14]
    reply = DNSRecord.parse(format_error(data))
    assert reply.header.rcode == RCODE.FORMERR and reply.header.id == request.header.id
    assert format_error(b"\x01") is None


def test_state_follows_sync_and_events():
    state = ClusterState()
    assert state.records() is None
    state.apply("Service", "SYNC", {"items": []})
    assert state.records() is None and not state.synced.is_set()
    state.apply("Endpoints", "SYNC", {"items": []})
    assert state.synced.is_set()
    name = "web.ns.svc.cluster.local."
    assert respond(state.records(), query(name)).header.rcode == RCODE.NXDOMAIN
    state.apply("Service", "ADDED", service("web", "ns", "10.96.0.7"))
    assert [str(rr.rdata) for rr in respond(state.records(), query(name)).rr] == ["10.96.0.7"]
    state.apply("Service", "MODIFIED", service("web", "ns", "10.96.0.8"))
    assert [str(rr.rdata) for rr in respond(state.records(), query(name)).rr] == ["10.96.0.8"]
    state.apply("Service", "DELETED", service("web", "ns", "10.96.0.8"))
    assert respond(state.records(), query(name)).header.rcode == RCODE.NXDOMAIN


def test_a_relist_replaces_the_cache():
    state = synced_state()
    state.apply("Service", "SYNC", {"items": [service("other", "ns", "10.96.0.9")]})
    assert respond(state.records(), query("httpbin.ambient-demo.svc.cluster.local")).header.rcode == RCODE.NXDOMAIN


def test_handle_counts_and_logs(caplog):
    metrics = Metrics("dns://:53")
    server = DnsServer(synced_state(), metrics, log_queries=True)
    request = query("httpbin.ambient-demo.svc.cluster.local")
    with caplog.at_level(logging.INFO, logger="query"):
        out = server.handle(request.pack(), "udp", PEER)
    assert DNSRecord.parse(out).header.id == request.header.id
    line = caplog.records[-1].getMessage()
    assert re.fullmatch(rf'10\.244\.1\.3:44215 - {request.header.id} "A IN httpbin\.ambient-demo\.svc\.cluster\.local\. '
                        rf'udp \d+ false 512" NOERROR qr,aa,rd \d+ \d+\.\d{{9}}s', line)
    text = metrics.exposition().decode()
    assert ('coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A",view="",zone="."} 1.0'
            in text)
    assert 'coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",server="dns://:53",view="",zone="."} 1.0' in text
    assert 'coredns_build_info{goversion="go1.20.7",revision="ae2bbc2",version="1.11.1"} 1.0' in text


def test_handle_ignores_responses():
    server = DnsServer(synced_state(), Metrics("dns://:53"))
    reply = respond(None, query("x.cluster.local"))
    assert server.handle(reply.pack(), "udp", PEER) is None


async def test_tcp_framing_serves_several_queries_on_one_connection():
    server = DnsServer(synced_state(), Metrics("dns://:53"))
    client, remote = trio.testing.memory_stream_pair()
    first, second = query("httpbin.ambient-demo.svc.cluster.local"), query("big.ns.svc.cluster.local")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.tcp_connection, remote)
        wire = b"".join(len(m).to_bytes(2, "big") + m for m in (first.pack(), second.pack()))
        await client.send_all(wire[:5])
        await client.send_all(wire[5:])
        await client.send_eof()
        data = b""
        while True:
            chunk = await client.receive_some(65536)
            if not chunk:
                break
            data += chunk
    replies = []
    while data:
        size = int.from_bytes(data[:2], "big")
        replies.append(DNSRecord.parse(data[2:2 + size]))
        data = data[2 + size:]
    assert [r.header.id for r in replies] == [first.header.id, second.header.id]
    assert len(replies[1].rr) == 78 and replies[1].header.tc == 0


async def test_ready_waits_for_both_syncs(caplog):
    state = ClusterState()
    handler = http_handler(state, Metrics("dns://:53"))
    with caplog.at_level(logging.INFO):
        response = await handler(Request("GET", "/ready", []))
    assert response.status == 503
    assert '[INFO] plugin/ready: Still waiting on: "kubernetes"' in [CoreDNSFormatter().format(r) for r in caplog.records]
    state.apply("Service", "SYNC", {"items": []})
    assert (await handler(Request("GET", "/ready", []))).status == 503
    state.apply("Endpoints", "SYNC", {"items": []})
    assert (await handler(Request("GET", "/ready", []))).status == 200
    assert (await handler(Request("GET", "/health", []))).body == b"OK"
    assert b"coredns_build_info" in (await handler(Request("GET", "/metrics", []))).body


def test_coredns_log_format():
    formatter = CoreDNSFormatter()
    record = logging.LogRecord("plugin/reload", logging.INFO, __file__, 1, "Running configuration SHA512 = %s",
                               ("ab",), None)
    assert formatter.format(record) == "[INFO] plugin/reload: Running configuration SHA512 = ab"
    warning = logging.LogRecord("plugin/kubernetes", logging.WARNING, __file__, 1, "starting server", (), None)
    assert formatter.format(warning) == "[WARNING] plugin/kubernetes: starting server"


def test_corefile_and_addresses():
    text = corefile(53, "cluster.local", 5, False)
    assert text.startswith(".:53 {\n")
    assert "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n" in text and "       ttl 5\n" in text
    assert split_address("0.0.0.0:53") == ("0.0.0.0", 53)
    assert split_address("[::]:5353") == ("::", 5353)


def test_log_line_reports_do_bit_and_bufsize():
    request = query("a.b.svc.cluster.local", "AAAA", bufsize=1232)
    reply = respond(build([], []), request)
    line = log_line(PEER, "tcp", request, 60, reply, 120, 0.00025)
    assert line.endswith('"AAAA IN a.b.svc.cluster.local. tcp 60 false 1232" NXDOMAIN qr,aa,rd 120 0.000250000s')
