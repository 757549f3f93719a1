"""The CA process: root from its Secret, the root published to every namespace, the pod index for
node authorization, and `IstioCertificateService/CreateCertificate` over TLS and HTTP/2.

Readiness: with `ready` set, plain HTTP `GET /ready` there answers 200 once the CA serves (503
before). The TLS port itself opens only once the root is loaded and the pod index has synced, so
a TCP check of it is a readiness check too.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass, field
from functools import partial

import trio

from components.ca import status
from components.ca.authn import KubeJWTAuthenticator
from components.ca.nodeauth import NodeAuthorizer, PodIndex
from components.ca.publisher import RootCertPublisher
from components.ca.root import load_or_create_root, serving_credentials
from components.ca.service import CertificateService
from components.ca.status import Refusal
from components.common import http, pki
from components.common.apiclient import ApiClient
from components.common.h2conn import H2Request, H2Stream, serve_h2
from components.common.h2stream import BodyTooLarge
from components.common.tls import ALPN_H2, load_cert_chain_pem

log = logging.getLogger("ca")

SERVICE = "istio.v1.auth.IstioCertificateService"
METHOD = "CreateCertificate"
PATH = f"/{SERVICE}/{METHOD}"
MAX_REQUEST = 4 * 1024 * 1024      # gRPC's default maximum received message size
HANDSHAKE_TIMEOUT = 10.0


@dataclass
class Config:
    api: str
    listen: str = "0.0.0.0:15012"
    trust_domain: str = pki.TRUST_DOMAIN
    trusted_node_accounts: list[tuple[str, str]] = field(default_factory=lambda: [("istio-system", "ztunnel")])
    default_ttl: float = 24 * 3600.0
    max_ttl: float = 2160 * 3600.0
    audiences: list[str] = field(default_factory=lambda: ["istio-ca"])
    root_namespace: str = "istio-system"
    cluster_id: str = "Kubernetes"
    ready: str | None = None


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def server_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """TLS 1.2 or later, ALPN h2, no client certificate asked for (callers prove who they are by token)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN_H2])
    load_cert_chain_pem(context, chain_pem, key_pem)
    return context


def _peer(transport: trio.abc.Stream) -> str:
    sock = getattr(transport, "socket", None)
    try:
        host, port = sock.getpeername()[:2] if sock is not None else ("unknown", 0)
    except OSError:
        return "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class CAServer:
    """Run with `await nursery.start(CAServer(config).run)`; `port` is the TLS port once started."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.api = ApiClient(config.api)
        self.root: pki.RootCA | None = None
        self.port: int | None = None
        self.ready_port: int | None = None
        self.serving = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus["CAServer"] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        async with trio.open_nursery() as nursery:
            if config.ready:
                await nursery.start(self._serve_ready, config.ready)
            self.root = await load_or_create_root(self.api, config.root_namespace, config.trust_domain)
            pods = PodIndex()
            nursery.start_soon(pods.run, self.api)
            nursery.start_soon(RootCertPublisher(self.api, self.root.cert_pem).run)
            await pods.synced.wait()
            authorizer = NodeAuthorizer(config.trusted_node_accounts, pods) if config.trusted_node_accounts else None
            authenticator = KubeJWTAuthenticator(self.api, config.trust_domain, config.audiences, config.cluster_id)
            service = CertificateService(self.root, authenticator, authorizer, config.default_ttl, config.max_ttl)
            context = server_context(*serving_credentials(self.root))
            host, port = split_host_port(config.listen)
            listeners = await trio.open_tcp_listeners(port, host=host or None)
            self.port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(partial(trio.serve_listeners, partial(self._connection, context, service), listeners))
            accounts = ",".join(f"{ns}/{sa}" for ns, sa in config.trusted_node_accounts)
            log.info("CA server started, listening on %s:%d (trust domain %s, trusted node accounts [%s])",
                     host or "0.0.0.0", self.port, config.trust_domain, accounts)
            self.serving.set()
            task_status.started(self)

    async def _connection(self, context: ssl.SSLContext, service: CertificateService,
                          transport: trio.SocketStream) -> None:
        client = _peer(transport)
        stream = trio.SSLStream(transport, context, server_side=True, https_compatible=True)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                await stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            log.debug("TLS handshake with %s failed: %s", client, exc.__cause__ or exc)
            await trio.aclose_forcefully(transport)
            return
        try:
            await serve_h2(stream, partial(self._handle, service, client))
        except Exception:
            log.warning("connection from %s failed", client, exc_info=True)

    async def _handle(self, service: CertificateService, client: str, request: H2Request, stream: H2Stream) -> None:
        try:
            if request.path != PATH:
                target = (request.path or "").lstrip("/")
                svc, _, method = target.rpartition("/")
                reason = f"unknown method {method} for service {svc}" if svc == SERVICE else f"unknown service {svc}"
                raise Refusal(status.UNIMPLEMENTED, reason)
            if request.method != "POST":
                raise Refusal(status.UNIMPLEMENTED, f"method {request.method} not allowed: use POST", http_status=405)
            try:
                body = await stream.receive_all(MAX_REQUEST)
            except BodyTooLarge as exc:
                raise Refusal(status.INVALID_ARGUMENT,
                              f"grpc: received message larger than max ({MAX_REQUEST})") from exc
            answer, code, http_status = await service.create_certificate(request.headers, body, client), status.OK, 200
        except Refusal as refusal:
            answer, code, http_status = refusal.body(), refusal.code, refusal.http_status
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except Exception as exc:
            log.error("CreateCertificate from %s failed", client, exc_info=True)
            refusal = Refusal(status.INTERNAL, f"internal error: {exc}")
            answer, code, http_status = refusal.body(), refusal.code, refusal.http_status
        headers = [("content-type", "application/json"), ("grpc-status", str(code))]
        await stream.respond(http_status, headers)
        await stream.send_all(json.dumps(answer).encode())
        await stream.send_eof()

    async def _serve_ready(self, address: str, *,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async def handler(request: http.Request) -> http.Response:
            if request.path != "/ready":
                return http.Response.text("404 page not found\n", status=404)
            if self.serving.is_set():
                return http.Response.text("ready\n")
            return http.Response.text("not ready\n", status=503)

        host, port = split_host_port(address)
        listeners = await trio.open_tcp_listeners(port, host=host or None)
        self.ready_port = listeners[0].socket.getsockname()[1]
        await http.serve(listeners, handler, task_status=task_status)
