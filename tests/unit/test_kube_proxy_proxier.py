"""The proxier's loop with the iptables and conntrack layers replaced by recorders."""

from __future__ import annotations

import logging

import trio

from components.kube_proxy.conntrack import Stale
from components.kube_proxy.proxier import Proxier
from components.kube_proxy.rules import NAT, Ruleset
from components.kube_proxy.structured import duration, kv

SERVICE = {"metadata": {"namespace": "kube-system", "name": "kube-dns"},
           "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}
ENDPOINTS = {"metadata": {"namespace": "kube-system", "name": "kube-dns"},
             "subsets": [{"addresses": [{"ip": "10.244.0.3"}], "ports": [{"name": "dns", "port": 53}]}]}


class Recorder:
    def __init__(self, fail: int = 0):
        self.rulesets: list[Ruleset] = []
        self.cleared: list[list[Stale]] = []
        self.fail = fail

    async def apply(self, ruleset: Ruleset) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("can't commit: Resource temporarily unavailable")
        self.rulesets.append(ruleset)

    async def clear(self, stale: list[Stale]) -> int:
        self.cleared.append(stale)
        return 1

    def proxier(self, **kwargs) -> Proxier:
        return Proxier("10.244.0.0/16", apply_rules=self.apply, clear_conntrack=self.clear, **kwargs)


def nat_chains(ruleset: Ruleset) -> set[str]:
    return {name for name in ruleset.tables[NAT] if name.startswith(("KUBE-SVC-", "KUBE-SEP-"))}


async def test_syncs_once_both_caches_synced_and_on_each_change(autojump_clock):
    recorder = Recorder()
    proxier = recorder.proxier()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proxier.sync_loop)
        proxier.on_event("Service", "SYNC", {"items": [SERVICE]})
        await trio.sleep(5)
        assert recorder.rulesets == []
        proxier.on_event("Endpoints", "SYNC", {"items": []})
        await trio.sleep(0.01)
        assert len(recorder.rulesets) == 1
        assert "has no endpoints" in recorder.rulesets[0].save()
        proxier.on_event("Endpoints", "ADDED", ENDPOINTS)
        await trio.sleep(1.5)
        assert len(recorder.rulesets) == 2
        assert "--to-destination 10.244.0.3:53" in recorder.rulesets[1].save()
        assert recorder.cleared == [[Stale("10.96.0.10", 53)]]
        proxier.on_event("Endpoints", "DELETED", ENDPOINTS)
        await trio.sleep(1.5)
        assert nat_chains(recorder.rulesets[-1]) == set()
        assert recorder.cleared[-1] == [Stale("10.96.0.10", 53, "10.244.0.3")]
        nursery.cancel_scope.cancel()


async def test_bursts_are_rate_limited_by_min_sync_period(autojump_clock):
    recorder = Recorder()
    proxier = recorder.proxier(min_sync_period=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proxier.sync_loop)
        proxier.on_event("Service", "SYNC", {"items": []})
        proxier.on_event("Endpoints", "SYNC", {"items": []})
        await trio.sleep(0.01)
        start = trio.current_time()
        for _ in range(10):
            proxier.on_event("Service", "MODIFIED", SERVICE)
            await trio.sleep(0.05)
        await trio.sleep(2)
        assert len(recorder.rulesets) == 2      # the first sync, then one for the whole burst
        assert trio.current_time() - start >= 1.0
        nursery.cancel_scope.cancel()


async def test_periodic_resync_and_retry_after_failure(autojump_clock, caplog):
    recorder = Recorder(fail=1)
    proxier = recorder.proxier(min_sync_period=1.0, sync_period=30.0)
    with caplog.at_level(logging.INFO):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proxier.sync_loop)
            proxier.on_event("Service", "SYNC", {"items": [SERVICE]})
            proxier.on_event("Endpoints", "SYNC", {"items": [ENDPOINTS]})
            await trio.sleep(0.5)
            assert recorder.rulesets == []
            await trio.sleep(1)
            assert len(recorder.rulesets) == 1      # retried after min_sync_period
            await trio.sleep(30)
            assert len(recorder.rulesets) == 2      # resynced without any change
            nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith('"Failed to sync iptables rules" err="can\'t commit') for m in messages)
    assert '"Adding new service port" portName="kube-system/kube-dns:dns" servicePort="10.96.0.10:53/UDP"' in messages
    assert any(m.startswith('"Reloading service iptables data" numServices=1 numEndpoints=1 ') for m in messages)
    assert '"Caches are synced" controller="service config"' in messages


def test_klog_structured_values():
    assert kv("Successfully retrieved node IP(s)", IPs=["172.18.0.3"]) == \
        '"Successfully retrieved node IP(s)" IPs=["172.18.0.3"]'
    assert kv("x", n=3, ok=True, s="a b") == '"x" n=3 ok=true s="a b"'
    assert duration(0.004851958) == "4.851958ms"
    assert duration(1.5) == "1.5s"
