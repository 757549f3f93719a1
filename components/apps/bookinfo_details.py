"""Bookinfo's details service (image istio/examples-bookinfo-details-v1), a WEBrick server upstream.

`python -m components.apps.bookinfo_details [--port 9080]`: `GET /details/<id>` answers the book's
details as JSON (400 when the id is not a number), `/health` says it is healthy, anything else is
WEBrick's 404 page. Logs are WEBrick's: its startup lines, then per request the access line and
the referer line (`- -> /details/0`).
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import json
import os
import sys
from typing import TextIO

import trio

from components.apps import bookinfo
from components.common import http
from components.common.http import Request, Response

WEBRICK = "WEBrick/1.4.2 (Ruby/2.7.1/2020-03-31)"


def book_details(product_id: int) -> dict[str, object]:
    return {"id": product_id, "author": "William Shakespeare", "year": 1595, "type": "paperback",
            "pages": 200, "publisher": "PublisherA", "language": "English",
            "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}


def not_found_page(path: str, host: str) -> str:
    return ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0//EN">\n<HTML>\n  <HEAD><TITLE>Not Found</TITLE></HEAD>\n'
            f"  <BODY>\n    <H1>Not Found</H1>\n    `{path}' not found.\n    <HR>\n    <ADDRESS>\n"
            f"     {WEBRICK} at\n     {host}\n    </ADDRESS>\n  </BODY>\n</HTML>\n")


def _ruby_json(obj: object) -> str:
    """Ruby's `to_json`: no spaces."""
    return json.dumps(obj, separators=(",", ":"))


def respond(request: Request) -> Response:
    path = request.path
    if path == "/health" or path.startswith("/health/"):
        return bookinfo.json_response(_ruby_json({"status": "Details is healthy"}))
    if path == "/details" or path.startswith("/details/"):
        try:
            product_id = int(path.rstrip("/").split("/")[-1])
        except ValueError:
            return bookinfo.json_response(_ruby_json({"error": "please provide numeric product id"}), 400)
        return bookinfo.json_response(_ruby_json(book_details(product_id)))
    page = not_found_page(path, request.header("host") or "")
    return Response(404, [("Content-Type", "text/html; charset=ISO-8859-1")], page.encode("latin-1", "replace"))


class Log:
    """WEBrick's default logger and access log, both on stderr."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self._write(f"[{datetime.datetime.now():%Y-%m-%d %H:%M:%S}] INFO  {message}")

    def startup(self, port: int) -> None:
        self.info("WEBrick 1.4.2")
        self.info("ruby 2.7.1 (2020-03-31) [x86_64-linux]")
        self.info(f"WEBrick::HTTPServer#start: pid={os.getpid()} port={port}")

    def access(self, request: Request, response: Response) -> None:
        client = request.client[0] if isinstance(request.client, tuple) else "-"
        when = datetime.datetime.now(datetime.timezone.utc)
        self._write(f'{client} - - [{when:%d/%b/%Y:%H:%M:%S} UTC] "{request.method} {request.target} HTTP/1.1" '
                    f"{response.status} {len(response.body)}")
        self._write(f'{request.header("referer") or "-"} -> {request.path}')


def make_handler(log: Log) -> http.Handler:
    async def handler(request: Request) -> Response:
        response = respond(request)
        response.headers += [("Server", WEBRICK), ("Date", email.utils.formatdate(usegmt=True))]
        log.access(request, response)
        return response

    return handler


async def run(port: int, log: Log) -> None:
    log.startup(port)
    await bookinfo.serve(port, make_handler(log))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="details", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=bookinfo.PORT)
    args = parser.parse_args(argv)
    try:
        trio.run(run, args.port, Log())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
