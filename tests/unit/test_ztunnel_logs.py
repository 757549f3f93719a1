"""ztunnel's log lines, compared whole (with a fixed clock)."""

from __future__ import annotations

import datetime
import errno
import io
import logging
import os
from typing import Iterator

import pytest

from components.ztunnel import logs
from components.ztunnel.logs import AccessLog, Event
from components.ztunnel.metrics import labels_for
from components.ztunnel.rbac import AuthzLog, Connection
from tests.unit.test_ztunnel_metrics import HTTPBIN, HTTPBIN_ID, HTTPBIN_SERVICE, SLEEP, SLEEP_ID

T = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
STAMP = "2026-01-01T00:00:00.000000Z"


def line(event: Event) -> str:
    return event.line(T)


def test_timestamp_has_microseconds() -> None:
    assert Event(logging.INFO, "ztunnel::app", "hi").line(T + 1.25) == "2026-01-01T00:00:01.250000Z\tinfo\tapp\thi\t"


@pytest.mark.parametrize("address, component, target", [
    ("[::]:15008", "inbound", "proxy::inbound"),
    ("[::]:15006", "inbound plaintext", "proxy::inbound_passthrough"),
    ("[::]:15001", "outbound", "proxy::outbound"),
    ("127.0.0.1:15080", "socks5", "proxy::socks5"),
])
def test_listener_established(address: str, component: str, target: str) -> None:
    assert line(logs.listener_established(address, component, True)) == (
        f'{STAMP}\tinfo\t{target}\tlistener established\taddress={address} component="{component}" transparent=true')


def test_listener_component_must_be_known() -> None:
    with pytest.raises(ValueError):
        logs.listener_established("[::]:1", "dns", False)


OUTBOUND = AccessLog(
    "outbound", "10.0.2.3:41234", "10.0.2.2:15008", dst_hbone_addr="10.0.2.2:8080", src_workload="client",
    src_namespace="default", src_identity="spiffe://cluster.local/ns/default/sa/client",
    dst_service="server.default.svc.cluster.local", dst_workload="server", dst_namespace="default",
    dst_identity="spiffe://cluster.local/ns/default/sa/server")


def test_connection_complete_outbound() -> None:
    assert line(logs.connection_complete(OUTBOUND, 11, 22, 3)) == (
        f"{STAMP}\tinfo\taccess\tconnection complete\tsrc.addr=10.0.2.3:41234 src.workload=\"client\" "
        'src.namespace="default" src.identity="spiffe://cluster.local/ns/default/sa/client" '
        "dst.addr=10.0.2.2:15008 dst.hbone_addr=10.0.2.2:8080 dst.service=\"server.default.svc.cluster.local\" "
        'dst.workload="server" dst.namespace="default" dst.identity="spiffe://cluster.local/ns/default/sa/server" '
        'direction="outbound" bytes_sent=11 bytes_recv=22 duration="3ms"')


def test_connection_opened_is_debug() -> None:
    assert line(logs.connection_opened(AccessLog("inbound", "10.0.2.3:41234", "10.0.2.2:8080"))) == (
        f"{STAMP}\tdebug\taccess\tconnection opened\t"
        'src.addr=10.0.2.3:41234 dst.addr=10.0.2.2:8080 direction="inbound"')


def test_access_log_from_labels_both_reporters() -> None:
    """The same connection seen by both ztunnels: pod names, clusters, identities for mTLS, and
    the bytes un-flipped per side (ztunnel's simple_client_server_test: 11/22 then 22/11)."""
    source = labels_for("source", SLEEP, SLEEP_ID, HTTPBIN, HTTPBIN_SERVICE, None, "mutual_tls")
    outbound = AccessLog.from_labels(source, "10.244.1.9:40000", "10.244.2.5:15008", "10.244.2.5:8080",
                                     src_pod=SLEEP["name"], dst_pod=HTTPBIN["name"])
    assert line(logs.connection_complete(outbound, *logs.log_bytes("outbound", 11, 22), 15)) == (
        f"{STAMP}\tinfo\taccess\tconnection complete\tsrc.addr=10.244.1.9:40000 "
        'src.workload="sleep-7656cf8794-8fhdk" src.namespace="default" '
        'src.identity="spiffe://cluster.local/ns/default/sa/sleep" src.cluster="Kubernetes" '
        "dst.addr=10.244.2.5:15008 dst.hbone_addr=10.244.2.5:8080 dst.service=\"httpbin.default.svc.cluster.local\" "
        'dst.workload="httpbin-65975d4c6f-96kgw" dst.namespace="default" '
        'dst.identity="spiffe://cluster.local/ns/default/sa/httpbin" dst.cluster="Kubernetes" '
        'direction="outbound" bytes_sent=11 bytes_recv=22 duration="15ms"')
    destination = labels_for("destination", SLEEP, SLEEP_ID, HTTPBIN, None, HTTPBIN_ID, "mutual_tls")
    inbound = AccessLog.from_labels(destination, "10.244.1.9:40000", "10.244.2.5:15008", "10.244.2.5:8080",
                                    src_pod=SLEEP["name"], dst_pod=HTTPBIN["name"])
    assert line(logs.connection_complete(inbound, *logs.log_bytes("inbound", 11, 22), 14)).endswith(
        'dst.cluster="Kubernetes" direction="inbound" bytes_sent=22 bytes_recv=11 duration="14ms"')


