"""Bookinfo's four services on 127.0.0.1, calling each other over real sockets."""

from __future__ import annotations

import io
import json
import re
from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from components.apps import bookinfo, bookinfo_details, bookinfo_productpage, bookinfo_ratings, bookinfo_reviews
from components.common import http
from components.common.http import Request, Response

LOCAL = "127.0.0.1"


async def start(nursery: trio.Nursery, handler: http.Handler) -> bookinfo.Backend:
    listeners = await nursery.start(bookinfo.serve, 0, handler)
    return bookinfo.Backend(LOCAL, listeners[0].socket.getsockname()[1])


async def get(backend: bookinfo.Backend, target: str, headers: list[tuple[str, str]] | None = None,
              method: str = "GET", body: bytes = b"") -> Response:
    return await http.request(backend.authority, method, target, headers=headers, body=body, host=backend.authority)


class Recorder:
    """A stand-in peer that records the requests it gets and answers with a fixed status."""

    def __init__(self, status: int = 200, body: object = None):
        self.status = status
        self.body = body
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(self.status, [("content-type", "application/json")], json.dumps(self.body).encode())


def reviews_settings(ratings: bookinfo.Backend | None, version: str, pod: str) -> bookinfo_reviews.Settings:
    enable, color = {"v1": (False, "black"), "v2": (True, "black"), "v3": (True, "red")}[version]
    env = {"HOSTNAME": pod}
    if ratings is not None:
        env |= {"RATINGS_HOSTNAME": ratings.host, "RATINGS_SERVICE_PORT": str(ratings.port)}
    else:
        env |= {"RATINGS_HOSTNAME": LOCAL, "RATINGS_SERVICE_PORT": "1"}
    return bookinfo_reviews.Settings.from_image(version, enable, color, env)


@asynccontextmanager
async def bookinfo_app(reviews_version: str = "v2") -> AsyncIterator[tuple[bookinfo.Backend, io.StringIO]]:
    """The whole application: ratings, details, one reviews version and productpage in front."""
    async with trio.open_nursery() as nursery:
        ratings = await start(nursery, bookinfo_ratings.make_handler(bookinfo_ratings.Ratings("v1"), io.StringIO()))
        details = await start(nursery, bookinfo_details.make_handler(bookinfo_details.Log(io.StringIO())))
        settings = reviews_settings(ratings, reviews_version, f"reviews-{reviews_version}-7d8c5b6f9-x2k4p")
        reviews = await start(nursery, bookinfo_reviews.make_handler(settings, io.StringIO()))
        log = io.StringIO()
        page = bookinfo_productpage.ProductPage(bookinfo_productpage.Backends(details, reviews, ratings),
                                                bookinfo_productpage.Log(log))
        yield await start(nursery, page.handler()), log
        nursery.cancel_scope.cancel()


# details

