"""HBONE's CONNECT as ztunnel builds it and the inbound answers as pure decisions (reference 1.3,
1.4)."""

from __future__ import annotations

import re
import struct
import socket

import pytest

from components.common.addresses import format_address
from components.ztunnel import hbone, sockets
from components.ztunnel.inbound import InboundRejected, build_inbound_request, guess_inbound_service
from components.ztunnel.state import ProxyState, Service, Workload, WorkloadInfo
from tests.unit.ztunnel_fixtures import config, service, workload

SLEEP = Workload.from_obj(workload("sleep-7d9c-abcde", "10.244.2.8", sa="sleep"))
HTTPBIN = workload("httpbin-1", "10.244.2.6", sa="httpbin")
SVC = service("httpbin", "10.96.0.5", {8000: 8080}, [(HTTPBIN, {8000: 8080})])
INFO = WorkloadInfo("httpbin-1", "default", "httpbin")


def test_connect_headers_are_exactly_baggage_forwarded_traceparent():
    trace = hbone.TraceParent(0x1234, 0xABCD)
    headers = hbone.connect_headers(SLEEP, ("10.244.2.8", 41234), Service.from_obj(SVC), trace)
    assert [name for name, _ in headers] == ["baggage", "forwarded", "traceparent"]
    values = dict(headers)
    assert values["baggage"] == ("k8s.cluster.name=Kubernetes,k8s.namespace.name=default,"
                                 "k8s.pod.name=sleep-7d9c,service.name=sleep-7d9c,service.version=v1")
    assert values["forwarded"] == 'for="10.244.2.8:41234";host=httpbin.default.svc.cluster.local'
    assert values["traceparent"] == "00-00000000000000000000000000001234-000000000000abcd-00"


def test_forwarded_without_service_and_for_ipv6():
    assert hbone.forwarded(("10.0.0.1", 5), None) == 'for="10.0.0.1:5"'
    assert hbone.forwarded(("fd00::1", 5), None) == 'for="[fd00::1]:5"'


def test_baggage_leaves_out_empty_entries_and_adds_locality():
    w = Workload.from_obj(workload("x-1", "10.0.0.1", canonicalRevision="", clusterId="",
                                   locality={"region": "eu", "zone": "eu-1"}))
    assert hbone.baggage(w) == ("k8s.namespace.name=default,k8s.pod.name=x,service.name=x,"
                                "cloud.region=eu,cloud.availability_zone=eu-1")


def test_traceparent_is_random_w3c_and_parses_back():
    a, b = hbone.TraceParent.new(), hbone.TraceParent.new()
    assert a != b
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", a.header())
    assert hbone.TraceParent.parse(a.header()) == a and len(a.id) == 32
    for bad in (None, "", "00-xyz", "00-" + "g" * 32 + "-" + "0" * 16 + "-00"):
        assert hbone.TraceParent.parse(bad) is None


def test_forwarded_host_parsing():
    assert hbone.parse_forwarded_host('for="1.2.3.4:5";host=web.ns.svc.cluster.local') == "web.ns.svc.cluster.local"
    assert hbone.parse_forwarded_host('for="1.2.3.4:5"; host="quoted"') == "quoted"
    assert hbone.parse_forwarded_host('for="1.2.3.4:5"') is None
    assert hbone.parse_forwarded_host("host=") is None
    assert hbone.parse_forwarded_host(None) is None


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1:8080", ("10.0.0.1", 8080, True)),
    ("[fd00::1]:80", ("fd00::1", 80, True)),
    ("httpbin.default.svc.cluster.local:8000", ("httpbin.default.svc.cluster.local", 8000, False)),
])
def test_authority_parsing(text, expected):
    authority = hbone.parse_authority(text)
    assert (authority.host, authority.port, authority.is_ip) == expected
    assert str(authority) == text


@pytest.mark.parametrize("text", [None, "", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:99999", "a:b:c",
                                  "[fd00::1]", "[nope]:80", "/path:80", "user@host:80", "host:8x"])
def test_bad_authorities(text):
    with pytest.raises(hbone.InvalidAuthority, match="no valid authority pseudo header"):
        hbone.parse_authority(text)


def test_status_text():
    assert hbone.status_text(401) == "401 Unauthorized"
    assert hbone.status_text(503) == "503 Service Unavailable"


# Inbound decisions, in ztunnel's order.

