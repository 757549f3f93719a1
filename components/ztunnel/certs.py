"""Workload certificates for the identities of the pods on this node (ztunnel's SecretManager).

One entry per identity, in one of three states: Initializing (no certificate yet, a fetch is
queued or running), Available (a certificate, renewed at half its life) or Unavailable (the last
fetch failed and there is no valid certificate). Fetches run in the background, at most
`concurrency` at a time, most urgent first: RealTime (a connection is waiting), Warmup (a local
HBONE workload appeared in the config), Background (renewal). A failed fetch is retried per
identity with exponential backoff (1 s, doubling, ±20 %, at most 150 s, as ztunnel's backoff
whose first interval is 1 s) and never later than the current certificate's expiry; a renewal
failure keeps the still-valid certificate (istio/istio#56452). Identities no local workload
uses any more are forgotten.
"""

from __future__ import annotations

import base64
import datetime
import logging
import random
import ssl
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import trio

from components.common import tls
from components.common.caclient import WorkloadCertificate
from components.common.pki import load_certificates
from components.common.tls import Identity

log = logging.getLogger("ztunnel.identity")

REALTIME = 2
WARMUP = 1
BACKGROUND = 0

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 150.0
BACKOFF_MULTIPLIER = 2.0
BACKOFF_JITTER = 0.2
DEFAULT_CONCURRENCY = 8
FETCH_WAIT = 15.0  # longer than the CA client's own 10 s deadline

INITIALIZING = "Initializing"
AVAILABLE = "Available"
UNAVAILABLE = "Unavailable"
FORGOTTEN = "the identity is no longer needed"

Fetcher = Callable[[Identity], Awaitable[WorkloadCertificate]]
WallClock = Callable[[], datetime.datetime]


