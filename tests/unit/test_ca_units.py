"""The CA's small parts: Go durations, request decoding as protojson would, trusted accounts, flags."""

from __future__ import annotations

import json

import pytest
import trio

from components.ca.__main__ import parse_args
from components.ca.durations import format_duration, parse_duration
from components.ca.nodeauth import PodIndex, parse_accounts
from components.ca.service import CertificateRequest, decode_request
from components.ca.status import Refusal


@pytest.mark.parametrize("text, seconds", [("24h", 86400), ("2160h", 7776000), ("1h30m", 5400), ("90s", 90),
                                           ("1.5h", 5400), ("3600", 3600), ("500ms", 0.5)])
def test_go_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1d", "24hh", "1h x", "-"])
def test_bad_durations_are_go_errors(text):
    with pytest.raises(ValueError, match="time: invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(86400, "24h0m0s"), (7776001, "2160h0m1s"), (300, "5m0s"), (45, "45s"),
                                           (0, "0s"), (-3600, "-1h0m0s")])
def test_durations_print_as_go_does(seconds, text):
    assert format_duration(seconds) == text


def test_requests_decode_as_protojson_reads_them():
    body = json.dumps({"csr": "PEM", "validity_duration": "600", "metadata": {"ImpersonatedIdentity": "spiffe://x"}})
    assert decode_request(body.encode()) == CertificateRequest("PEM", 600, "spiffe://x")
    assert decode_request(b'{"csr": "PEM"}') == CertificateRequest("PEM", 0, "")
    # Struct.GetStringValue() of a non-string is "": no impersonation asked for.
    assert decode_request(b'{"metadata": {"ImpersonatedIdentity": 7}}').impersonated_identity == ""
    for bad in (b'{"validityDuration": true}', b'{"validityDuration": 1.5}', b'{"csr": 1}', b"null", b"\xff"):
        with pytest.raises(Refusal) as info:
            decode_request(bad)
        assert info.value.code == 3 and info.value.http_status == 400


def test_trusted_accounts_parse_as_ca_trusted_node_accounts():
    assert parse_accounts("istio-system/ztunnel, kube-system/ztunnel") == [("istio-system", "ztunnel"),
                                                                         ("kube-system", "ztunnel")]
    assert parse_accounts("") == []
    with pytest.raises(ValueError):
        parse_accounts("ztunnel")


def test_flags_default_to_istiods_settings():
    config = parse_args(["--api", "unix:/run/api.sock"])
    assert (config.listen, config.trust_domain, config.root_namespace) == ("0.0.0.0:15012", "cluster.local",
                                                                           "istio-system")
    assert config.trusted_node_accounts == [("istio-system", "ztunnel")]
    assert (config.default_ttl, config.max_ttl, config.audiences) == (86400, 7776000, ["istio-ca"])
    assert config.ready is None
    config = parse_args(["--api", "a:1", "--trusted-node-accounts", "", "--max-ttl", "48h", "--ready", ":15021",
                         "--audiences", "istio-ca,other"])
    assert config.trusted_node_accounts == [] and config.max_ttl == 172800
    assert config.ready == ":15021" and config.audiences == ["istio-ca", "other"]


def _pod(name: str, node: str, account: str = "sleep", phase: str = "Running") -> dict:
    return {"metadata": {"namespace": "default", "name": name, "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "serviceAccountName": account}, "status": {"phase": phase}}


def test_the_pod_index_follows_events():
    index = PodIndex()
    index.replace([_pod("a", "worker"), _pod("b", "worker2", phase="Failed")])
    assert index.on_node("default", "sleep", "worker") and not index.on_node("default", "sleep", "worker2")
    assert index.get("default", "b") is None
    index.apply("ADDED", _pod("c", "worker"))
    index.apply("DELETED", _pod("a", "worker"))
    assert index.on_node("default", "sleep", "worker")
    index.apply("MODIFIED", _pod("c", "worker", phase="Failed"))
    assert not index.on_node("default", "sleep", "worker")
    index.apply("MODIFIED", _pod("d", ""))
    assert index.get("default", "d") is not None and not index.on_node("default", "sleep", "")


async def test_common_http_survives_a_client_leaving_mid_body(nursery):
    """A CA request cancelled while its body was being sent used to take the apiserver's listener down."""
    from components.common import http

    async def handler(request: http.Request) -> http.Response:
        return http.Response.text("ok")

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(http.serve, listeners, handler)
    address = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"
    stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    await stream.send_all(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789")
    await stream.aclose()
    await trio.sleep(0.05)
    assert (await http.request(address, "GET", "/")).body == b"ok"