def test_denied_plaintext_inbound() -> None:
    """Unknown source and no mTLS: no workload, namespace or identities; error level."""
    labels = labels_for("destination", None, None, HTTPBIN, None, None, "unknown").with_flags("DENY")
    access = AccessLog.from_labels(labels, "10.244.0.1:51234", "10.244.2.5:8080", dst_pod=HTTPBIN["name"])
    error = "connection closed due to policy rejection: allow policies exist, but none allowed"
    assert line(logs.connection_complete(access, 0, 0, 0, error)) == (
        f"{STAMP}\terror\taccess\tconnection complete\tsrc.addr=10.244.0.1:51234 dst.addr=10.244.2.5:8080 "
        'dst.workload="httpbin-65975d4c6f-96kgw" dst.namespace="default" dst.cluster="Kubernetes" '
        'direction="inbound" bytes_sent=0 bytes_recv=0 duration="0ms" '
        'error="connection closed due to policy rejection: allow policies exist, but none allowed"')


def test_workload_falls_back_to_canonical_service() -> None:
    labels = labels_for("source", SLEEP, SLEEP_ID, None, None, None, "unknown")
    access = AccessLog.from_labels(labels, "10.244.1.9:40000", "1.1.1.1:443")
    assert (access.src_workload, access.src_identity, access.dst_workload) == ("sleep", None, None)


def test_connection_failed() -> None:
    assert line(logs.connection_failed("10.244.1.9:40000", "10.244.2.5:15008", "inbound",
                                       logs.SELF_CALL)) == (
        f"{STAMP}\twarn\taccess\tconnection failed\tsrc.addr=10.244.1.9:40000 dst.addr=10.244.2.5:15008 "
        'direction="inbound" error="attempted recursive call to ourselves"')


def test_inpod_state_manager_lines() -> None:
    uid = "9fbd4772-7d01-4f78-9e03-ea84e56165bd"
    assert [line(e) for e in (logs.pod_received(uid, "httpbin-5c779fc757-9dxfm", "ambient-demo"),
                              logs.pod_keep(uid), logs.pod_deleted(uid), logs.snapshot_received(),
                              logs.handling_new_stream())] == [
        f'{STAMP}\tinfo\tinpod::statemanager\tpod received, starting proxy\tuid="{uid}" '
        'name="httpbin-5c779fc757-9dxfm" namespace="ambient-demo"',
        f'{STAMP}\tinfo\tinpod::statemanager\tpod keep received. will not delete it when snapshot is sent\t'
        f'uid="{uid}"',
        f'{STAMP}\tinfo\tinpod::statemanager\tpod delete request, shutting down proxy\tuid="{uid}"',
        f"{STAMP}\tinfo\tinpod::statemanager\treceived snapshot sent\t",
        f"{STAMP}\tinfo\tinpod::workloadmanager\thandling new stream\t",
    ]


def test_xds_response() -> None:
    assert line(logs.xds_response("type.googleapis.com/istio.workload.Address", 3, 1)) == (
        f'{STAMP}\tdebug\txds::client\treceived response\ttype_url="type.googleapis.com/istio.workload.Address" '
        "size=3 removes=1")
    assert line(logs.xds_response("type.googleapis.com/istio.security.Authorization", 1, 0, stream_id=3)) == (
        f"{STAMP}\tdebug\txds::client:xds{{id=3}}\treceived response\t"
        'type_url="type.googleapis.com/istio.security.Authorization" size=1 removes=0')


def test_spans_outermost_first() -> None:
    event = Event(logging.WARNING, "ztunnel::proxy::inbound", "failed to connect", (("err", "boom"),))
    nested = event.within(logs.proxy_span("default", "httpbin"),
                          logs.inbound_span("0af7651916cd43dd", "10.0.0.1:40000"))
    assert line(nested) == (
        f"{STAMP}\twarn\tproxy::inbound:proxy{{wl=default/httpbin}}:"
        'inbound{id=0af7651916cd43dd peer=10.0.0.1:40000}\tfailed to connect\terr="boom"')
    assert line(event.within(logs.outbound_span("ab12"))).startswith(
        f"{STAMP}\twarn\tproxy::inbound:outbound{{id=ab12}}\t")


