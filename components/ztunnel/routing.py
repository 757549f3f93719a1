"""The outbound routing decision (ztunnel's `OutboundConnection::build_request`), with no I/O.

Given the source workload and the original destination, it says where the connection goes:

1. a loopback destination on one of ztunnel's own ports is a self-call, refused;
2. a service VIP whose service has a waypoint goes to the waypoint over HBONE (authority = the
   VIP and service port, "not translated");
3. otherwise an upstream is picked: for a VIP, an endpoint at random weighted by capacity among
   the usable ones (health policy, routing preferences), its target port from the endpoint or the
   service; for a workload IP, that workload;
4. no upstream: a service VIP (not Passthrough) is `no healthy upstream`, anything else plain TCP
   to the original destination;
5. a workload with a waypoint, addressed by its IP, goes to the waypoint;
6. an HBONE workload gets TCP to `podIP:15008` and CONNECT `podIP:targetPort`; a TCP one plain
   TCP to `podIP:targetPort`.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Sequence

from components.common.tls import Identity, IdentityError
from components.ztunnel.config import ILLEGAL_PORTS, INBOUND_PORT
from components.common.addresses import Address, format_address
from components.ztunnel.state import HBONE, TCP, Endpoint, ProxyState, Service, Workload

DIRECT = "Direct"
PASSTHROUGH = "Passthrough"
TO_SERVER_WAYPOINT = "ToServerWaypoint"
TO_WORKLOAD_WAYPOINT = "ToWorkloadWaypoint"


class RouteError(Exception):
    """No route: the text is ztunnel's error as the access log prints it."""


class SelfCall(RouteError):
    def __init__(self) -> None:
        super().__init__("attempted recursive call to ourselves")


class NoHealthyUpstream(RouteError):
    def __init__(self, destination: Address) -> None:
        super().__init__(f"no healthy upstream: {format_address(destination)}")


@dataclass(frozen=True)
class Route:
    """Where one outbound connection goes.

    `actual_destination` is the next hop (a pod's or waypoint's 15008 for HBONE); `hbone_target`
    the CONNECT authority; `destination_workload` the workload at the next hop;
    `destination_service` the service the client meant; `upstream_sans` the identities the next
    hop may present.
    """

    protocol: str
    kind: str
    actual_destination: Address
    hbone_target: Address | None = None
    destination_workload: Workload | None = None
    destination_service: Service | None = None
    upstream_sans: tuple[Identity, ...] = ()

    @property
    def hbone(self) -> bool:
        return self.protocol == HBONE


@dataclass(frozen=True)
class Upstream:
    workload: Workload
    port: int
    service: Service | None

    def ip(self, family_hint: str) -> str | None:
        """The workload IP to use, of the same family as the address the client used if it can."""
        if not self.workload.ips:
            return None
        want_v6 = ":" in family_hint
        for ip in self.workload.ips:
            if (":" in ip) == want_v6:
                return ip
        return self.workload.ips[0]

    def sans(self) -> tuple[Identity, ...]:
        """Service SANs that parse, then the workload's own identity (`workload_and_services_san`)."""
        result = []
        for san in self.service.subject_alt_names if self.service else ():
            try:
                result.append(Identity.parse(san))
            except IdentityError:
                continue
        result.append(self.workload.identity)
        return tuple(result)


def is_self_call(destination: Address) -> bool:
    ip, port = destination
    try:
        loopback = ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False
    return loopback and port in ILLEGAL_PORTS


def _rank(source: Workload, workload: Workload, preferences: Sequence[str]) -> int:
    """How many routing preferences, in order, the endpoint shares with the source."""
    network_first = bool(preferences) and preferences[0] == "Network"
    rank = adjust = 0
    for scope in preferences:
        if scope == "Network":
            matched = source.network == workload.network
            if network_first:
                if not matched:
                    continue
                adjust = len(preferences) - 1
        else:
            matched = {
                "Region": source.region == workload.region,
                "Zone": source.zone == workload.zone,
                "Subzone": source.subzone == workload.subzone,
                "Node": source.node == workload.node,
                "Cluster": source.cluster_id == workload.cluster_id,
            }.get(scope, False)
        if not matched:
            break
        rank += 1
    return rank + adjust


