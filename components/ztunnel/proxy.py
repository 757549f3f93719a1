"""The proxy ztunnel runs for one pod: its four listeners inside the pod's netns and their tasks.

`bind()` creates the listeners with the thread in the pod's netns (by the fd istio-cni sent):
15008 inbound HBONE, 15006 inbound plaintext and 15001 outbound, transparent, on `[::]`
(dual-stack) when the pod has IPv6 on its loopback, else `0.0.0.0`, and SOCKS5 on
`127.0.0.1:15080`; all with SO_REUSEPORT and SO_MARK 0x539. `run()` accepts on them until the
proxy is shut down: immediately when the pod is gone (its connections are cut, as the pod's
network is), or by draining (listeners closed at once, connections given a deadline) when
ztunnel itself stops. A failing connection never takes the proxy down.
"""

from __future__ import annotations

import errno
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import trio

from components.common.addresses import format_address
from components.common.h2conn import CLIENT_CONFIG, H2ClientConnection
from components.common.tls import TLSError, tls_connect
from components.ztunnel import logs, sockets
from components.ztunnel.certs import CertManager, CertificateUnavailable
from components.ztunnel.config import (
    HANDSHAKE_TIMEOUT, INBOUND_PLAINTEXT_PORT, INBOUND_PORT, LOCAL_WORKLOAD_WAIT, OUTBOUND_PORT, SOCKS5_PORT,
    Config,
)
from components.ztunnel.connections import ConnectionManager
from components.ztunnel.metrics import Metrics
from components.common.hbonepool import HbonePool, PoolKey
from components.ztunnel.results import IDENTITY_ERROR, NETWORK_POLICY, TLS_FAILURE, ProxyError
from components.ztunnel.sockets import Netns
from components.ztunnel.state import Store, Workload, WorkloadInfo

log = logging.getLogger("components.ztunnel.proxy")

PENDING = "Pending"
UP = "Up"
ACCEPT_ERROR_PAUSE = 0.1
_RETRYABLE_ACCEPT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO}

Handler = Callable[["WorkloadProxy", trio.SocketStream], Awaitable[None]]


@dataclass
class ProxyInputs:
    """What every pod proxy shares: settings, istiod's config, certificates, metrics."""

    config: Config
    store: Store
    certs: CertManager
    metrics: Metrics
    rng: random.Random = field(default_factory=random.Random)


class UnknownLocalWorkload(ProxyError):
    def __init__(self, info: WorkloadInfo) -> None:
        super().__init__(f"failed to fetch information about local workload: {info}")


