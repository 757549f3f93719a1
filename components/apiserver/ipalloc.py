"""ClusterIP allocation from the service CIDR.

As in Kubernetes, the lower part of the range (min(max(16, size/16), 256) addresses) is kept for
addresses Services ask for by name (kube-dns' 10.96.0.10), and dynamic allocation takes from the
upper part first. The network address, the first address after it and the broadcast address are
never handed out dynamically; the first one is the `kubernetes` Service's, asked for explicitly.
"""

from __future__ import annotations

import ipaddress
import itertools

from components.apiserver.errors import FieldError


class ClusterIPAllocator:
    def __init__(self, cidr: str):
        self.network = ipaddress.ip_network(cidr)
        self.allocated: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        size = self.network.num_addresses
        self._static_size = min(max(16, size // 16), 256)
        self._cursor = self._static_size

    def _offset(self, offset: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return self.network.network_address + offset

    def check(self, requested: str) -> FieldError | None:
        """Why `requested` cannot be given to a Service, or None if it can."""
        try:
            address = ipaddress.ip_address(requested)
        except ValueError:
            return FieldError("Invalid", "spec.clusterIP", requested,
                              "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        if address not in self.network or address in (self.network.network_address, self.network.broadcast_address):
            return FieldError("Invalid", "spec.clusterIP", requested,
                              f"provided IP is not in the valid range. The range of valid IPs is {self.network}")
        if address in self.allocated:
            return FieldError("Invalid", "spec.clusterIP", requested, "provided IP is already allocated")
        return None

    def pick(self) -> str | None:
        """A free address (not yet reserved), upper part of the range first; None if all are taken."""
        size = self.network.num_addresses
        dynamic = range(self._static_size, size - 1)
        for offset in itertools.chain(range(self._cursor, dynamic.stop), range(dynamic.start, self._cursor),
                                      range(2, dynamic.start)):
            address = self._offset(offset)
            if address not in self.allocated:
                return str(address)
        return None

    def reserve(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        self.allocated.add(ip)
        offset = int(ip) - int(self.network.network_address)
        if offset >= self._static_size:
            self._cursor = offset + 1 if offset + 1 < self.network.num_addresses - 1 else self._static_size

    def release(self, address: str) -> None:
        try:
            self.allocated.discard(ipaddress.ip_address(address))
        except ValueError:
            pass