def inbound(method="CONNECT", authority="10.244.2.6:8080", dst=("10.244.2.6", 15008), local=True, **cfg):
    state = ProxyState(config([HTTPBIN, workload("sleep-1", "10.244.2.8")], [SVC], **cfg))
    workload_ = state.find_local(INFO, "node1") if local else None
    return build_inbound_request(state, workload_, INFO, dst, method, authority)


def test_inbound_accepts_and_targets_the_pod_ip():
    request = inbound()
    assert request.upstream == ("10.244.2.6", 8080)
    assert [s.name for s in request.services] == ["httpbin"]


def test_inbound_hostname_authority_resolves_the_service_port():
    assert inbound(authority="httpbin.default.svc.cluster.local:8000").upstream == ("10.244.2.6", 8080)


def rejected(**kwargs) -> tuple[int, str]:
    with pytest.raises(InboundRejected) as info:
        inbound(**kwargs)
    return info.value.status, str(info.value)


def test_inbound_rejections_in_order():
    assert rejected(method="GET", authority="junk") == (400, "expected method CONNECT, got GET")
    assert rejected(authority="junk", local=False) == (400, "no valid authority pseudo header: junk")
    assert rejected(authority="10.244.2.7:8080", local=False) == (
        503, "failed to fetch information about local workload: default/httpbin-1 (httpbin)")
    assert rejected(authority="10.244.2.7:8080") == (400, "ip mismatch: 10.244.2.6 != 10.244.2.7")
    assert rejected(authority="nosuch.default.svc.cluster.local:80") == (
        503, "no service or workload for hostname: nosuch.default.svc.cluster.local")
    assert rejected(authority="httpbin.default.svc.cluster.local:9999") == (
        503, "requested service httpbin.default.svc.cluster.local:9999 found, but cannot resolve port")
    for port in (15001, 15006, 15008, 15080):
        assert rejected(authority=f"10.244.2.6:{port}") == (503, "attempted recursive call to ourselves")


def test_inbound_waypoint_sandwich_is_not_an_ip_mismatch():
    target = workload("app-1", "10.244.2.50", waypoint={"destination": "/10.244.2.6", "hboneMtlsPort": 15008})
    state = ProxyState(config([HTTPBIN, target], [SVC]))
    local = state.find_local(INFO, "node1")
    assert build_inbound_request(state, local, INFO, ("10.244.2.6", 15008), "CONNECT",
                                 "10.244.2.50:80").upstream == ("10.244.2.6", 80)


def test_guess_inbound_service():
    state = ProxyState(config([HTTPBIN], [SVC, service("other", "10.96.0.6", {80: 9090}, [(HTTPBIN, {80: 9090})])]))
    local = state.workload_by_uid(HTTPBIN["uid"])
    services = state.services_for_workload(local)
    assert guess_inbound_service(services, "other.default.svc.cluster.local", 8080, local).name == "other"
    assert guess_inbound_service(services, None, 8080, local).name == "httpbin"
    assert guess_inbound_service(services, None, 9090, local).name == "other"
    assert guess_inbound_service(services, None, 1234, local) is None


# Socket addresses.

def test_original_dst_parsing():
    v4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 8080) + socket.inet_aton("10.96.0.5") + b"\0" * 8
    assert sockets.parse_original_dst(v4) == ("10.96.0.5", 8080)
    v6 = (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 443) + b"\0" * 4
          + socket.inet_pton(socket.AF_INET6, "fd00::5") + b"\0" * 4)
    assert sockets.parse_original_dst(v6) == ("fd00::5", 443)
    mapped = (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 80) + b"\0" * 4
              + socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.1") + b"\0" * 4)
    assert sockets.parse_original_dst(mapped) == ("10.0.0.1", 80)
    for bad in (b"", b"\x01", struct.pack("=H", 99) + b"\0" * 14):
        with pytest.raises(ValueError):
            sockets.parse_original_dst(bad)


def test_original_dst_falls_back_to_the_local_address():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        assert sockets.original_dst(server) is None
        assert sockets.original_dst_or_local(server) == listener.getsockname()
    finally:
        for s in (client, server, listener):
            s.close()


def test_canonical_and_format():
    assert sockets.canonical(("::ffff:10.0.0.1", 80, 0, 0)) == ("10.0.0.1", 80)
    assert sockets.canonical_ip("fd00::1") == "fd00::1"
    assert format_address(("fd00::1", 80)) == "[fd00::1]:80"
    assert format_address(("10.0.0.1", 80)) == "10.0.0.1:80"