def test_authz_decision_lines() -> None:
    entry = AuthzLog("debug", "deny policy match", "ns1/deny")
    assert line(logs.authz_decision(entry)) == f'{STAMP}\tdebug\tstate\tdeny policy match\tpolicy="ns1/deny"'
    assert line(logs.authz_decision(entry, info_logging=True)).startswith(f"{STAMP}\tinfo\tstate\t")
    assert line(logs.authz_decision(AuthzLog("debug", "no allow policies, allow"))) == (
        f"{STAMP}\tdebug\tstate\tno allow policies, allow\t")
    assert line(logs.authz_decision(AuthzLog("warn", "skipping unknown policy ns1/gone"))) == (
        f"{STAMP}\twarn\tstate\tskipping unknown policy ns1/gone\t")


def test_no_longer_allowed() -> None:
    conn = Connection("10.244.1.9", 40000, "10.244.2.5", 8080, SLEEP_ID)
    assert line(logs.no_longer_allowed(conn, "Kubernetes//Pod/default/httpbin")) == (
        f"{STAMP}\tinfo\tproxy::connection_manager\tconnection 10.244.1.9:40000"
        "(spiffe://cluster.local/ns/default/sa/sleep)->10.244.2.5:8080 (Kubernetes//Pod/default/httpbin) "
        "closed because it's no longer allowed after a policy update\t")
    plain = Connection("fd00::9", 40000, "fd00::5", 8080, None)
    assert logs.connection_display(plain) == "[fd00::9]:40000(None)->[fd00::5]:8080"


def test_values_print_as_rust_debug() -> None:
    event = Event(logging.INFO, "ztunnel::x", "m", (
        ("s", 'say "hi"\n\tback\\slash'), ("n", 42), ("b", False), ("addr", logs.Display("[::1]:80")),
        ("gone", None), ("ctl", "\x07")))
    assert line(event) == (
        f'{STAMP}\tinfo\tx\tm\ts="say \\"hi\\"\\n\\tback\\\\slash" n=42 b=false addr=[::1]:80 ctl="\\u{{7}}"')


def test_error_texts() -> None:
    assert logs.http_status(401) == "http status: 401 Unauthorized"
    assert logs.http_status(503) == "http status: 503 Service Unavailable"
    assert logs.ip_mismatch("10.0.0.1", "10.0.0.2") == "ip mismatch: 10.0.0.1 != 10.0.0.2"
    assert logs.no_healthy_upstream("10.96.0.20:80") == "no healthy upstream: 10.96.0.20:80"
    refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    assert logs.connection_failed_error(refused) == "connection failed: Connection refused (os error 111)"
    assert logs.network_policy_timeout("deadline has elapsed") == (
        "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008: deadline has elapsed")
    assert logs.socket_addr("10.0.0.1", 80) == "10.0.0.1:80"
    assert logs.socket_addr("::", 15008) == "[::]:15008"


@pytest.mark.parametrize("target, name", [
    ("ztunnel::proxy::inbound", "components.ztunnel.proxy.inbound"),
    ("ztunnel", "components.ztunnel"),
    ("access", "access"),
    ("hickory_server::server", "hickory_server.server"),
])
def test_targets_and_loggers(target: str, name: str) -> None:
    assert logs.logger_name(target) == name
    assert logs.target_of(name) == target


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.setup("info,access=debug,ztunnel::xds=debug", stream, clock=lambda: T)
    yield stream
    logs.apply_filter("")
    root.handlers[:], level = saved
    root.setLevel(level)


def test_setup_writes_filtered_lines(captured: io.StringIO) -> None:
    logs.emit(logs.listener_established("[::]:15001", "outbound", True))
    logs.emit(logs.connection_opened(AccessLog("outbound", "10.0.0.1:1", "10.0.0.2:2")))
    logs.emit(logs.xds_response("type.googleapis.com/istio.workload.Address", 2, 0))
    logs.emit(logs.authz_decision(AuthzLog("debug", "allow policy match", "a/b")))
    logging.getLogger("components.ztunnel.state").info("ready %s", "now")
    logging.getLogger("components.ztunnel.state").debug("hidden")
    assert captured.getvalue().splitlines() == [
        f'{STAMP}\tinfo\tproxy::outbound\tlistener established\taddress=[::]:15001 component="outbound" '
        "transparent=true",
        f'{STAMP}\tdebug\taccess\tconnection opened\tsrc.addr=10.0.0.1:1 dst.addr=10.0.0.2:2 direction="outbound"',
        f'{STAMP}\tdebug\txds::client\treceived response\ttype_url="type.googleapis.com/istio.workload.Address" '
        "size=2 removes=0",
        f"{STAMP}\tinfo\tstate\tready now\t",
    ]
    assert logs.enabled(logs.ACCESS, logging.DEBUG)
    assert not logs.enabled(logs.STATE, logging.DEBUG)


def test_filter_is_replaced_and_off_silences(captured: io.StringIO) -> None:
    logs.apply_filter("off,ztunnel::inpod=trace")
    logs.emit(logs.listener_established("[::]:15001", "outbound", True))
    logs.emit(logs.snapshot_received())
    assert not logs.enabled(logs.ACCESS, logging.DEBUG)
    assert captured.getvalue() == f"{STAMP}\tinfo\tinpod::statemanager\treceived snapshot sent\t\n"
