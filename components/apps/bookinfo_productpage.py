"""Bookinfo's productpage (image istio/examples-bookinfo-productpage-v1), a Flask program upstream.

`python -m components.apps.bookinfo_productpage [--port 9080]` serves:
`/` and `/index.html` (the service tree), `/productpage` (the book with its details from
`details:9080` and its reviews from `reviews:9080`), `/api/v1/products`, `/api/v1/products/<id>`,
`/api/v1/products/<id>/reviews`, `/api/v1/products/<id>/ratings` (from `ratings:9080`),
`/health`, `POST /login` and `/logout` (the signed-in user lives in Flask's `session` cookie and
goes to the services as the `end-user` header), `/static/...` and `/metrics`.

As upstream: each call opens a new connection with a 3 s timeout, reviews are tried twice, the
tracing and user headers of the request are propagated, and a failing service is reported with
its status and upstream's "Sorry, ... currently unavailable for this book." text. FLOOD_FACTOR
adds that many concurrent, ignored reviews calls per page. Logs are Flask's under Python logging
(`INFO:werkzeug:...` access lines, urllib3's connection lines).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, Mapping, TextIO

import trio
from prometheus_client import CollectorRegistry, Counter, generate_latest

from components.apps import bookinfo, bookinfo_pages, flask_routing
from components.apps.flask_routing import error_page, html, route
from components.common import http
from components.common.http import Request, Response

TIMEOUT = 3.0
REVIEWS_ATTEMPTS = 2
SESSION_COOKIE = "session"
SESSION_KEY = b"emulated bookinfo productpage session key"
# productpage sets end-user itself (from the session), so it does not copy the incoming one.
FORWARDED = tuple(name for name in bookinfo.PROPAGATED_HEADERS if name != "end-user")
UNAVAILABLE = {
    "details": "Sorry, product details are currently unavailable for this book.",
    "reviews": "Sorry, product reviews are currently unavailable for this book.",
    "ratings": "Sorry, product ratings are currently unavailable for this book.",
}
# A call to one service for a product: (product id, headers) -> (status, JSON body)
Fetch = Callable[[str, list[tuple[str, str]]], Awaitable[tuple[int, Any]]]
PRODUCT = {
    "id": 0,
    "title": "The Comedy of Errors",
    "descriptionHtml": '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The '
                       "Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and "
                       "one of his most farcical comedies, with a major part of the humour coming from slapstick "
                       "and mistaken identity, in addition to puns and word play.",
}


@dataclass(frozen=True)
class Backends:
    details: bookinfo.Backend
    reviews: bookinfo.Backend
    ratings: bookinfo.Backend
    flood_factor: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Backends":
        return cls(bookinfo.Backend.from_env("details", env), bookinfo.Backend.from_env("reviews", env),
                   bookinfo.Backend.from_env("ratings", env), int(env.get("FLOOD_FACTOR", "0") or 0))

    def service_tree(self) -> dict[str, Any]:
        """The tree the index page shows (upstream names the root after details' URL, and so do we)."""
        details = {"name": self.details.url, "endpoint": "details", "children": []}
        ratings = {"name": self.ratings.url, "endpoint": "ratings", "children": []}
        reviews = {"name": self.reviews.url, "endpoint": "reviews", "children": [ratings]}
        return {"name": self.details.url, "endpoint": "details", "children": [details, reviews]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: str) -> str:
    return _b64(hmac.new(SESSION_KEY, payload.encode(), hashlib.sha1).digest())


def encode_session(session: dict[str, Any]) -> str:
    """A signed cookie value shaped like Flask's: base64 JSON, timestamp, signature."""
    payload = f"{_b64(json.dumps(session, separators=(',', ':')).encode())}.{_b64(int(time.time()).to_bytes(4, 'big'))}"
    return f"{payload}.{_signature(payload)}"


def decode_session(value: str) -> dict[str, Any]:
    """The session in a cookie value; a tampered or foreign cookie is an empty session, as in Flask."""
    payload, _, signature = value.rpartition(".")
    if not payload or not hmac.compare_digest(_signature(payload), signature):
        return {}
    try:
        session = json.loads(_unb64(payload.split(".")[0]))
    except ValueError:
        return {}
    return session if isinstance(session, dict) else {}


def session_of(request: Request) -> dict[str, Any]:
    for key, value in request.headers:
        if key != "cookie":
            continue
        for part in value.split(";"):
            name, _, cookie = part.strip().partition("=")
            if name == SESSION_COOKIE:
                return decode_session(cookie)
    return {}


def with_session(response: Response, session: dict[str, Any]) -> Response:
    if session:
        cookie = f"{SESSION_COOKIE}={encode_session(session)}; HttpOnly; Path=/"
    else:
        cookie = f"{SESSION_COOKIE}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/"
    response.headers.append(("Set-Cookie", cookie))
    return response


def forward_headers(request: Request) -> list[tuple[str, str]]:
    """getForwardHeaders: the tracing and user headers to send on, end-user from the session."""
    headers = bookinfo.propagated(request, FORWARDED)
    user = session_of(request).get("user")
    if user:
        headers.append(("end-user", str(user)))
    return headers


class Log:
    """Python logging's basic format on stdout, as upstream configures it."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def write(self, level: str, logger: str, message: str) -> None:
        self.stream.write(f"{level}:{logger}:{message}\n")
        self.stream.flush()

    def access(self, request: Request, status: int) -> None:
        client = request.client[0] if isinstance(request.client, tuple) else "-"
        when = datetime.datetime.now()
        self.write("INFO", "werkzeug", f'{client} - - [{when:%d/%b/%Y %H:%M:%S}] '
                                       f'"{request.method} {request.target} HTTP/1.1" {status} -')

    def call(self, backend: bookinfo.Backend, path: str, reply: bookinfo.Reply) -> None:
        self.write("DEBUG", "urllib3.connectionpool", f"Starting new HTTP connection (1): {backend.authority}")
        if reply.status is not None:
            self.write("DEBUG", "urllib3.connectionpool",
                       f'{backend.url} "GET {path} HTTP/1.1" {reply.status} {reply.size}')


class ProductPage:
    def __init__(self, backends: Backends, log: Log):
        self.backends = backends
        self.log = log
        self.registry = CollectorRegistry()
        self.results = Counter("request_result", "Results of requests", ["destination_app", "response_code"],
                               registry=self.registry)

    async def _call(self, service: str, path: str, headers: list[tuple[str, str]]) -> bookinfo.Reply:
        backend: bookinfo.Backend = getattr(self.backends, service)
        reply = await bookinfo.get_json(backend, path, headers, TIMEOUT)
        self.log.call(backend, path, reply)
        return reply

    def _result(self, service: str, reply: bookinfo.Reply | None) -> tuple[int, Any]:
        if reply is not None and reply.ok:
            self.results.labels(destination_app=service, response_code=200).inc()
            return 200, reply.body
        status = reply.status if reply is not None and reply.status else 500
        self.results.labels(destination_app=service, response_code=status).inc()
        return status, {"error": UNAVAILABLE[service]}

    async def details(self, product_id: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
        return self._result("details", await self._call("details", f"/details/{product_id}", headers))

    async def reviews(self, product_id: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
        reply = None
        for _ in range(REVIEWS_ATTEMPTS):
            reply = await self._call("reviews", f"/reviews/{product_id}", headers)
            if reply.ok:
                break
        return self._result("reviews", reply)

    async def ratings(self, product_id: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
        return self._result("ratings", await self._call("ratings", f"/ratings/{product_id}", headers))

    async def flood(self, product_id: str, headers: list[tuple[str, str]]) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.backends.flood_factor):
                nursery.start_soon(self._call, "reviews", f"/reviews/{product_id}", headers)

    # Views.
    async def index(self, request: Request) -> Response:
        return html(bookinfo_pages.index_page(self.backends.service_tree()))

    async def health(self, request: Request) -> Response:
        return html("Product page is healthy")

    async def login(self, request: Request) -> Response:
        form = urllib.parse.parse_qs(request.body.decode("latin-1"), keep_blank_values=True)
        user = (form.get("username") or [request.arg("username") or ""])[-1]
        session = {**session_of(request), "user": user}
        return with_session(flask_routing.redirect(request.header("referer") or "productpage"), session)

    async def logout(self, request: Request) -> Response:
        session = {k: v for k, v in session_of(request).items() if k != "user"}
        return with_session(flask_routing.redirect(request.header("referer") or "productpage"), session)

    async def front(self, request: Request) -> Response:
        headers = forward_headers(request)
        details_status, details = await self.details("0", headers)
        if self.backends.flood_factor > 0:
            await self.flood("0", headers)
        reviews_status, reviews = await self.reviews("0", headers)
        user = str(session_of(request).get("user") or "")
        return html(bookinfo_pages.product_page(PRODUCT, details_status, details, reviews_status, reviews, user))

    async def products(self, request: Request) -> Response:
        return bookinfo.json_response(json.dumps([PRODUCT]))

    async def api(self, fetch: Fetch, request: Request, product_id: str) -> Response:
        """An /api/v1/products/<id>[/reviews|/ratings] view: the service's answer or its error, as JSON."""
        status, body = await fetch(product_id, forward_headers(request))
        return bookinfo.json_response(json.dumps(body), status)

    async def static(self, request: Request, path: str) -> Response:
        if f"static/{path}" == bookinfo_pages.STYLESHEET:
            return Response(200, [("Content-Type", "text/css; charset=utf-8")], bookinfo_pages.CSS.encode())
        return error_page(404)

    async def metrics(self, request: Request) -> Response:
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], generate_latest(self.registry))

    def routes(self) -> tuple[flask_routing.Route, ...]:
        return (
            route(r"/", ("GET",), self.index),
            route(r"/index\.html", ("GET",), self.index),
            route(r"/health", ("GET",), self.health),
            route(r"/login", ("POST",), self.login),
            route(r"/logout", ("GET",), self.logout),
            route(r"/productpage", ("GET",), self.front),
            route(r"/api/v1/products", ("GET",), self.products),
            route(r"/api/v1/products/(?P<product_id>[^/]+)", ("GET",), partial(self.api, self.details)),
            route(r"/api/v1/products/(?P<product_id>[^/]+)/reviews", ("GET",), partial(self.api, self.reviews)),
            route(r"/api/v1/products/(?P<product_id>[^/]+)/ratings", ("GET",), partial(self.api, self.ratings)),
            route(r"/static/(?P<path>.+)", ("GET",), self.static),
            route(r"/metrics", ("GET",), self.metrics),
        )

    def handler(self) -> http.Handler:
        routes = self.routes()

        async def handle(request: Request) -> Response:
            response = await flask_routing.dispatch(routes, request)
            self.log.access(request, response.status)
            return response

        return handle


async def run(port: int, page: ProductPage) -> None:
    page.log.write("INFO", "root", f"start at port {port}")
    await bookinfo.serve(port, page.handler())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="productpage", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=bookinfo.PORT)
    args = parser.parse_args(argv)
    try:
        trio.run(run, args.port, ProductPage(Backends.from_env(), Log()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
