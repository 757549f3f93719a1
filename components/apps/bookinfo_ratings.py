"""Bookinfo's ratings service (image istio/examples-bookinfo-ratings-v1), a Node.js server upstream.

`python -m components.apps.bookinfo_ratings [--port 9080]`: `GET /ratings/<id>` answers the two
reviewers' stars, `POST /ratings/<id>` replaces them (kept in memory), `/health` says whether it
is healthy. SERVICE_VERSION picks upstream's misbehaving variants: `v-faulty` (half the answers
are 503), `v-delayed` (half are 7 s late), `v-unavailable` (503 every other minute) and
`v-unhealthy` (unavailable and unhealthy every other 15 minutes). Logs are the program's
console lines: `Server listening on: http://0.0.0.0:9080`, then `GET /ratings/0` per request.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import trio

from components.apps import bookinfo
from components.common import http
from components.common.http import Request, Response

RATINGS_PATH = re.compile(r"/ratings/[0-9]*")
LEADING_INT = re.compile(r"\s*([+-]?\d+)")
DELAY = 7.0
TOGGLE_SECONDS = {"v-unavailable": 60.0, "v-unhealthy": 900.0}


def _node_json(obj: Any) -> str:
    """JSON.stringify: no spaces."""
    return json.dumps(obj, separators=(",", ":"))


def _answer(obj: Any, status: int = 200) -> Response:
    return Response(status, [("Content-type", "application/json")], _node_json(obj).encode())


def parse_int(text: str) -> int | None:
    """JavaScript's parseInt: the leading integer, or None for NaN."""
    match = LEADING_INT.match(text)
    return int(match.group(1)) if match else None


@dataclass
class Ratings:
    version: str
    added: dict[int, dict[str, Any]] = field(default_factory=dict)
    unavailable: bool = False
    healthy: bool = True

    def of(self, product_id: int) -> dict[str, Any]:
        return self.added.get(product_id) or {"id": product_id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}

    async def flip_availability(self) -> None:
        """Upstream's timers for v-unavailable and v-unhealthy."""
        period = TOGGLE_SECONDS.get(self.version)
        if period is None:
            return
        while True:
            await trio.sleep(period)
            self.unavailable = not self.unavailable
            if self.version == "v-unhealthy":
                self.healthy = not self.healthy

    async def get(self, product_id: int) -> Response:
        unavailable = {"v-faulty": random.random() <= 0.5,
                       "v-unavailable": self.unavailable, "v-unhealthy": self.unavailable}.get(self.version, False)
        if unavailable:
            return _answer({"error": "Service unavailable"}, 503)
        if self.version == "v-delayed" and random.random() <= 0.5:
            await trio.sleep(DELAY)
        return _answer(self.of(product_id))

    def post(self, product_id: int, body: bytes) -> Response:
        try:
            ratings = json.loads(body)
        except ValueError:
            return _answer({"error": "please provide valid ratings JSON"}, 400)
        self.added[product_id] = {"id": product_id, "ratings": ratings}
        return _answer(self.of(product_id))


def make_handler(ratings: Ratings, log: TextIO) -> http.Handler:
    async def handler(request: Request) -> Response:
        log.write(f"{request.method} {request.target}\n")
        log.flush()
        if request.method in ("GET", "POST") and RATINGS_PATH.match(request.path):
            product_id = parse_int(request.path.split("/")[-1])
            if product_id is None:
                return _answer({"error": "please provide numeric product ID"}, 400)
            if request.method == "POST":
                return ratings.post(product_id, request.body)
            return await ratings.get(product_id)
        if request.method == "GET" and request.path == "/health":
            if ratings.healthy:
                return _answer({"status": "Ratings is healthy"})
            return _answer({"status": "Ratings is not healthy"}, 500)
        return Response(404)

    return handler


async def run(port: int, ratings: Ratings, log: TextIO) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ratings.flip_availability)
        await nursery.start(bookinfo.serve, port, make_handler(ratings, log))
        log.write(f"Server listening on: http://0.0.0.0:{port}\n")
        log.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ratings", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=bookinfo.PORT)
    parser.add_argument("--service-version", default="v1", help="the image's SERVICE_VERSION (the env var wins)")
    args = parser.parse_args(argv)
    version = os.environ.get("SERVICE_VERSION", args.service_version)
    try:
        trio.run(run, args.port, Ratings(version), sys.stdout)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
