"""httpbin's endpoints, answered as httpbin 0.9.2 under Flask answers them.

`dispatch(request)` routes a request like Flask does: an unknown path is 404, a known path with
another method is 405 with `Allow`, OPTIONS is answered for every route, HEAD wherever GET is.
JSON is `jsonify`'s: keys sorted, two-space indent, a trailing newline.
"""

from __future__ import annotations

import json
import random
import socket
import uuid
from typing import Any, AsyncIterator

import trio

from components.apps import flask_routing, httpbin_index
from components.apps.flask_routing import Route, error_page, html, redirect, route
from components.apps.httpbin_request import get_dict, headers, origin
from components.common.http import Request, Response

BODY_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "TRACE"})
MAX_DELAY = 10.0
MAX_BYTES = 100 * 1024
MAX_STREAM = 100

TEAPOT = """
    -=[ teapot ]=-

       _...._
     .'  _ _ `.
    | ."` ^ `". _,
    \\_;`"---"`|//
      |       ;/
      \\_     _/
        `\"\"\"`
"""


def jsonify(obj: Any, status: int = 200) -> Response:
    body = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    return Response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body)


def status_response(code: int) -> Response:
    """httpbin's canned response for a status code (redirects, auth challenges, the teapot)."""
    moved = [("Location", "/redirect/1")]
    extras: dict[int, tuple[str, list[tuple[str, str]]]] = {
        301: ("", moved), 302: ("", moved), 303: ("", moved), 305: ("", moved), 307: ("", moved),
        401: ("", [("WWW-Authenticate", 'Basic realm="Fake Realm"')]),
        402: ("Fuck you, pay me!", [("x-more-info", "http://vimeo.com/22053820")]),
        407: ("", [("Proxy-Authenticate", 'Basic realm="Fake Realm"')]),
        418: (TEAPOT, [("x-more-info", "http://tools.ietf.org/html/rfc2324")]),
    }
    if code == 406:
        body = json.dumps({"message": "Client did not request a supported media type.",
                           "accept": ["image/webp", "image/svg+xml", "image/jpeg", "image/png", "image/*"]})
        return Response(406, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                        body.encode())
    text, extra = extras.get(code, ("", []))
    return html(text, code, extra)


def parse_codes(codes: str) -> int:
    """One status code, or a weighted random pick from `200,500:0.1,...` (ValueError if malformed)."""
    if "," not in codes:
        return int(codes)
    choices: list[int] = []
    weights: list[float] = []
    for choice in codes.split(","):
        code, _, weight = choice.partition(":")
        choices.append(int(code))
        weights.append(float(weight) if weight else 1.0)
    return random.choices(choices, weights)[0]


async def view_index(request: Request) -> Response:
    return html(httpbin_index.PAGE)


async def view_ip(request: Request) -> Response:
    return jsonify({"origin": origin(request)})


async def view_hostname(request: Request) -> Response:
    """go-httpbin's /hostname: which pod answered."""
    return jsonify({"hostname": socket.gethostname()})


async def view_uuid(request: Request) -> Response:
    return jsonify({"uuid": str(uuid.uuid4())})


async def view_headers(request: Request) -> Response:
    return jsonify({"headers": headers(request)})


async def view_user_agent(request: Request) -> Response:
    return jsonify({"user-agent": request.header("user-agent")})


async def view_get(request: Request) -> Response:
    return jsonify(get_dict(request, "url", "args", "headers", "origin"))


async def view_body_method(request: Request) -> Response:
    return jsonify(get_dict(request, "url", "args", "form", "data", "origin", "headers", "files", "json"))


async def view_anything(request: Request, anything: str = "") -> Response:
    return jsonify(get_dict(request, "url", "args", "headers", "origin", "method", "form", "data",
                            "files", "json"))


async def view_status(request: Request, codes: str) -> Response:
    try:
        code = parse_codes(codes)
    except ValueError:
        return html("Invalid status code", 400)
    if not 200 <= code <= 999:
        # The HTTP layer sends final responses only; httpbin would send a bare 1xx.
        return html("Invalid status code", 400)
    return status_response(code)


async def view_delay(request: Request, delay: str) -> Response:
    try:
        seconds = min(float(delay), MAX_DELAY)
    except ValueError:
        return error_page(500)
    await trio.sleep(max(seconds, 0.0))
    return jsonify(get_dict(request, "url", "args", "form", "data", "origin", "headers", "files"))


async def view_bytes(request: Request, n: str) -> Response:
    count = min(int(n), MAX_BYTES)
    seed = request.arg("seed")
    rng = random.Random(int(seed)) if seed is not None and seed.lstrip("-").isdigit() else random.Random()
    body = bytes(rng.randint(0, 255) for _ in range(count))
    return Response(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(count))], body)


async def view_stream(request: Request, n: str) -> Response:
    description = get_dict(request, "url", "args", "headers", "origin")
    count = min(int(n), MAX_STREAM)

    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            yield (json.dumps({**description, "id": i}) + "\n").encode()

    return Response(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                    stream=lines())


async def view_response_headers(request: Request) -> Response:
    """The query args as response headers, and the headers as the JSON body (iterated until the
    body's own Content-Length is stable, as httpbin does)."""
    pairs = [(name, value) for name, values in request.query.items() for value in values]
    body = b""
    while True:
        described: dict[str, Any] = {}
        for name, value in [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] + pairs:
            if name in described:
                previous = described[name]
                described[name] = (previous if isinstance(previous, list) else [previous]) + [value]
            else:
                described[name] = value
        rendered = (json.dumps(described, indent=2, sort_keys=True) + "\n").encode()
        if rendered == body:
            break
        body = rendered
    return Response(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] + pairs,
                    body)


def _next_hop(kind: str, n: int) -> str:
    return "/get" if n <= 1 else f"/{kind}/{n - 1}"


async def view_redirect(request: Request, n: str) -> Response:
    return redirect(_next_hop("relative-redirect", int(n)))


async def view_relative_redirect(request: Request, n: str) -> Response:
    return html("", 302, [("Location", _next_hop("relative-redirect", int(n)))])


ROUTES: tuple[Route, ...] = (
    route(r"/", ("GET",), view_index),
    route(r"/ip", ("GET",), view_ip),
    route(r"/uuid", ("GET",), view_uuid),
    route(r"/hostname", ("GET",), view_hostname),
    route(r"/headers", ("GET",), view_headers),
    route(r"/user-agent", ("GET",), view_user_agent),
    route(r"/get", ("GET",), view_get),
    route(r"/post", ("POST",), view_body_method),
    route(r"/put", ("PUT",), view_body_method),
    route(r"/patch", ("PATCH",), view_body_method),
    route(r"/delete", ("DELETE",), view_body_method),
    route(r"/anything", None, view_anything),
    route(r"/anything/(?P<anything>.+)", None, view_anything),
    route(r"/status/(?P<codes>[^/]+)", BODY_METHODS, view_status),
    route(r"/delay/(?P<delay>[^/]+)", BODY_METHODS, view_delay),
    route(r"/bytes/(?P<n>\d+)", ("GET",), view_bytes),
    route(r"/stream/(?P<n>\d+)", ("GET",), view_stream),
    route(r"/response-headers", ("GET", "POST"), view_response_headers),
    route(r"/redirect/(?P<n>\d+)", ("GET",), view_redirect),
    route(r"/relative-redirect/(?P<n>\d+)", ("GET",), view_relative_redirect),
)


async def dispatch(request: Request) -> Response:
    """The response of the route matching the request's path and method."""
    return await flask_routing.dispatch(ROUTES, request)
