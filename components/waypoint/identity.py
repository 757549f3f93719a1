"""The waypoint's own certificate: fetched from the CA with its service account's token (no
impersonation: a waypoint is its own workload), renewed half way through its life, retried with
backoff while the CA cannot be reached. TLS contexts are rebuilt once per certificate."""

from __future__ import annotations

import datetime
import logging
import ssl
from typing import Awaitable, Callable

import trio

from components.common import caclient, tls
from components.common.caclient import WorkloadCertificate

log = logging.getLogger("waypoint.identity")

Fetcher = Callable[[], Awaitable[WorkloadCertificate]]
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 10.0


class OwnCertificate:
    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self.current: WorkloadCertificate | None = None
        self.server: ssl.SSLContext | None = None
        self.client: ssl.SSLContext | None = None
        self.error = ""
        self.ready = trio.Event()
        self.installed_at: datetime.datetime | None = None  # when `current` was installed
        self.generation = 0  # how many certificates have been installed

    def _install(self, cert: WorkloadCertificate) -> None:
        self.current = cert
        self.server = tls.server_context(cert.chain_pem, cert.key_pem, cert.root_pem)
        self.client = tls.client_context(cert.chain_pem, cert.key_pem, cert.root_pem)
        self.error = ""
        self.installed_at = datetime.datetime.now(datetime.timezone.utc)
        self.generation += 1
        self.ready.set()

    async def run(self) -> None:
        backoff = BACKOFF_INITIAL
        while True:
            try:
                cert = await self._fetcher()
            except (caclient.CAClientError, OSError, trio.BrokenResourceError) as exc:
                self.error = str(exc)
                log.warning("failed to fetch the waypoint's certificate: %s (retrying in %.1fs)", exc, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_INITIAL
            self._install(cert)
            log.info("certificate for %s valid until %s", cert.identity, cert.not_after.isoformat())
            wait = (cert.refresh_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            await trio.sleep(max(wait, 1.0))


def ca_fetcher(address: str, token_path: str, root_path: str, identity: str, ttl: int,
               cluster_id: str) -> Fetcher:
    """Fetch `identity` from the CA at `address`, re-reading the token the kubelet refreshes."""

    async def fetch() -> WorkloadCertificate:
        token = (await trio.Path(token_path).read_text()).strip()
        root = await trio.Path(root_path).read_bytes()
        return await caclient.fetch_certificate(address, root, token, identity, impersonate=False,
                                                ttl_seconds=ttl, cluster_id=cluster_id)
    return fetch