class CertificateUnavailable(Exception):
    """No certificate for an identity: the text is the last fetch's error."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class ManagedCertificate:
    """A certificate with the TLS contexts built from it once (building one writes temp files)."""

    def __init__(self, cert: WorkloadCertificate) -> None:
        self.cert = cert
        self._client: ssl.SSLContext | None = None
        self._server: ssl.SSLContext | None = None

    @property
    def identity(self) -> Identity:
        return self.cert.identity

    def client_context(self) -> ssl.SSLContext:
        if self._client is None:
            self._client = tls.client_context(self.cert.chain_pem, self.cert.key_pem, self.cert.root_pem)
        return self._client

    def server_context(self) -> ssl.SSLContext:
        if self._server is None:
            self._server = tls.server_context(self.cert.chain_pem, self.cert.key_pem, self.cert.root_pem)
        return self._server


@dataclass
class _Entry:
    identity: Identity
    priority: int
    due: float                                  # trio time of the next fetch
    current: ManagedCertificate | None = None
    error: str | None = None
    fetching: bool = False
    initialized: bool = False                   # a fetch finished at least once
    backoff: float = BACKOFF_INITIAL
    expires: float | None = None                # trio time the current certificate expires
    changed: trio.Event = field(default_factory=trio.Event)

    @property
    def state(self) -> str:
        if self.current is not None:
            return AVAILABLE
        if not self.initialized:
            return INITIALIZING
        return UNAVAILABLE

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class CertManager:
    """Fetch, cache, renew and forget workload certificates; run `run()` in a nursery."""

    def __init__(self, fetcher: Fetcher, *, concurrency: int = DEFAULT_CONCURRENCY,
                 wall_clock: WallClock = _utcnow, rng: random.Random | None = None) -> None:
        self._fetcher = fetcher
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._entries: dict[Identity, _Entry] = {}
        self._limiter = trio.Semaphore(concurrency)
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    # The API

    async def fetch(self, identity: Identity, timeout: float = FETCH_WAIT) -> ManagedCertificate:
        """A valid certificate for `identity`, waiting (up to `timeout`) for the first fetch.

        Raises CertificateUnavailable with the CA's error when there is none.
        """
        with trio.move_on_after(timeout):
            return await self._wait(identity)
        raise CertificateUnavailable(f"timed out waiting for a certificate for {identity}")

    async def _wait(self, identity: Identity) -> ManagedCertificate:
        entry = self._ensure(identity, REALTIME)
        while True:
            if entry.current is not None:
                return entry.current
            if entry.initialized and not entry.fetching:
                raise CertificateUnavailable(entry.error or "certificate unavailable")
            changed = entry.changed
            await changed.wait()
            if self._entries.get(identity) is not entry:
                raise CertificateUnavailable(FORGOTTEN)

    def prefetch(self, identity: Identity) -> None:
        """Start fetching a certificate someone will soon need (Warmup)."""
        self._ensure(identity, WARMUP)

    def retain(self, identities: Iterable[Identity]) -> None:
        """Forget every identity not in `identities`; its waiters fail."""
        keep = set(identities)
        for identity in [i for i in self._entries if i not in keep]:
            entry = self._entries.pop(identity)
            log.info("identity %s no longer needed, forgetting its certificate", identity)
            entry.error = FORGOTTEN
            entry.notify()

    def get(self, identity: Identity) -> ManagedCertificate | None:
        entry = self._entries.get(identity)
        return entry.current if entry is not None else None

    def identities(self) -> list[Identity]:
        return sorted(self._entries)

    # The worker

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                self._expire()
                now = trio.current_time()
                due = sorted((e for e in self._entries.values() if not e.fetching and e.due <= now),
                             key=lambda e: (-e.priority, e.due))
                for entry in due:
                    if self._limiter.value == 0:
                        break
                    await self._limiter.acquire()
                    entry.fetching = True
                    nursery.start_soon(self._fetch, entry)
                next_due = min((e.due for e in self._entries.values() if not e.fetching), default=None)
                if next_due is not None and self._limiter.value == 0:
                    next_due = None
                with trio.move_on_at(next_due if next_due is not None else float("inf")):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _ensure(self, identity: Identity, priority: int) -> _Entry:
        entry = self._entries.get(identity)
        now = trio.current_time()
        if entry is None:
            entry = self._entries[identity] = _Entry(identity, priority, now)
        elif not entry.initialized and priority > entry.priority:
            # The first fetch has not finished: it moves up the queue. (After a failure the
            # retry keeps its backoff, and callers get the error meanwhile, as in ztunnel.)
            entry.priority = priority
        self._wake.set()
        return entry

    def _expire(self) -> None:
        now = trio.current_time()
        for entry in self._entries.values():
            if entry.current is not None and entry.expires is not None and entry.expires <= now:
                log.warning("certificate for %s expired", entry.identity)
                entry.current = None
                entry.error = entry.error or "certificate expired"
                entry.notify()

    def _in_trio_time(self, when: datetime.datetime) -> float:
        return trio.current_time() + (when - self._wall_clock()).total_seconds()

    def _next_backoff(self, entry: _Entry) -> float:
        delay = entry.backoff * self._rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
        entry.backoff = min(entry.backoff * BACKOFF_MULTIPLIER, BACKOFF_MAX)
        return min(delay, BACKOFF_MAX)

    async def _fetch(self, entry: _Entry) -> None:
        try:
            try:
                cert = await self._fetcher(entry.identity)
            except Exception as exc:  # noqa: BLE001 - any failure is the identity's state
                self._failed(entry, str(exc) or type(exc).__name__)
            else:
                self._succeeded(entry, cert)
        finally:
            entry.fetching = False
            entry.initialized = True
            entry.notify()
            self._limiter.release()
            self._wake.set()

    def _succeeded(self, entry: _Entry, cert: WorkloadCertificate) -> None:
        if self._entries.get(entry.identity) is not entry:
            return
        entry.current = ManagedCertificate(cert)
        entry.error = None
        entry.backoff = BACKOFF_INITIAL
        entry.priority = BACKGROUND
        entry.expires = self._in_trio_time(cert.not_after)
        entry.due = max(trio.current_time(), self._in_trio_time(cert.refresh_at))
        log.debug("certificate for %s fetched, renewing at %s", entry.identity, cert.refresh_at)

    def _failed(self, entry: _Entry, error: str) -> None:
        if self._entries.get(entry.identity) is not entry:
            return
        delay = self._next_backoff(entry)
        now = trio.current_time()
        entry.error = error
        entry.due = now + delay
        valid = entry.current is not None and entry.expires is not None and entry.expires > now
        if valid:
            assert entry.expires is not None
            entry.due = min(entry.due, entry.expires)
            log.info("certificate renewal failed for %s (%s); retaining existing valid certificate until %s; "
                     "next retry in %.1fs", entry.identity, error, entry.current.cert.not_after.isoformat(),
                     entry.due - now)
        else:
            entry.current = None
            log.warning("certificate fetch failed for %s (%s) and no valid existing certificate; will retry in "
                        "%.1fs (backoff capped at %.0fs)", entry.identity, error, delay, BACKOFF_MAX)

    # /config_dump

    def dump(self) -> list[dict[str, Any]]:
        """`certificates` of ztunnel's config dump, as `istioctl ztunnel-config certificates` reads it."""
        result = []
        for identity in sorted(self._entries):
            entry = self._entries[identity]
            item: dict[str, Any] = {"identity": str(identity), "state": entry.state,
                                    "certChain": [], "rootCerts": []}
            if entry.current is None and entry.initialized:
                item["state"] = f"{UNAVAILABLE}: {entry.error}"
            if entry.current is not None:
                pems = entry.current.cert.chain_pems
                chain = pems[:-1] if len(pems) > 1 else pems
                item["certChain"] = [_dump_cert(pem) for pem in chain]
                item["rootCerts"] = [_dump_cert(pem) for pem in pems[-1:]] if len(pems) > 1 else []
            result.append(item)
        return result


def _rfc3339(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump_cert(pem: bytes) -> dict[str, str]:
    cert = load_certificates(pem)[0]
    return {"pem": base64.b64encode(pem).decode(), "serialNumber": str(cert.serial_number),
            "validFrom": _rfc3339(cert.not_valid_before_utc),
            "expirationTime": _rfc3339(cert.not_valid_after_utc)}
