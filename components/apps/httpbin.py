"""An httpbin server (the kennethreitz/httpbin image of Istio's samples/httpbin).

`python -m components.apps.httpbin [--port 8080]` listens on 0.0.0.0 and logs as gunicorn does:
its startup lines, then one access line per request on stderr.
"""

from __future__ import annotations

import argparse
import email.utils
import traceback
from typing import AsyncIterator

import trio

from components.apps import gunicorn
from components.apps.httpbin_request import client_ip
from components.apps.httpbin_views import dispatch, error_page
from components.common import http
from components.common.http import Request, Response

CORS_PREFLIGHT_METHODS = "GET, POST, PUT, DELETE, PATCH, OPTIONS"


def decorate(request: Request, response: Response) -> Response:
    """gunicorn's Server, Date and Connection headers around the view's, then httpbin's CORS headers."""
    headers = [("Server", f"gunicorn/{gunicorn.VERSION}"), ("Date", email.utils.formatdate(usegmt=True)),
               ("Connection", "keep-alive")]
    headers += response.headers
    headers += [("Access-Control-Allow-Origin", request.header("origin") or "*"),
                ("Access-Control-Allow-Credentials", "true")]
    if request.method == "OPTIONS":
        headers += [("Access-Control-Allow-Methods", CORS_PREFLIGHT_METHODS), ("Access-Control-Max-Age", "3600")]
        requested = request.header("access-control-request-headers")
        if requested is not None:
            headers.append(("Access-Control-Allow-Headers", requested))
    return Response(response.status, headers, response.body, response.stream)


def make_handler(log: gunicorn.Logger) -> http.Handler:
    """The HTTP handler: dispatch, decorate, and write the access line once the body is known."""

    def access(request: Request, status: int, size: int | None) -> None:
        log.access(client_ip(request), f"{request.method} {request.target} HTTP/1.1", status, size,
                   request.header("referer"), request.header("user-agent"))

    async def handler(request: Request) -> Response:
        try:
            response = await dispatch(request)
        except Exception:
            log.error(f"Error handling request {request.target}\n{traceback.format_exc().rstrip()}")
            response = error_page(500)
        response = decorate(request, response)
        if response.stream is None:
            access(request, response.status, len(response.body))
            return response
        inner = response.stream

        async def counted() -> AsyncIterator[bytes]:
            sent = 0
            async for chunk in inner:
                sent += len(chunk)
                yield chunk
            access(request, response.status, sent)

        return Response(response.status, response.headers, stream=counted())

    return handler


async def serve(port: int, log: gunicorn.Logger,
                *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
    log.startup(f"0.0.0.0:{port}")
    await http.serve(listeners, make_handler(log), task_status=task_status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="httpbin", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.port, gunicorn.Logger())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