async def test_details_answers_the_book_and_refuses_a_non_numeric_id():
    async with trio.open_nursery() as nursery:
        log = io.StringIO()
        details = await start(nursery, bookinfo_details.make_handler(bookinfo_details.Log(log)))
        response = await get(details, "/details/7")
        assert response.status == 200
        assert response.json_body() == {
            "id": 7, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
            "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}
        bad = await get(details, "/details/abc")
        assert (bad.status, bad.json_body()) == (400, {"error": "please provide numeric product id"})
        assert (await get(details, "/health")).json_body() == {"status": "Details is healthy"}
        missing = await get(details, "/nothing")
        assert missing.status == 404 and b"`/nothing' not found." in missing.body
        assert re.search(r'^127\.0\.0\.1 - - \[.+ UTC\] "GET /details/7 HTTP/1\.1" 200 \d+$', log.getvalue(), re.M)
        assert "- -> /details/7\n" in log.getvalue()
        nursery.cancel_scope.cancel()


# ratings

async def test_ratings_answers_stars_accepts_new_ones_and_refuses_nan():
    async with trio.open_nursery() as nursery:
        log = io.StringIO()
        ratings = await start(nursery, bookinfo_ratings.make_handler(bookinfo_ratings.Ratings("v1"), log))
        assert (await get(ratings, "/ratings/3")).json_body() == {"id": 3, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
        posted = await get(ratings, "/ratings/3", method="POST", body=b'{"Reviewer1": 1, "Reviewer2": 2}')
        assert posted.json_body() == {"id": 3, "ratings": {"Reviewer1": 1, "Reviewer2": 2}}
        assert (await get(ratings, "/ratings/3")).json_body()["ratings"] == {"Reviewer1": 1, "Reviewer2": 2}
        bad = await get(ratings, "/ratings/")
        assert (bad.status, bad.json_body()) == (400, {"error": "please provide numeric product ID"})
        assert (await get(ratings, "/health")).json_body() == {"status": "Ratings is healthy"}
        assert "GET /ratings/3\nPOST /ratings/3\n" in log.getvalue()
        nursery.cancel_scope.cancel()


async def test_ratings_unavailable_variant_answers_503_while_unavailable():
    state = bookinfo_ratings.Ratings("v-unavailable", unavailable=True)
    async with trio.open_nursery() as nursery:
        ratings = await start(nursery, bookinfo_ratings.make_handler(state, io.StringIO()))
        response = await get(ratings, "/ratings/0")
        assert (response.status, response.json_body()) == (503, {"error": "Service unavailable"})
        state.unavailable = False
        assert (await get(ratings, "/ratings/0")).status == 200
        nursery.cancel_scope.cancel()


# reviews

async def test_reviews_versions_differ_in_ratings_and_star_colour():
    async with trio.open_nursery() as nursery:
        ratings = await start(nursery, bookinfo_ratings.make_handler(bookinfo_ratings.Ratings("v1"), io.StringIO()))
        bodies = {}
        for version in ("v1", "v2", "v3"):
            settings = reviews_settings(ratings, version, f"reviews-{version}-abc")
            reviews = await start(nursery, bookinfo_reviews.make_handler(settings, io.StringIO()))
            bodies[version] = (await get(reviews, "/reviews/0")).json_body()
        assert bodies["v1"]["podname"] == "reviews-v1-abc"
        assert bodies["v1"]["clustername"] == "null"
        assert bodies["v1"]["id"] == "0"
        assert all("rating" not in r for r in bodies["v1"]["reviews"])
        assert [r["rating"] for r in bodies["v2"]["reviews"]] == [{"stars": 5, "color": "black"},
                                                                 {"stars": 4, "color": "black"}]
        assert [r["rating"] for r in bodies["v3"]["reviews"]] == [{"stars": 5, "color": "red"},
                                                                 {"stars": 4, "color": "red"}]
        nursery.cancel_scope.cancel()


async def test_reviews_without_ratings_service_says_ratings_are_unavailable():
    log = io.StringIO()
    async with trio.open_nursery() as nursery:
        reviews = await start(nursery, bookinfo_reviews.make_handler(reviews_settings(None, "v3", "r"), log))
        body = (await get(reviews, "/reviews/0")).json_body()
        assert [r["rating"] for r in body["reviews"]] == [{"error": "Ratings service is currently unavailable"}] * 2
        assert f"Error: unable to contact http://{LOCAL}:1/ratings got exception" in log.getvalue()
        nursery.cancel_scope.cancel()


async def test_reviews_propagate_tracing_and_user_headers_to_ratings():
    recorder = Recorder(200, {"id": 0, "ratings": {"Reviewer1": 2, "Reviewer2": 3}})
    async with trio.open_nursery() as nursery:
        ratings = await start(nursery, recorder)
        reviews = await start(nursery, bookinfo_reviews.make_handler(reviews_settings(ratings, "v2", "r"), io.StringIO()))
        body = (await get(reviews, "/reviews/0", [("x-request-id", "req-1"), ("end-user", "jason"),
                                                  ("x-b3-traceid", "abc"), ("x-private", "no")])).json_body()
        assert body["reviews"][0]["rating"] == {"stars": 2, "color": "black"}
        sent = dict(recorder.requests[0].headers)
        assert (sent["x-request-id"], sent["end-user"], sent["x-b3-traceid"]) == ("req-1", "jason", "abc")
        assert "x-private" not in sent
        nursery.cancel_scope.cancel()


def test_reviews_env_overrides_what_the_image_bakes_in():
    settings = bookinfo_reviews.Settings.from_image("v2", True, "black", {"STAR_COLOR": "red", "ENABLE_RATINGS": "no"})
    assert (settings.version, settings.ratings_enabled, settings.star_color) == ("v2", False, "red")
    assert settings.ratings_timeout == bookinfo_reviews.OTHER_TIMEOUT


# productpage

async def test_productpage_shows_details_reviews_black_stars_and_the_reviews_pod():
    async with bookinfo_app("v2") as (productpage, log):
        response = await get(productpage, "/productpage", [("user-agent", "curl/7.88.1")])
    page = response.body.decode()
    assert response.status == 200
    assert page.splitlines()[0] == "<!DOCTYPE html>"
    assert "<title>Simple Bookstore App</title>" in page
    assert "The Comedy of Errors" in page
    assert "<dt>Publisher:</dt>PublisherA" in page
    assert "An extremely entertaining play by Shakespeare." in page
    assert '<font color="black">' in page
    assert page.count('class="glyphicon glyphicon-star"') == 9
    assert page.count('class="glyphicon glyphicon-star-empty"') == 1
    assert [line for line in page.splitlines() if re.search("reviews-v.-", line)] == [
        "        <u>reviews-v2-7d8c5b6f9-x2k4p</u>"]
    assert "on cluster" not in page
    assert re.search(r'^INFO:werkzeug:127\.0\.0\.1 - - \[.+\] "GET /productpage HTTP/1\.1" 200 -$', log.getvalue(), re.M)
    assert f"DEBUG:urllib3.connectionpool:Starting new HTTP connection (1): {LOCAL}:" in log.getvalue()


async def test_productpage_with_reviews_v1_has_no_stars_and_v3_red_ones():
    async with bookinfo_app("v1") as (productpage, _):
        v1 = (await get(productpage, "/productpage")).body.decode()
    async with bookinfo_app("v3") as (productpage, _):
        v3 = (await get(productpage, "/productpage")).body.decode()
    assert "glyphicon-star" not in v1 and "<u>reviews-v1-" in v1
    assert '<font color="red">' in v3 and "<u>reviews-v3-" in v3


async def test_productpage_reports_failing_services_after_retrying_reviews():
    details, reviews = Recorder(503, {"error": "x"}), Recorder(503, {"error": "x"})
    async with trio.open_nursery() as nursery:
        backends = bookinfo_productpage.Backends(await start(nursery, details), await start(nursery, reviews),
                                                 bookinfo.Backend(LOCAL, 1))
        page = bookinfo_productpage.ProductPage(backends, bookinfo_productpage.Log(io.StringIO()))
        productpage = await start(nursery, page.handler())
        html = (await get(productpage, "/productpage")).body.decode()
        api = await get(productpage, "/api/v1/products/0/reviews")
        ratings = await get(productpage, "/api/v1/products/0/ratings")
        metrics = (await get(productpage, "/metrics")).body.decode()
        nursery.cancel_scope.cancel()
    assert "Error fetching product details!" in html
    assert "Sorry, product details are currently unavailable for this book." in html
    assert "Sorry, product reviews are currently unavailable for this book." in html
    assert len(details.requests) == 1 and len(reviews.requests) == 2 + 2
    assert (api.status, api.json_body()) == (503, {"error": "Sorry, product reviews are currently unavailable for this book."})
    assert (ratings.status, ratings.json_body()) == (500, {"error": "Sorry, product ratings are currently unavailable for this book."})
    assert 'request_result_total{destination_app="reviews",response_code="503"} 2.0' in metrics


async def test_productpage_api_routes():
    async with bookinfo_app("v3") as (productpage, _):
        products = await get(productpage, "/api/v1/products")
        product = await get(productpage, "/api/v1/products/0")
        bad = await get(productpage, "/api/v1/products/abc")
        reviews = await get(productpage, "/api/v1/products/0/reviews")
        ratings = await get(productpage, "/api/v1/products/0/ratings")
        health = await get(productpage, "/health")
        index = await get(productpage, "/")
        delete = await get(productpage, "/", method="DELETE")
        css = await get(productpage, "/static/bookinfo.css")
        absent = await get(productpage, "/static/nothing.js")
    assert products.json_body()[0]["title"] == "The Comedy of Errors"
    assert product.json_body()["ISBN-13"] == "123-1234567890"
    assert (bad.status, bad.json_body()) == (400, {"error": "Sorry, product details are currently unavailable for this book."})
    assert reviews.json_body()["reviews"][1]["rating"] == {"stars": 4, "color": "red"}
    assert ratings.json_body() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert health.body == b"Product page is healthy"
    assert index.body.startswith(b"<!DOCTYPE html>\n") and b"simple bookstore application" in index.body
    assert b"<th>endpoint</th><td>reviews</td>" in index.body
    assert (delete.status, delete.header("allow")) == (405, "GET, HEAD, OPTIONS")
    assert css.status == 200 and absent.status == 404


async def test_login_puts_the_user_in_the_session_and_end_user_header():
    recorder = Recorder(200, {"id": 0, "author": "x"})
    async with trio.open_nursery() as nursery:
        backends = bookinfo_productpage.Backends(await start(nursery, recorder), bookinfo.Backend(LOCAL, 1),
                                                 bookinfo.Backend(LOCAL, 1))
        page = bookinfo_productpage.ProductPage(backends, bookinfo_productpage.Log(io.StringIO()))
        productpage = await start(nursery, page.handler())
        login = await get(productpage, "/login", [("content-type", "application/x-www-form-urlencoded"),
                                                  ("referer", "http://bookinfo/productpage")],
                          method="POST", body=b"username=jason&passwd=x")
        cookie = login.header("set-cookie").split(";")[0]
        signed_in = (await get(productpage, "/productpage", [("cookie", cookie)])).body.decode()
        forged = cookie[:-2] + "xx"
        await get(productpage, "/productpage", [("cookie", forged)])
        logout = await get(productpage, "/logout", [("cookie", cookie)])
        nursery.cancel_scope.cancel()
    assert (login.status, login.header("location")) == (302, "http://bookinfo/productpage")
    assert cookie.startswith("session=")
    assert "jason ( <a href=\"logout\">sign out</a> )" in signed_in
    assert dict(recorder.requests[0].headers)["end-user"] == "jason"
    assert "end-user" not in dict(recorder.requests[1].headers)
    assert logout.status == 302 and "Max-Age=0" in logout.header("set-cookie")


def test_backend_addresses_follow_upstream_env_vars():
    env = {"SERVICES_DOMAIN": "default.svc.cluster.local", "DETAILS_HOSTNAME": "info", "DETAILS_SERVICE_PORT": "80"}
    assert bookinfo.Backend.from_env("details", env).url == "http://info.default.svc.cluster.local:80"
    assert bookinfo.Backend.from_env("reviews", {}).url == "http://reviews:9080"
