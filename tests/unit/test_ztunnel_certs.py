"""The certificate manager against a fake CA, on trio's mock clock (reference 2.5)."""

from __future__ import annotations

import base64
import datetime
import random

import pytest
import trio

from components.common import pki
from components.common.caclient import CertificateRefused, WorkloadCertificate
from components.common.tls import Identity
from components.ztunnel.certs import (
    AVAILABLE, FORGOTTEN, CertificateUnavailable, CertManager,
)

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SLEEP = Identity("cluster.local", "default", "sleep")
HTTPBIN = Identity("cluster.local", "default", "httpbin")
TTL = datetime.timedelta(hours=24)


def wall() -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=trio.current_time())


@pytest.fixture(scope="module")
def root() -> pki.RootCA:
    return pki.RootCA.generate(now=EPOCH - datetime.timedelta(days=1))


class FakeCA:
    """Signs for any identity, or refuses while `refusing` is set; records each call's time."""

    def __init__(self, root: pki.RootCA, ttl: datetime.timedelta = TTL) -> None:
        self.root = root
        self.ttl = ttl
        self.calls: list[tuple[float, Identity]] = []
        self.refusing: str | None = None
        self.gate: trio.Event | None = None

    async def __call__(self, identity: Identity) -> WorkloadCertificate:
        self.calls.append((trio.current_time(), identity))
        if self.gate is not None:
            await self.gate.wait()
        await trio.sleep(0.01)
        if self.refusing:
            raise CertificateRefused(16, "Unauthenticated", self.refusing)
        issued = self.root.issue(str(identity), self.ttl, now=wall())
        return WorkloadCertificate(identity, issued.key_pem, (issued.cert_pem, self.root.cert_pem), issued.cert)


async def started(manager: CertManager, nursery: trio.Nursery) -> CertManager:
    await nursery.start(manager.run)
    return manager


async def test_fetch_waits_for_the_first_certificate_then_caches(root, autojump_clock):
    ca = FakeCA(root)
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall), nursery)
        first = await manager.fetch(SLEEP)
        assert first.identity == SLEEP and first.cert.identity == SLEEP
        assert await manager.fetch(SLEEP) is first
        assert len(ca.calls) == 1
        assert first.client_context() is first.client_context()
        nursery.cancel_scope.cancel()


async def test_renewal_at_half_life(root, autojump_clock):
    ca = FakeCA(root)
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall), nursery)
        first = await manager.fetch(SLEEP)
        refresh_in = (first.cert.refresh_at - wall()).total_seconds()
        # istiod backdates 2 minutes: half of 24h02m after not_before is ~11h59m from now.
        assert 11.9 * 3600 < refresh_in < 12 * 3600
        await trio.sleep(refresh_in - 1)
        assert len(ca.calls) == 1
        await trio.sleep(2)
        assert len(ca.calls) == 2
        renewed = manager.get(SLEEP)
        assert renewed is not first and renewed.cert.not_after > first.cert.not_after
        nursery.cancel_scope.cancel()


async def test_failed_renewal_keeps_the_valid_certificate_with_backoff(root, autojump_clock):
    ca = FakeCA(root, ttl=datetime.timedelta(hours=1))
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall, rng=random.Random(3)), nursery)
        first = await manager.fetch(SLEEP)
        ca.refusing = "request authenticate failure"
        await trio.sleep((first.cert.refresh_at - wall()).total_seconds() + 20)
        assert await manager.fetch(SLEEP) is first
        assert manager.dump()[0]["state"] == AVAILABLE
        times = [t for t, _ in ca.calls[1:]]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(gaps) >= 4
        # 1 s, 2 s, 4 s, 8 s ... each ±20 % (plus the fake CA's 10 ms).
        for gap, base in zip(gaps, (1, 2, 4, 8)):
            assert base * 0.8 <= gap <= base * 1.2 + 0.05
        # The retries go on, capped at 150 s, and never past the certificate's expiry.
        await trio.sleep((first.cert.not_after - wall()).total_seconds() - 1)
        gaps = [b - a for (a, _), (b, _) in zip(ca.calls, ca.calls[1:])]
        assert max(gaps[2:]) <= 150 * 1.2 + 0.05
        assert manager.get(SLEEP) is first
        await trio.sleep(2)
        assert manager.get(SLEEP) is None
        with pytest.raises(CertificateUnavailable, match="request authenticate failure"):
            await manager.fetch(SLEEP)
        ca.refusing = None
        await trio.sleep(200)
        assert (await manager.fetch(SLEEP)).cert.not_after > first.cert.not_after
        nursery.cancel_scope.cancel()


async def test_first_fetch_failure_is_reported_with_the_ca_message(root, autojump_clock):
    ca = FakeCA(root)
    ca.refusing = 'no instances of "default/sleep" found on node "worker"'
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall), nursery)
        with pytest.raises(CertificateUnavailable, match="no instances of"):
            await manager.fetch(SLEEP)
        state = manager.dump()[0]["state"]
        assert state.startswith("Unavailable: signing gRPC error (The request does not have valid authentication "
                                "credentials): no instances of")
        ca.refusing = None
        await trio.sleep(2)
        assert (await manager.fetch(SLEEP)).identity == SLEEP
        nursery.cancel_scope.cancel()


async def test_forgotten_identities_fail_their_waiters_and_leave_the_dump(root, autojump_clock):
    ca = FakeCA(root)
    ca.gate = trio.Event()
    errors = []

    async def waiter(manager):
        try:
            await manager.fetch(SLEEP)
        except CertificateUnavailable as exc:
            errors.append(str(exc))

    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall), nursery)
        nursery.start_soon(waiter, manager)
        await trio.sleep(1)
        manager.prefetch(HTTPBIN)
        manager.retain({HTTPBIN})
        await trio.sleep(1)
        assert errors == [FORGOTTEN]
        ca.gate.set()
        await manager.fetch(HTTPBIN)
        assert [d["identity"] for d in manager.dump()] == [str(HTTPBIN)]
        manager.retain(set())
        assert manager.dump() == []
        nursery.cancel_scope.cancel()


async def test_realtime_fetches_jump_the_queue(root, autojump_clock):
    ca = FakeCA(root)
    ca.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, concurrency=1, wall_clock=wall), nursery)
        manager.prefetch(Identity("cluster.local", "default", "a"))
        await trio.sleep(1)  # "a" is being fetched and holds the only slot
        manager.prefetch(Identity("cluster.local", "default", "b"))
        nursery.start_soon(manager.fetch, HTTPBIN)
        await trio.sleep(1)
        ca.gate.set()
        await trio.sleep(1)
        assert [i.service_account for _, i in ca.calls] == ["a", "httpbin", "b"]
        nursery.cancel_scope.cancel()


async def test_dump_shape(root, autojump_clock):
    ca = FakeCA(root)
    async with trio.open_nursery() as nursery:
        manager = await started(CertManager(ca, wall_clock=wall), nursery)
        cert = await manager.fetch(SLEEP)
        (entry,) = manager.dump()
        assert entry["identity"] == "spiffe://cluster.local/ns/default/sa/sleep" and entry["state"] == "Available"
        (leaf,) = entry["certChain"]
        assert leaf["serialNumber"] == str(cert.cert.cert.serial_number)
        assert base64.b64decode(leaf["pem"]) == cert.cert.cert_pem
        assert leaf["validFrom"] == "2025-12-31T23:58:00Z" and leaf["expirationTime"] == "2026-01-02T00:00:00Z"
        assert len(entry["rootCerts"]) == 1
        nursery.cancel_scope.cancel()

