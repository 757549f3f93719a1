"""Bookinfo's reviews service (images istio/examples-bookinfo-reviews-v1, -v2, -v3), a Java
application on Open Liberty upstream.

`python -m components.apps.bookinfo_reviews [--port 9080] [--service-version v2 --enable-ratings
--star-color black]`: the flags are what each image bakes in (v1: no ratings; v2: black stars;
v3: red stars); the env vars SERVICE_VERSION, ENABLE_RATINGS and STAR_COLOR override them, as a
container's env overrides its image's. `GET /reviews/<id>` answers two reviews, with each
reviewer's stars from `ratings:9080` when ratings are enabled (timeout 10 s for black stars,
2.5 s otherwise, as upstream), and the pod's name (HOSTNAME) and CLUSTER_NAME; `/health` says it
is healthy. Logs are Liberty's console messages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Mapping, TextIO

import trio

from components.apps import bookinfo
from components.common import http
from components.common.http import Request, Response

REVIEWS_PATH = re.compile(r"/reviews/(-?\d+)/?")
REVIEWS = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays "
                  "by Shakespeare."),
)
BLACK_TIMEOUT = 10.0
OTHER_TIMEOUT = 2.5


@dataclass(frozen=True)
class Settings:
    version: str
    ratings_enabled: bool
    star_color: str
    pod: str
    cluster: str            # "null" when CLUSTER_NAME is unset: Java's string concatenation of null
    ratings: bookinfo.Backend

    @classmethod
    def from_image(cls, version: str, enable_ratings: bool, star_color: str,
                   env: Mapping[str, str] = os.environ) -> "Settings":
        return cls(env.get("SERVICE_VERSION", version),
                   bookinfo.env_flag("ENABLE_RATINGS", enable_ratings, env),
                   env.get("STAR_COLOR", star_color),
                   bookinfo.pod_name(env),
                   env.get("CLUSTER_NAME", "null"),
                   bookinfo.Backend.from_env("ratings", env))

    @property
    def ratings_timeout(self) -> float:
        return BLACK_TIMEOUT if self.star_color == "black" else OTHER_TIMEOUT


def reviews_body(settings: Settings, product_id: int, stars: dict[str, int]) -> dict[str, object]:
    """The JSON upstream builds: ratings only when enabled, an error in place of missing stars."""
    reviews = []
    for reviewer, text in REVIEWS:
        review: dict[str, object] = {"reviewer": reviewer, "text": text}
        if settings.ratings_enabled:
            if reviewer in stars:
                review["rating"] = {"stars": stars[reviewer], "color": settings.star_color}
            else:
                review["rating"] = {"error": "Ratings service is currently unavailable"}
        reviews.append(review)
    return {"id": str(product_id), "podname": settings.pod, "clustername": settings.cluster, "reviews": reviews}


async def fetch_stars(settings: Settings, product_id: int, request: Request, log: TextIO) -> dict[str, int]:
    service = f"{settings.ratings.url}/ratings"
    reply = await bookinfo.get_json(settings.ratings, f"/ratings/{product_id}", bookinfo.propagated(request),
                                    settings.ratings_timeout)
    if reply.status is None:
        log.write(f"Error: unable to contact {service} got exception javax.ws.rs.ProcessingException: "
                  f"{reply.failure}\n")
        return {}
    if not reply.ok:
        log.write(f"Error: unable to contact {service} got status of {reply.status}\n")
        return {}
    ratings = reply.body.get("ratings") if isinstance(reply.body, dict) else None
    if not isinstance(ratings, dict):
        return {}
    return {k: v for k, v in ratings.items() if k in ("Reviewer1", "Reviewer2") and isinstance(v, int)}


def make_handler(settings: Settings, log: TextIO) -> http.Handler:
    async def handler(request: Request) -> Response:
        if request.method == "GET" and request.path == "/health":
            return bookinfo.json_response('{"status": "Reviews is healthy"}')
        match = REVIEWS_PATH.fullmatch(request.path)
        if request.method == "GET" and match:
            product_id = int(match.group(1))
            stars = await fetch_stars(settings, product_id, request, log) if settings.ratings_enabled else {}
            body = reviews_body(settings, product_id, stars)
            log.flush()
            return bookinfo.json_response(json.dumps(body))
        return Response(404, [("Content-Type", "text/plain")], b"")

    return handler


def startup_lines(settings: Settings, port: int) -> list[str]:
    return [
        "Launching defaultServer (Open Liberty 24.0.0.12/wlp-1.0.96.cl241220241119-0657) on Eclipse OpenJ9 VM, "
        "version 17.0.13+11 (en_US)",
        "[AUDIT   ] CWWKE0001I: The server defaultServer has been launched.",
        f"[AUDIT   ] CWWKT0016I: Web application available (default_host): http://{settings.pod}:{port}/",
        "[AUDIT   ] CWWKZ0001I: Application reviews-app started.",
        "[AUDIT   ] CWWKF0011I: The defaultServer server is ready to run a smarter planet. "
        "The defaultServer server started.",
    ]


async def run(port: int, settings: Settings, log: TextIO) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(bookinfo.serve, port, make_handler(settings, log))
        log.write("".join(line + "\n" for line in startup_lines(settings, port)))
        log.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="reviews", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=bookinfo.PORT)
    parser.add_argument("--service-version", default="v1")
    parser.add_argument("--enable-ratings", action="store_true")
    parser.add_argument("--star-color", default="black")
    args = parser.parse_args(argv)
    settings = Settings.from_image(args.service_version, args.enable_ratings, args.star_color)
    try:
        trio.run(run, args.port, settings, sys.stdout)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
