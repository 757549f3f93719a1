"""httpbin: routes, response shapes and gunicorn-style logs, without sockets."""

from __future__ import annotations

import datetime
import io
import json
import re

import trio
import trio.testing

from components.apps import gunicorn, httpbin_index
from components.apps.httpbin import make_handler
from components.apps.httpbin_request import headers, title_case
from components.common.http import Request, Response, serve_connection

CLIENT = ("10.244.2.8", 40112)


def request(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Request:
    base = [("host", "httpbin:8000"), ("user-agent", "curl/7.88.1"), ("accept", "*/*")]
    return Request(method, target, base + (headers or []), body, CLIENT)


async def call(method: str, target: str, headers: list[tuple[str, str]] | None = None,
               body: bytes = b"", log: io.StringIO | None = None) -> Response:
    handler = make_handler(gunicorn.Logger(log or io.StringIO()))
    return await handler(request(method, target, headers, body))


def test_index_page_has_the_title_line_users_grep_for():
    assert "\n    <title>httpbin.org</title>\n" in httpbin_index.PAGE
    assert httpbin_index.PAGE.startswith("<!DOCTYPE html>\n<html lang=\"en\">\n\n<head>\n")


async def test_index_is_html():
    response = await call("GET", "/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert b"    <title>httpbin.org</title>" in response.body


async def test_get_is_shaped_and_indented_like_httpbin():
    response = await call("GET", "/get?a=1&a=2&b=3", [("x-b3-traceid", "abc")])
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.header("server") == "gunicorn/19.9.0"
    assert response.header("access-control-allow-origin") == "*"
    assert response.header("access-control-allow-credentials") == "true"
    body = response.json_body()
    assert body == {
        "args": {"a": ["1", "2"], "b": "3"},
        "headers": {"Accept": "*/*", "Host": "httpbin:8000", "User-Agent": "curl/7.88.1", "X-B3-Traceid": "abc"},
        "origin": "10.244.2.8",
        "url": "http://httpbin:8000/get?a=1&a=2&b=3",
    }
    assert response.body == (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
    assert response.body.startswith(b'{\n  "args": {\n')


async def test_get_refuses_other_methods_with_allow():
    response = await call("POST", "/get")
    assert response.status == 405
    assert response.header("allow") == "GET, HEAD, OPTIONS"
    assert b"<title>405 Method Not Allowed</title>" in response.body


async def test_unknown_path_is_404():
    response = await call("GET", "/nothing-here")
    assert response.status == 404
    assert b"<h1>Not Found</h1>" in response.body


async def test_options_answers_allow_and_cors_preflight():
    response = await call("OPTIONS", "/post", [("access-control-request-headers", "x-foo")])
    assert response.status == 200
    assert response.header("allow") == "OPTIONS, POST"
    assert response.header("access-control-allow-methods") == "GET, POST, PUT, DELETE, PATCH, OPTIONS"
    assert response.header("access-control-allow-headers") == "x-foo"


async def test_head_is_served_where_get_is():
    response = await call("HEAD", "/headers")
    assert response.status == 200


async def test_ip_uses_forwarded_for_when_present():
    assert (await call("GET", "/ip")).json_body() == {"origin": "10.244.2.8"}
    forwarded = await call("GET", "/ip", [("x-forwarded-for", "1.2.3.4")])
    assert forwarded.json_body() == {"origin": "1.2.3.4"}


async def test_user_agent_and_uuid():
    assert (await call("GET", "/user-agent")).json_body() == {"user-agent": "curl/7.88.1"}
    value = (await call("GET", "/uuid")).json_body()["uuid"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)


def test_header_names_are_title_cased_and_env_headers_hidden():
    assert title_case("x-envoy-attempt-count") == "X-Envoy-Attempt-Count"
    req = request("GET", "/headers", [("x-forwarded-proto", "http"), ("x-request-id", "r1"),
                                       ("x-b3-sampled", "0"), ("cookie", "a=1"), ("cookie", "b=2")])
    shown = headers(req)
    assert "X-Forwarded-Proto" not in shown and "X-Request-Id" not in shown
    assert shown["X-B3-Sampled"] == "0"
    assert shown["Cookie"] == "a=1,b=2"
    env = headers(request("GET", "/headers?show_env=1", [("x-request-id", "r1")]))
    assert env["X-Request-Id"] == "r1"


async def test_headers_endpoint():
    body = (await call("GET", "/headers")).json_body()
    assert body == {"headers": {"Accept": "*/*", "Host": "httpbin:8000", "User-Agent": "curl/7.88.1"}}


async def test_post_form():
    body = (await call("POST", "/post?x=y", [("content-type", "application/x-www-form-urlencoded")],
                       b"a=1&b=2&b=3")).json_body()
    assert set(body) == {"args", "data", "files", "form", "headers", "json", "origin", "url"}
    assert body["form"] == {"a": "1", "b": ["2", "3"]}
    assert body["data"] == ""
    assert body["json"] is None
    assert body["args"] == {"x": "y"}


async def test_put_json_and_patch_and_delete():
    body = (await call("PUT", "/put", [("content-type", "application/json")], b'{"k": [1, 2]}')).json_body()
    assert body["json"] == {"k": [1, 2]}
    assert body["data"] == '{"k": [1, 2]}'
    assert (await call("PATCH", "/patch", body=b"plain")).json_body()["data"] == "plain"
    assert (await call("DELETE", "/delete")).status == 200
    assert (await call("GET", "/delete")).status == 405


async def test_binary_body_is_a_data_url():
    body = (await call("POST", "/post", body=b"\xff\xfe")).json_body()
    assert body["data"] == "data:application/octet-stream;base64,//4="


async def test_multipart_files_and_fields():
    boundary = "XyZ"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
               f"Content-Type: text/plain\r\n\r\nfile content\r\n--{boundary}--\r\n").encode()
    body = (await call("POST", "/post", [("content-type", f"multipart/form-data; boundary={boundary}")],
                       payload)).json_body()
    assert body["form"] == {"field": "value"}
    assert body["files"] == {"upload": "file content"}


async def test_anything_takes_any_method_and_path():
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = await call(method, "/anything/a/b?q=1")
        assert response.status == 200
        body = response.json_body()
        assert body["method"] == method
        assert body["url"] == "http://httpbin:8000/anything/a/b?q=1"
        assert set(body) == {"args", "data", "files", "form", "headers", "json", "method", "origin", "url"}
    assert (await call("POST", "/anything")).json_body()["method"] == "POST"


async def test_status_single_and_teapot():
    assert (await call("GET", "/status/503")).status == 503
    teapot = await call("GET", "/status/418")
    assert teapot.status == 418
    assert b"-=[ teapot ]=-" in teapot.body
    assert teapot.header("x-more-info") == "http://tools.ietf.org/html/rfc2324"
    assert (await call("GET", "/status/302")).header("location") == "/redirect/1"
    assert (await call("POST", "/status/201")).status == 201


async def test_status_list_picks_one_of_the_codes():
    seen = {(await call("GET", "/status/200,500,503")).status for _ in range(60)}
    assert seen <= {200, 500, 503} and len(seen) > 1
    weighted = {(await call("GET", "/status/500:1,200:0")).status for _ in range(20)}
    assert weighted == {500}


async def test_status_rejects_garbage():
    response = await call("GET", "/status/abc")
    assert response.status == 400
    assert response.body == b"Invalid status code"


async def test_delay_waits_and_is_capped(autojump_clock):
    start = trio.current_time()
    response = await call("GET", "/delay/2")
    assert trio.current_time() - start == 2
    assert set(response.json_body()) == {"args", "data", "files", "form", "headers", "origin", "url"}
    start = trio.current_time()
    await call("GET", "/delay/60")
    assert trio.current_time() - start == 10


async def test_bytes_are_random_capped_and_seedable():
    response = await call("GET", "/bytes/64")
    assert len(response.body) == 64
    assert response.header("content-type") == "application/octet-stream"
    one = (await call("GET", "/bytes/32?seed=7")).body
    assert one == (await call("GET", "/bytes/32?seed=7")).body
    assert len((await call("GET", "/bytes/1000000")).body) == 100 * 1024


async def test_response_headers_echo_the_query():
    response = await call("GET", "/response-headers?freeform=hello&X-Test=1")
    assert response.header("freeform") == "hello"
    body = response.json_body()
    assert body["freeform"] == "hello" and body["X-Test"] == "1"
    assert body["Content-Length"] == str(len(response.body))


async def test_redirect_chain_ends_at_get():
    first = await call("GET", "/redirect/2")
    assert (first.status, first.header("location")) == (302, "/relative-redirect/1")
    last = await call("GET", "/relative-redirect/1")
    assert last.header("location") == "/get"


async def exchange(raw: bytes) -> tuple[bytes, str]:
    """Serve one raw HTTP/1.1 conversation over in-memory streams; return the bytes sent back and the log."""
    log = io.StringIO()
    client, server = trio.testing.memory_stream_pair()
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server, make_handler(gunicorn.Logger(log)), CLIENT)
        await client.send_all(raw)
        await client.send_eof()
        while True:
            data = await client.receive_some(65536)
            if not data:
                break
            received += data
    return bytes(received), log.getvalue()


async def test_over_http_with_an_access_line():
    raw, log = await exchange(b"GET / HTTP/1.1\r\nHost: httpbin:8000\r\nUser-Agent: curl/7.88.1\r\n"
                              b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"\n    <title>httpbin.org</title>\n" in raw
    size = len(httpbin_index.PAGE.encode())
    assert re.fullmatch(r'10\.244\.2\.8 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET / HTTP/1\.1" 200 '
                        + str(size) + r' "-" "curl/7\.88\.1"\n', log)


async def test_stream_sends_n_json_lines_chunked():
    raw, log = await exchange(b"GET /stream/3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    lines = [json.loads(line) for line in re.findall(rb"\{.*\}", body)]
    assert [line["id"] for line in lines] == [0, 1, 2]
    assert lines[0]["url"] == "http://h/stream/3"
    assert '"GET /stream/3 HTTP/1.1" 200 ' in log


def test_gunicorn_line_formats():
    when = datetime.datetime(2024, 3, 17, 12, 59, 50, tzinfo=datetime.timezone.utc)
    assert (gunicorn.access_line("10.244.2.8", "GET / HTTP/1.1", 200, 9593, None, "curl/7.88.1", when)
            == '10.244.2.8 - - [17/Mar/2024:12:59:50 +0000] "GET / HTTP/1.1" 200 9593 "-" "curl/7.88.1"')
    assert (gunicorn.error_line("INFO", "Listening at: http://0.0.0.0:8080 (1)", 1, when)
            == "[2024-03-17 12:59:50 +0000] [1] [INFO] Listening at: http://0.0.0.0:8080 (1)")


def test_startup_lines():
    out = io.StringIO()
    log = gunicorn.Logger(out)
    log.startup("0.0.0.0:8080")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("[INFO] Starting gunicorn 19.9.0")
    assert lines[1].endswith(f"[INFO] Listening at: http://0.0.0.0:8080 ({log.pid})")
    assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\] \[\d+\] \[INFO\] ", lines[1])
