"""What httpbin reports about a request: its args, headers, origin, url, form, files, data and json.

Mirrors httpbin's `get_dict` helper as seen through Flask and Werkzeug: header names in Title-Case,
repeated headers joined with ",", single-valued query args flattened, a body that is not UTF-8
shown as a `data:` URL, proxy headers hidden unless `?show_env` is given.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from email import policy
from email.parser import BytesParser
from typing import Any

from components.common.http import Request

# Headers httpbin hides unless the query has `show_env` (they describe its hosting, not the client).
ENV_HEADERS = frozenset(h.lower() for h in (
    "X-Varnish", "X-Request-Start", "X-Heroku-Queue-Depth", "X-Real-Ip", "X-Forwarded-Proto",
    "X-Forwarded-Protocol", "X-Forwarded-Ssl", "X-Heroku-Queue-Wait-Time", "X-Forwarded-For",
    "X-Heroku-Dynos-In-Use", "X-Forwarded-Port", "X-Request-Id", "Via", "Total-Route-Time",
    "Connect-Time",
))


def title_case(name: str) -> str:
    """A header name as Werkzeug rebuilds it from the WSGI environ: `x-b3-traceid` -> `X-B3-Traceid`."""
    return name.replace("_", "-").title()


def headers(request: Request, hide_env: bool = True) -> dict[str, str]:
    if "show_env" in request.query:
        hide_env = False
    result: dict[str, str] = {}
    for name, value in request.headers:
        if hide_env and name in ENV_HEADERS:
            continue
        key = title_case(name)
        result[key] = f"{result[key]},{value}" if key in result else value
    return result


def semiflatten(multi: dict[str, list[str]]) -> dict[str, Any]:
    """Single values as strings, repeated ones as lists (httpbin's `semiflatten`)."""
    return {key: values[0] if len(values) == 1 else values for key, values in multi.items()}


def client_ip(request: Request) -> str:
    client = request.client
    if isinstance(client, tuple) and client:
        return str(client[0])
    return str(client or "")


def origin(request: Request) -> str:
    return request.header("x-forwarded-for") or client_ip(request)


def url(request: Request) -> str:
    scheme = request.header("x-forwarded-proto") or request.header("x-forwarded-protocol")
    if scheme is None:
        scheme = "https" if request.header("x-forwarded-ssl") == "on" else "http"
    host = request.header("host") or "localhost"
    return f"{scheme}://{host}{request.target}"


def json_safe(data: bytes, content_type: str = "application/octet-stream") -> str:
    """The body as text if it is UTF-8, else an RFC 2397 `data:` URL."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _add(target: dict[str, Any], key: str, value: Any) -> None:
    if key not in target:
        target[key] = value
    elif isinstance(target[key], list):
        target[key].append(value)
    else:
        target[key] = [target[key], value]


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    form: dict[str, Any] = {}
    files: dict[str, Any] = {}
    if not message.is_multipart():
        return form, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            _add(files, str(name), json_safe(payload, part.get_content_type()))
        else:
            _add(form, str(name), payload.decode("utf-8", errors="replace"))
    return form, files


def body_fields(request: Request) -> dict[str, Any]:
    """`form`, `files`, `data` and `json` of a request; a form body leaves `data` empty, as in Werkzeug."""
    content_type = request.header("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    form: dict[str, Any] = {}
    files: dict[str, Any] = {}
    data = b""
    if media_type == "application/x-www-form-urlencoded":
        form = semiflatten(urllib.parse.parse_qs(request.body.decode("latin-1"), keep_blank_values=True))
    elif media_type == "multipart/form-data":
        form, files = _multipart(content_type, request.body)
    else:
        data = request.body
    try:
        parsed = json.loads(data.decode("utf-8")) if data else None
    except ValueError:
        parsed = None
    return {"form": form, "files": files, "data": json_safe(data), "json": parsed}


def get_dict(request: Request, *keys: str, **extras: Any) -> dict[str, Any]:
    """The named fields of httpbin's request description, in the order asked, plus `extras`."""
    makers = {
        "url": lambda: url(request),
        "args": lambda: semiflatten(request.query),
        "headers": lambda: headers(request),
        "origin": lambda: origin(request),
        "method": lambda: request.method,
    }
    body = body_fields(request) if any(k in ("form", "files", "data", "json") for k in keys) else {}
    result = {key: body[key] if key in body else makers[key]() for key in keys}
    result.update(extras)
    return result
