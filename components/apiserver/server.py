"""The apiserver put together: store, persistence, registry, token issuer, controllers and the
HTTP listeners."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import trio

from components.apiserver import controllers, tokens
from components.apiserver.controllers import namespaces
from components.apiserver.ipalloc import ClusterIPAllocator
from components.apiserver.persistence import Persister
from components.apiserver.registry import Registry
from components.apiserver.rest import Api
from components.apiserver.store import Store
from components.common import http

log = logging.getLogger(__name__)


@dataclass
class Config:
    listen: list[str]
    data_dir: Path
    service_cidr: str = "10.96.0.0/16"
    apiserver_endpoint: str = "172.18.0.2:6443"
    save_delay: float = 0.2


async def _open_listener(address: str) -> trio.SocketListener:
    if address.startswith("unix:"):
        return await http.open_unix_listener(address[len("unix:"):])
    host, _, port = address.rpartition(":")
    listeners = await trio.open_tcp_listeners(int(port), host=host.strip("[]") or None)
    return listeners[0]


class ApiServer:
    def __init__(self, config: Config):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store()
        self.persister = Persister(self.store, config.data_dir, config.save_delay)
        self.persister.load()
        self.registry = Registry(self.store, ClusterIPAllocator(config.service_cidr))
        self.registry.restore_allocations()
        self.tokens = tokens.TokenIssuer(self.store, tokens.load_or_create_key(config.data_dir))
        self.api = Api(self.registry, self.tokens, config.apiserver_endpoint)

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the service range, the `kubernetes` Service's."""
        return str(ipaddress.ip_network(self.config.service_cidr).network_address + 1)

    async def run(self, *, task_status: trio.TaskStatus[ApiServer] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; the store is saved on the way out."""
        namespaces.bootstrap(self.registry, self.config.apiserver_endpoint, self.kubernetes_service_ip)
        listeners = [await _open_listener(address) for address in self.config.listen]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.persister.run)
                for controller in controllers.all_controllers(self.registry):
                    nursery.start_soon(controllers.run, controller)
                await nursery.start(http.serve, listeners, self.api.handle)
                log.info("Serving on %s (resourceVersion %d)", ", ".join(self.config.listen),
                         self.store.resource_version)
                task_status.started(self)
        finally:
            for address in self.config.listen:
                if address.startswith("unix:"):
                    try:
                        os.unlink(address[len("unix:"):])
                    except FileNotFoundError:
                        pass
