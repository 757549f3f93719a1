"""The plugin contract's pieces: the request body, the marker file; and reading the probe ipset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.cni import plugin
from components.cni.hostprobe import HostProbe
from components.cni.plugin import BadRequest

GOOD = {"Netns": "/proc/42/ns/net", "PodName": "sleep", "PodNamespace": "demo", "PodUID": "u", "IPs": ["10.244.1.5"]}


def test_add_event_is_parsed():
    assert plugin.parse_add_event(json.dumps(GOOD).encode()) == GOOD
    minimal = {k: GOOD[k] for k in ("Netns", "PodName", "PodNamespace")}
    assert plugin.parse_add_event(json.dumps(minimal).encode()) == minimal


@pytest.mark.parametrize("body, message", [
    (b"", "not a JSON object"),
    (b"{", "failed to parse"),
    (b"[]", "not a JSON object"),
    (json.dumps({**GOOD, "Netns": ""}).encode(), "misses Netns"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "PodNamespace"}).encode(), "misses PodNamespace"),
    (json.dumps({**GOOD, "IPs": "10.244.1.5"}).encode(), "IPs must be a list"),
    (json.dumps({**GOOD, "PodUID": 7}).encode(), "PodUID must be a string"),
])
def test_bad_add_events(body, message):
    with pytest.raises(BadRequest, match=message):
        plugin.parse_add_event(body)


def test_marker_file(tmp_path: Path):
    conf_dir = tmp_path / "etc" / "cni" / "net.d"
    path = plugin.write_marker(str(conf_dir), "/var/run/istio-cni/pluginevent.sock")
    assert path == str(conf_dir / "istio-cni.conf")
    assert json.loads(Path(path).read_text()) == {"type": "istio-cni",
                                                   "plugin_socket": "/var/run/istio-cni/pluginevent.sock"}
    assert [p.name for p in conf_dir.iterdir()] == ["istio-cni.conf"]
    plugin.remove_marker(str(conf_dir))
    plugin.remove_marker(str(conf_dir))
    assert not Path(path).exists()


def test_ipset_entries_are_read_with_their_owner(monkeypatch: pytest.MonkeyPatch):
    saved = ('create istio-inpod-probes-v4 hash:ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12 '
             'initval 0x9daeee40\n'
             'add istio-inpod-probes-v4 10.244.1.6 comment "uid-c"\n'
             'add istio-inpod-probes-v4 10.244.1.5 comment "uid-b"\n'
             'add istio-inpod-probes-v4 10.244.1.9\n')
    calls = []
    host = HostProbe("/proc/1/ns/net")

    def run(*args: str) -> str:
        calls.append(args)
        return saved if args[0] == "save" else ""

    monkeypatch.setattr(host, "_run", run)
    assert host.entries() == {"10.244.1.6": "uid-c", "10.244.1.5": "uid-b", "10.244.1.9": ""}
    assert host.remove("10.244.1.5", "uid-a") is False  # someone else's entry now (#52218)
    assert host.remove("10.244.1.5", "uid-b") is True
    assert calls[-1] == ("del", "istio-inpod-probes-v4", "10.244.1.5", "-exist")
    calls.clear()
    host.sync({"10.244.1.6": "uid-c", "10.244.1.7": "uid-d"})
    assert sorted(calls[1:]) == [("add", "istio-inpod-probes-v4", "10.244.1.7", "comment", "uid-d", "-exist"),
                                 ("del", "istio-inpod-probes-v4", "10.244.1.5", "-exist"),
                                 ("del", "istio-inpod-probes-v4", "10.244.1.9", "-exist")]
