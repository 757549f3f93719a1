"""Flask's (werkzeug's) routing and canned pages, for the apps that are Flask programs upstream
(httpbin, bookinfo's productpage).

`dispatch(routes, request)` routes as Flask does: an unknown path is 404, a known path with another
method is 405 with `Allow`, OPTIONS is answered for every route, HEAD wherever GET is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from components.common.http import Request, Response

HTML = "text/html; charset=utf-8"

ERROR_PAGES = {
    404: ("Not Found", "The requested URL was not found on the server.  If you entered the URL manually "
                       "please check your spelling and try again."),
    405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
    500: ("Internal Server Error", "The server encountered an internal error and was unable to complete "
                                   "your request.  Either the server is overloaded or there is an error in "
                                   "the application."),
}

View = Callable[..., Awaitable[Response]]


def html(text: str, status: int = 200, extra: list[tuple[str, str]] | None = None) -> Response:
    body = text.encode()
    return Response(status, [("Content-Type", HTML), ("Content-Length", str(len(body)))] + (extra or []), body)


def error_page(status: int, extra: list[tuple[str, str]] | None = None) -> Response:
    title, text = ERROR_PAGES[status]
    page = (f'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>{status} {title}</title>\n'
            f"<h1>{title}</h1>\n<p>{text}</p>\n")
    return html(page, status, extra)


def redirect(location: str) -> Response:
    """werkzeug's `redirect()`: a 302 with a small HTML body naming the target."""
    page = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>Redirecting...</title>\n'
            f'<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: '
            f'<a href="{location}">{location}</a>.  If not click the link.')
    return html(page, 302, [("Location", location)])


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: frozenset[str] | None      # None: any method
    view: View

    def allowed(self) -> set[str]:
        methods = set(self.methods or ())
        if "GET" in methods:
            methods.add("HEAD")
        return methods | {"OPTIONS"}


def route(pattern: str, methods: tuple[str, ...] | frozenset[str] | None, view: View) -> Route:
    """A route whose `pattern` must match the whole path; named groups become the view's arguments."""
    return Route(re.compile(pattern + r"\Z"), None if methods is None else frozenset(methods), view)


def _options(allowed: set[str]) -> Response:
    return html("", 200, [("Allow", ", ".join(sorted(allowed)))])


async def dispatch(routes: tuple[Route, ...], request: Request) -> Response:
    """The response of the route matching the request's path and method."""
    allowed: set[str] = set()
    for candidate in routes:
        match = candidate.pattern.match(request.path)
        if match is None:
            continue
        if candidate.methods is None or request.method in candidate.methods or (
                request.method == "HEAD" and "GET" in candidate.methods):
            if request.method == "OPTIONS" and candidate.methods is not None:
                return _options(candidate.allowed())
            return await candidate.view(request, **match.groupdict())
        allowed |= candidate.allowed()
    if not allowed:
        return error_page(404)
    if request.method == "OPTIONS":
        return _options(allowed)
    return error_page(405, [("Allow", ", ".join(sorted(allowed)))])
