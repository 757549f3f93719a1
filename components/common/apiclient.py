"""A client of the Kubernetes-shaped apiserver: CRUD, watch, and a reflector.

Objects are plain dicts in Kubernetes' JSON shape. Errors come back as `ApiError` carrying the
apiserver's Status object (reason `NotFound`, `AlreadyExists`, `Invalid`, `Conflict`, ...).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from components.common import http, kinds

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error Status from the apiserver."""

    def __init__(self, status: dict[str, Any]):
        self.status = status
        self.code: int = status.get("code", 500)
        self.reason: str = status.get("reason", "")
        super().__init__(status.get("message", f"apiserver error {self.code}"))


def _query(**params: Any) -> str:
    items = {k.replace("_", ""): v for k, v in params.items() if v not in (None, "", False)}
    keymap = {"labelselector": "labelSelector", "fieldselector": "fieldSelector",
              "resourceversion": "resourceVersion", "timeoutseconds": "timeoutSeconds",
              "fieldmanager": "fieldManager", "dryrun": "dryRun"}
    items = {keymap.get(k, k): ("true" if v is True else v) for k, v in items.items()}
    return ("?" + urllib.parse.urlencode(items)) if items else ""


def kind_of(obj: dict[str, Any]) -> kinds.Kind:
    return kinds.for_object(obj.get("apiVersion", ""), obj.get("kind", ""))


class ApiClient:
    """Talks to the apiserver at `unix:/path` or `host:port`."""

    def __init__(self, address: str):
        self.address = address

    async def _request(self, method: str, path: str, body: Any, content_type: str, accept: str) -> http.Response:
        data = b"" if body is None else json.dumps(body).encode()
        headers = [("content-type", content_type), ("accept", accept)]
        try:
            response = await http.request(self.address, method, path, headers=headers, body=data)
        except (OSError, http.HTTPError) as exc:
            raise ApiError({"code": 503, "reason": "ServiceUnavailable",
                            "message": f"the apiserver at {self.address} cannot be reached: {exc}"}) from exc
        if response.status >= 400:
            try:
                payload = response.json_body()
            except ValueError:
                payload = None
            if isinstance(payload, dict) and payload.get("kind") == "Status":
                raise ApiError(payload)
            raise ApiError({"code": response.status, "message": response.body.decode(errors="replace")})
        return response

    async def _call(self, method: str, path: str, body: Any = None,
                    content_type: str = "application/json") -> Any:
        response = await self._request(method, path, body, content_type, "application/json")
        return response.json_body() if response.body else None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """A raw REST call, for subresources without a helper (e.g. serviceaccounts/<sa>/token)."""
        return await self._call(method, path, body)

    async def call_raw(self, method: str, path: str, body: Any = None) -> bytes:
        """A raw REST call whose answer is not JSON, e.g. a pod's metrics through the pod proxy
        (`/api/v1/namespaces/<ns>/pods/<pod>:15020/proxy/stats/prometheus`): the body as sent."""
        response = await self._request(method, path, body, "application/json", "*/*")
        return response.body

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return await self._call("GET", kinds.for_object(api_version, kind).object_path(name, namespace))

    async def list(self, api_version: str, kind: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
        path = kinds.for_object(api_version, kind).collection_path(namespace)
        return await self._call("GET", path + _query(label_selector=label_selector, field_selector=field_selector))

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return await self._call("POST", kind_of(obj).collection_path(namespace), obj)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        return await self._call("PUT", kind_of(obj).object_path(meta["name"], meta.get("namespace")), obj)

    async def replace_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        path = kind_of(obj).object_path(meta["name"], meta.get("namespace")) + "/status"
        return await self._call("PUT", path, obj)

    async def patch(self, api_version: str, kind: str, namespace: str | None, name: str,
                    patch: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        """A JSON merge patch (RFC 7386), as `kubectl patch --type merge`."""
        path = kinds.for_object(api_version, kind).object_path(name, namespace)
        if subresource:
            path += "/" + subresource
        return await self._call("PATCH", path, patch, "application/merge-patch+json")

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None) -> dict[str, Any]:
        path = kinds.for_object(api_version, kind).object_path(name, namespace)
        if grace_period_seconds is not None:
            path += f"?gracePeriodSeconds={grace_period_seconds}"
        return await self._call("DELETE", path)

    async def apply(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create the object, or replace it if it exists: returns ("created"|"configured"|"unchanged", obj)."""
        meta = obj.get("metadata", {})
        try:
            current = await self.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            return "created", await self.create(obj)
        # No resourceVersion: like kubectl apply, the manifest wins, so a controller writing the
        # object's status meanwhile is not a conflict.
        merged = dict(obj)
        merged["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
        if "status" in current and "status" not in obj:
            merged["status"] = current["status"]
        updated = await self.replace(merged)
        changed = updated["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
        return ("configured" if changed else "unchanged"), updated

    @asynccontextmanager
    async def watch(self, api_version: str, kind: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Yield an iterator of watch events ({"type": ..., "object": ...}) from `resource_version`."""
        path = kinds.for_object(api_version, kind).collection_path(namespace) + _query(
            watch=True, resource_version=resource_version, label_selector=label_selector,
            field_selector=field_selector)
        try:
            async with http.stream(self.address, "GET", path) as (status, _headers, chunks):
                if status >= 400:
                    body = b"".join([c async for c in chunks])
                    raise ApiError(json.loads(body) if body.startswith(b"{") else {"code": status})

                async def events() -> AsyncIterator[dict[str, Any]]:
                    buffer = b""
                    async for chunk in chunks:
                        buffer += chunk
                        while b"\n" in buffer:
                            line, buffer = buffer.split(b"\n", 1)
                            if line.strip():
                                yield json.loads(line)

                yield events()
        except (OSError, http.HTTPError) as exc:
            raise ApiError({"code": 503, "reason": "ServiceUnavailable",
                            "message": f"watch on {self.address} failed: {exc}"}) from exc

    async def reflect(self, api_version: str, kind: str, namespace: str | None = None, *,
                      label_selector: str | None = None, field_selector: str | None = None,
                      retry_delay: float = 0.2) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """List then watch forever, yielding (event type, object).

        Starts with a "SYNC" event whose object is the list (so callers can replace their cache),
        then ADDED/MODIFIED/DELETED events. On a lost watch or an expired resourceVersion it
        lists again and yields a fresh SYNC; it never gives up (the apiserver may restart).
        """
        while True:
            try:
                listing = await self.list(api_version, kind, namespace,
                                          label_selector=label_selector, field_selector=field_selector)
                yield "SYNC", listing
                version = listing["metadata"]["resourceVersion"]
                async with self.watch(api_version, kind, namespace, resource_version=version,
                                      label_selector=label_selector, field_selector=field_selector) as events:
                    async for event in events:
                        if event["type"] == "ERROR":
                            break
                        if event["type"] == "BOOKMARK":
                            continue
                        yield event["type"], event["object"]
            except ApiError as exc:
                log.debug("watch %s %s interrupted: %s", api_version, kind, exc)
            await trio.sleep(retry_delay)