class WorkloadProxy:
    def __init__(self, inputs: ProxyInputs, uid: str, info: WorkloadInfo, netns: Netns) -> None:
        self.inputs = inputs
        self.uid = uid
        self.info = info
        self.netns = netns
        self.state = PENDING
        self.connections = ConnectionManager()
        self.pool = HbonePool(self._connect_hbone)
        self.listeners: dict[str, trio.socket.SocketType] = {}
        self.active = 0
        self._idle = trio.Event()
        self._idle.set()
        self._cancel = trio.CancelScope()
        self._stopped = trio.Event()
        self.draining = trio.Event()

    @property
    def netns_id(self) -> tuple[int, int]:
        return self.netns.id

    # Listening

    def bind(self) -> None:
        """Create and bind the listeners in the pod's netns; OSError if any cannot be."""
        host = "::" if self.netns.has_ipv6() else "0.0.0.0"
        specs = [("inbound", host, INBOUND_PORT, True), ("inbound plaintext", host, INBOUND_PLAINTEXT_PORT, True),
                 ("outbound", host, OUTBOUND_PORT, True), ("socks5", "127.0.0.1", SOCKS5_PORT, False)]
        try:
            for component, bind_host, port, transparent in specs:
                self.listeners[component] = sockets.listener_socket(self.netns, bind_host, port,
                                                                    transparent=transparent)
        except OSError:
            self.stop_listening()
            raise
        for component, bind_host, port, transparent in specs:
            address = format_address((bind_host, port))
            if component == "socks5":
                # ztunnel's socks5 listener line has no `transparent` field (seed 002).
                logs.emit(logs.Event(logging.INFO, logs.SOCKS5, "listener established",
                                     (("address", logs.Display(address)), ("component", component))))
            else:
                logs.emit(logs.listener_established(address, component, transparent))

    def stop_listening(self) -> None:
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()

    # Running

    async def run(self, handlers: dict[str, Handler], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until shut down; `handlers` by listener component."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.pool.run)
                    for component, sock in self.listeners.items():
                        nursery.start_soon(self._accept_loop, nursery, sock, handlers[component])
                    self.state = UP
                    self.inputs.metrics.proxy_started()
                    task_status.started()
        finally:
            self.stop_listening()
            self.connections.close_all()
            self.netns.close()
            self.inputs.metrics.proxy_stopped()
            self._stopped.set()

    async def _accept_loop(self, nursery: trio.Nursery, sock: trio.socket.SocketType, handler: Handler) -> None:
        while True:
            try:
                conn, _ = await sock.accept()
            except trio.ClosedResourceError:
                return
            except OSError as exc:
                if exc.errno in _RETRYABLE_ACCEPT:
                    log.warning("failed to accept connection: %s", exc)
                    await trio.sleep(ACCEPT_ERROR_PAUSE)
                    continue
                if exc.errno in (errno.EBADF, errno.EINVAL):
                    return
                raise
            nursery.start_soon(self._serve, handler, trio.SocketStream(conn))

    async def _serve(self, handler: Handler, stream: trio.SocketStream) -> None:
        if self.active == 0:
            self._idle = trio.Event()
        self.active += 1
        try:
            await handler(self, stream)
        except Exception:  # noqa: BLE001 - one connection's bug must not end the proxy
            log.warning("connection handler failed", exc_info=True)
        finally:
            await trio.aclose_forcefully(stream)
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    def shutdown_now(self) -> None:
        """The pod is gone: stop everything, connections included."""
        self.stop_listening()
        self._cancel.cancel()

    async def drain(self, deadline: float) -> None:
        """Stop accepting at once; let connections finish until `deadline` (trio time), then cut.

        Inbound HBONE connections answer `draining` with a GOAWAY: the streams they carry run on,
        new ones go to a new connection (to a successor ztunnel, or nowhere)."""
        self.draining.set()
        self.stop_listening()
        with trio.move_on_at(deadline):
            await self._idle.wait()
        self._cancel.cancel()
        await self._stopped.wait()

    # What handlers use

    async def local_workload(self) -> Workload:
        """This pod's workload from istiod's config, waiting a little for it to arrive."""
        workload = await self.inputs.store.wait_for_local(self.info, self.inputs.config.node_name,
                                                          LOCAL_WORKLOAD_WAIT)
        if workload is None:
            raise UnknownLocalWorkload(self.info)
        return workload

    async def _connect_hbone(self, key: PoolKey) -> H2ClientConnection:
        """A new HBONE connection for the pool: TCP from the pod to `ip:15008`, mTLS as the
        source identity expecting one of the destination identities, HTTP/2 on top."""
        try:
            cert = await self.inputs.certs.fetch(key.src_id)
        except CertificateUnavailable as exc:
            raise ProxyError(f"identity error: {exc}", IDENTITY_ERROR) from exc
        try:
            tcp = await sockets.connect(self.netns, key.dst)
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                raise ProxyError(logs.network_policy_timeout("deadline has elapsed"), NETWORK_POLICY) from exc
            raise ProxyError(f"io error: {logs.os_error(exc)}") from exc
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                tls_stream, _peer = await tls_connect(tcp, cert.client_context(), key.dst_ids)
        except trio.TooSlowError as exc:
            await trio.aclose_forcefully(tcp)
            raise ProxyError("tls error: handshake timed out", TLS_FAILURE) from exc
        except TLSError as exc:
            raise ProxyError(f"tls error: {exc}", TLS_FAILURE) from exc
        config = CLIENT_CONFIG.replace(max_concurrent_streams=self.inputs.config.pool_max_streams)
        return H2ClientConnection(tls_stream, config)

    def count_socket(self, reporter: str) -> Callable[[], None]:
        """Count an open socket for `reporter`; call the result when it closes."""
        metrics = self.inputs.metrics
        metrics.socket_opened(reporter)
        return lambda: metrics.socket_closed(reporter)

    def dump(self) -> dict[str, Any]:
        return {"state": self.state,
                "info": {"name": self.info.name, "namespace": self.info.namespace,
                         "serviceAccount": self.info.service_account},
                "connections": {"inbound": self.connections.dump(), "active": self.active}}