def choose_endpoint(state: ProxyState, source: Workload, service: Service, service_port: int,
                    rng: random.Random, *, waypoint_mode: bool = False) -> tuple[Endpoint, Workload] | None:
    """ztunnel's `load_balance`: usable endpoints that have the port, the best-ranked ones under
    the service's routing preferences, one of them at random weighted by capacity."""
    target_port = service.ports.get(service_port)
    if not waypoint_mode and target_port is None:
        return None
    candidates = []
    for endpoint, workload in state.endpoints(service):
        if not workload.ips:
            continue
        if not waypoint_mode and not target_port and service_port not in endpoint.ports:
            continue
        candidates.append((endpoint, workload))
    lb = service.load_balancer or {}
    mode = lb.get("mode") or "Standard"
    preferences = [p for p in lb.get("routingPreferences") or [] if isinstance(p, str)]
    if mode != "Standard" and candidates:
        ranked = []
        for endpoint, workload in candidates:
            rank = _rank(source, workload, preferences)
            if mode == "Strict" and rank < len(preferences):
                continue
            ranked.append((rank, endpoint, workload))
        if not ranked:
            return None
        best = max(rank for rank, _, _ in ranked)
        candidates = [(e, w) for rank, e, w in ranked if rank == best]
    if not candidates:
        return None
    return rng.choices(candidates, weights=[w.capacity for _, w in candidates])[0]


def _upstream_from_service(state: ProxyState, source: Workload, service: Service, service_port: int,
                           rng: random.Random, *, waypoint_mode: bool = False) -> Upstream | None:
    chosen = choose_endpoint(state, source, service, service_port, rng, waypoint_mode=waypoint_mode)
    if chosen is None:
        return None
    endpoint, workload = chosen
    if service_port in endpoint.ports:
        port = endpoint.ports[service_port]
    elif service.ports.get(service_port, 0) > 0:
        port = service.ports[service_port]
    elif waypoint_mode:
        port = service_port
    else:
        return None
    return Upstream(workload, port, service)


def _waypoint_upstream(state: ProxyState, source: Workload, gateway: dict, destination: Address,
                       rng: random.Random) -> Upstream:
    """The waypoint a GatewayAddress names, resolved to one of its pods (`fetch_waypoint`)."""
    port = gateway.get("hboneMtlsPort") or INBOUND_PORT
    target = state.find_destination(gateway.get("destination"))
    upstream: Upstream | None = None
    if isinstance(target, Service):
        upstream = _upstream_from_service(state, source, target, port, rng, waypoint_mode=True)
    elif isinstance(target, Workload):
        upstream = Upstream(target, port, None)
    if upstream is None or not upstream.workload.ips:
        raise RouteError(f"waypoint {gateway.get('destination')} not found")
    return upstream


def _from_waypoint(source: Workload, gateway: dict | None, state: ProxyState) -> bool:
    """Traffic the destination's own waypoint sends on must not go back to it."""
    if gateway is None:
        return False
    target = state.find_destination(gateway.get("destination"))
    if isinstance(target, Workload):
        return target.identity == source.identity
    if isinstance(target, Service):
        return any(w.identity == source.identity for _, w in state.endpoints(target))
    return False


def _to_waypoint(kind: str, upstream: Upstream, destination: Address, service: Service | None) -> Route:
    ip = upstream.ip(destination[0])
    if ip is None:
        raise RouteError(f"no valid destination: {upstream.workload.uid}")
    return Route(HBONE, kind, (ip, upstream.port), hbone_target=destination,
                 destination_workload=upstream.workload, destination_service=service,
                 upstream_sans=upstream.sans())


def decide(state: ProxyState, source: Workload, destination: Address, *, network: str = "",
           rng: random.Random | None = None) -> Route:
    """The route for a connection from `source` to the original `destination`; RouteError if none."""
    rng = rng or random.Random()
    if is_self_call(destination):
        raise SelfCall()
    ip, port = destination
    service = None
    if state.workload_by_ip(ip, network) is None:
        service = state.service_by_vip(ip, network, source.namespace)
    if service is not None and service.waypoint is not None:
        waypoint = _waypoint_upstream(state, source, service.waypoint, destination, rng)
        return _to_waypoint(TO_SERVER_WAYPOINT, waypoint, destination, service)

    upstream: Upstream | None = None
    if service is not None:
        if service.lb_mode != "Passthrough":
            upstream = _upstream_from_service(state, source, service, port, rng)
            if upstream is None:
                raise NoHealthyUpstream(destination)
    else:
        workload = state.workload_by_ip(ip, network)
        if workload is not None:
            upstream = Upstream(workload, port, None)
    if upstream is None:
        return Route(TCP, PASSTHROUGH, destination)

    workload = upstream.workload
    if (service is None and workload.waypoint is not None
            and not _from_waypoint(source, workload.waypoint, state)):
        waypoint = _waypoint_upstream(state, source, workload.waypoint, destination, rng)
        return _to_waypoint(TO_WORKLOAD_WAYPOINT, waypoint, destination, None)

    selected = upstream.ip(ip)
    if selected is None:
        raise RouteError(f"no valid destination: {workload.uid}")
    target = (selected, upstream.port)
    if workload.hbone:
        return Route(HBONE, DIRECT, (selected, INBOUND_PORT), hbone_target=target,
                     destination_workload=workload, destination_service=service,
                     upstream_sans=upstream.sans())
    return Route(TCP, DIRECT, target, destination_workload=workload, destination_service=service)
