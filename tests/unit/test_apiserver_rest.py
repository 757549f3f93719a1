"""The apiserver's REST API: CRUD and its errors, selectors, watches, patches, the status
subresource, graceful deletion and persistence across a restart."""

from __future__ import annotations

import re

import trio

from components.apiserver import store as store_module
from components.apiserver.server import ApiServer
from components.common.apiclient import ApiClient
from tests.unit.test_apiserver_support import (add_node, api, apiserver, deployment, error_of, eventually,  # noqa: F401
                                               list_names, make_config, pod, raw, signing_key)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def config_map(name: str, namespace: str = "default", labels: dict[str, str] | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "data": data}


async def test_health_version_and_discovery(api: ApiClient):
    for path in ("/readyz", "/healthz", "/livez"):
        assert await raw(api, "GET", path) == (200, "ok")
    _, version = await raw(api, "GET", "/version")
    assert version["gitVersion"].startswith("v1.")
    _, core = await raw(api, "GET", "/api")
    assert core["versions"] == ["v1"]
    _, groups = await raw(api, "GET", "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    assert by_name["security.istio.io"]["preferredVersion"]["version"] == "v1"
    _, resources = await raw(api, "GET", "/api/v1")
    names = {r["name"] for r in resources["resources"]}
    assert {"pods", "pods/status", "serviceaccounts/token", "namespaces"} <= names


async def test_create_fills_in_metadata_and_list_has_kinds(api: ApiClient):
    status, created = await raw(api, "POST", "/api/v1/namespaces/default/configmaps",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                 "data": {"a": "1"}})
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert re.match(r"^[0-9a-f-]{36}$", meta["uid"])
    assert RFC3339.match(meta["creationTimestamp"])
    assert int(meta["resourceVersion"]) > 0 and meta["generation"] == 1
    listing = await api.list("v1", "ConfigMap", "default")
    assert listing["kind"] == "ConfigMapList" and listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    item = next(i for i in listing["items"] if i["metadata"]["name"] == "cfg")
    assert (item["kind"], item["apiVersion"]) == ("ConfigMap", "v1")


async def test_resource_versions_increase_with_every_write(api: ApiClient):
    first = await api.create(config_map("a"))
    second = await api.create(config_map("b"))
    updated = await api.patch("v1", "ConfigMap", "default", "a", {"data": {"x": "y"}})
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, updated)]
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_generate_name(api: ApiClient):
    created = await api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"generateName": "cfg-", "namespace": "default"}})
    assert re.match(r"^cfg-[bcdfghjklmnpqrstvwxz2456789]{5}$", created["metadata"]["name"])


async def test_errors_carry_kubernetes_messages(api: ApiClient):
    missing = await error_of(api.get("v1", "ConfigMap", "default", "nope"))
    assert (missing.code, missing.reason, str(missing)) == (404, "NotFound", 'configmaps "nope" not found')
    assert missing.status["details"] == {"name": "nope", "kind": "configmaps"}
    grouped = await error_of(api.get("apps/v1", "Deployment", "default", "x"))
    assert str(grouped) == 'deployments.apps "x" not found'
    assert grouped.status["details"] == {"name": "x", "group": "apps", "kind": "deployments"}
    await api.create(config_map("dup"))
    duplicate = await error_of(api.create(config_map("dup")))
    assert (duplicate.code, duplicate.reason) == (409, "AlreadyExists")
    assert str(duplicate) == 'configmaps "dup" already exists'
    await api.create(deployment("web"))
    duplicate = await error_of(api.create(deployment("web")))
    assert str(duplicate) == 'deployments.apps "web" already exists'
    no_namespace = await error_of(api.create(config_map("x", namespace="ghost")))
    assert (no_namespace.code, str(no_namespace)) == (404, 'namespaces "ghost" not found')
    status, body = await raw(api, "POST", "/api/v1/namespaces/default/configmaps", config_map("x", "kube-system"))
    assert (status, body["reason"], body["message"]) == (400, "BadRequest", "the namespace of the provided object does "
                                                         "not match the namespace sent on the request")
    for path in ("/api/v1/widgets", "/apis/apps/v1/namespaces/default/widgets", "/api/v1/namespaces/default/nodes",
                 "/apis/nope/v1/things", "/api/v1/pods/x"):
        status, body = await raw(api, "GET", path)
        assert (status, body["message"]) == (404, "the server could not find the requested resource"), path
    status, body = await raw(api, "PUT", "/api/v1/namespaces/default/configmaps", config_map("x"))
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


async def test_replace_with_a_stale_resource_version_conflicts(api: ApiClient):
    created = await api.create(pod("x"))
    await api.patch("v1", "Pod", "default", "x", {"metadata": {"labels": {"a": "b"}}})
    stale = await error_of(api.replace(created))
    assert (stale.code, stale.reason) == (409, "Conflict")
    assert str(stale) == ('Operation cannot be fulfilled on pods "x": the object has been modified; please apply your '
                          'changes to the latest version and try again')
    current = await api.get("v1", "Pod", "default", "x")
    unchanged = await api.replace(current)
    assert unchanged["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    without_version = dict(current, metadata={**current["metadata"], "resourceVersion": "", "labels": {"c": "d"}})
    assert (await api.replace(without_version))["metadata"]["labels"] == {"c": "d"}


async def test_generation_counts_spec_changes_only(api: ApiClient):
    created = await api.create(deployment("web"))
    relabelled = await api.patch("apps/v1", "Deployment", "default", "web", {"metadata": {"labels": {"x": "y"}}})
    assert relabelled["metadata"]["generation"] == created["metadata"]["generation"] == 1
    scaled = await api.patch("apps/v1", "Deployment", "default", "web", {"spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2
    assert (await api.apply({**deployment("web", replicas=3), "metadata": relabelled["metadata"]}))[0] == "unchanged"


async def test_a_kind_is_stored_once_and_served_at_every_version(api: ApiClient):
    policy = {"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "allow", "namespace": "default"},
              "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["x"]}}]}]}}
    await api.create(policy)
    assert (await api.get("security.istio.io/v1", "AuthorizationPolicy", "default", "allow"))["apiVersion"] == \
        "security.istio.io/v1"
    listing = await api.list("security.istio.io/v1beta1", "AuthorizationPolicy", "default")
    assert [i["apiVersion"] for i in listing["items"]] == ["security.istio.io/v1beta1"]
    cluster_scoped = await api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                                       "metadata": {"name": "istio-waypoint"},
                                       "spec": {"controllerName": "istio.io/mesh-controller"}})
    assert "namespace" not in cluster_scoped["metadata"]


async def test_label_selectors(api: ApiClient):
    await api.create(config_map("a", labels={"app": "a", "tier": "web"}))
    await api.create(config_map("b", labels={"app": "b", "tier": "db"}))
    await api.create(config_map("c", labels={"app": "c"}))
    cases = {"app=a": ["a"], "app==b": ["b"], "app!=a": ["b", "c"], "app in (a, b)": ["a", "b"],
             "app notin (a)": ["b", "c"], "tier": ["a", "b"], "!tier": ["c"], "app in (a,b),tier=db": ["b"],
             "tier!=db": ["a", "c"]}
    for selector, expected in cases.items():
        names = await list_names(api, "v1", "ConfigMap", "default", label_selector=selector)
        assert [n for n in names if n in "abc"] == expected, selector
    status, body = await raw(api, "GET", "/api/v1/configmaps?labelSelector=app%20in%20(a")
    assert (status, body["reason"]) == (400, "BadRequest")


async def test_field_selectors_and_all_namespaces(api: ApiClient):
    await add_node(api, "worker")
    await api.create(pod("bound", nodeName="worker"))
    await api.create(pod("other", namespace="kube-system", schedulerName="none"))
    assert await list_names(api, "v1", "Pod", field_selector="spec.nodeName=worker") == ["bound"]
    assert await list_names(api, "v1", "Pod", field_selector="spec.nodeName=") == ["other"]
    assert await list_names(api, "v1", "Pod", field_selector="metadata.namespace!=default") == ["other"]
    assert await list_names(api, "v1", "Pod", field_selector="status.phase==Pending,metadata.name=other") == ["other"]
    assert sorted(await list_names(api, "v1", "Pod", field_selector="spec.serviceAccountName=default")) == \
        ["bound", "other"]
    status, body = await raw(api, "GET", "/api/v1/pods?fieldSelector=spec.foo%3Dx")
    assert (status, body["message"]) == (400, "field label not supported: spec.foo")


async def collect(api: ApiClient, events: list, version: str | None = None, selector: str | None = None) -> None:
    async with api.watch("v1", "ConfigMap", "default", resource_version=version, label_selector=selector) as stream:
        async for event in stream:
            events.append((event["type"], event["object"]["metadata"]["name"]))


async def test_watch_streams_events_after_a_resource_version(api: ApiClient, nursery: trio.Nursery):
    await api.create(config_map("before"))
    version = (await api.list("v1", "ConfigMap", "default"))["metadata"]["resourceVersion"]
    events: list = []
    nursery.start_soon(collect, api, events, version)
    await trio.sleep(0.05)
    await api.create(config_map("x"))
    await api.patch("v1", "ConfigMap", "default", "x", {"data": {"k": "v"}})
    await api.delete("v1", "ConfigMap", "default", "x")
    await api.create(config_map("elsewhere", namespace="kube-system"))
    await eventually(lambda: _ready(events, 3))
    assert events == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]


async def _ready(events: list, count: int) -> bool:
    return len(events) >= count


async def test_watch_without_version_starts_with_existing_objects(api: ApiClient, nursery: trio.Nursery):
    await api.create(config_map("old"))
    events: list = []
    nursery.start_soon(collect, api, events)
    await eventually(lambda: _ready(events, 1))
    await api.create(config_map("new"))
    await eventually(lambda: _ready(events, 2))
    assert events == [("ADDED", "old"), ("ADDED", "new")]


async def test_watch_with_selector_sees_objects_leave_and_enter(api: ApiClient, nursery: trio.Nursery):
    await api.create(config_map("x", labels={"app": "a"}))
    version = (await api.list("v1", "ConfigMap"))["metadata"]["resourceVersion"]
    events: list = []
    nursery.start_soon(collect, api, events, version, "app=a")
    await trio.sleep(0.05)
    await api.patch("v1", "ConfigMap", "default", "x", {"metadata": {"labels": {"app": "b"}}})
    await api.patch("v1", "ConfigMap", "default", "x", {"data": {"ignored": "yes"}})
    await api.patch("v1", "ConfigMap", "default", "x", {"metadata": {"labels": {"app": "a"}}})
    await eventually(lambda: _ready(events, 2))
    assert events == [("DELETED", "x"), ("ADDED", "x")]


async def test_watch_from_a_version_out_of_history_is_expired(api: ApiClient, apiserver: ApiServer):
    version = apiserver.store.resource_version
    template = (await api.create(config_map("churn")))
    for i in range(store_module.HISTORY_SIZE):
        apiserver.store.put({**template, "data": {"i": str(i)}})
    async with api.watch("v1", "ConfigMap", "default", resource_version=str(version)) as stream:
        events = [event async for event in stream]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {version} (")


async def test_watch_ends_after_timeout_seconds(api: ApiClient):
    with trio.fail_after(3):
        status, body = await raw(api, "GET", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1"
                                              "&resourceVersion=1")
    assert status == 200


async def test_merge_and_json_patches(api: ApiClient):
    await api.create(config_map("p", labels={"keep": "1", "drop": "1"}, a="1"))
    merged = await api.patch("v1", "ConfigMap", "default", "p", {"metadata": {"labels": {"drop": None, "new": "2"}}})
    assert merged["metadata"]["labels"] == {"keep": "1", "new": "2"}
    status, strategic = await raw(api, "PATCH", "/api/v1/namespaces/default/configmaps/p", {"data": {"b": "2"}},
                                  "application/strategic-merge-patch+json")
    assert status == 200 and strategic["data"] == {"a": "1", "b": "2"}
    status, patched = await raw(api, "PATCH", "/api/v1/namespaces/default/configmaps/p", [
        {"op": "add", "path": "/data/c", "value": "3"}, {"op": "replace", "path": "/data/a", "value": "9"},
        {"op": "remove", "path": "/data/b"}, {"op": "add", "path": "/metadata/labels/x~1y", "value": "z"}],
        "application/json-patch+json")
    assert status == 200 and patched["data"] == {"a": "9", "c": "3"}
    assert patched["metadata"]["labels"]["x/y"] == "z"
    status, body = await raw(api, "PATCH", "/api/v1/namespaces/default/configmaps/p", {"a": 1}, "text/plain")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    missing = await error_of(api.patch("v1", "ConfigMap", "default", "ghost", {"data": {}}))
    assert missing.code == 404


async def test_status_is_written_only_through_the_status_subresource(api: ApiClient):
    created = await api.create({**deployment("web"), "status": {"replicas": 99}})
    assert created.get("status", {}).get("replicas") != 99
    service = await api.create({"apiVersion": "v1", "kind": "Service",
                                "metadata": {"name": "lb", "namespace": "default"},
                                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
                                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})
    assert service["status"] == {"loadBalancer": {}}
    ingress = {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}
    spec = {**service["spec"], "sessionAffinity": "ClientIP"}
    await api.replace_status({**service, "status": ingress, "spec": spec})
    current = await api.get("v1", "Service", "default", "lb")
    assert current["status"] == ingress and current["spec"]["sessionAffinity"] == "None"
    replaced = await api.replace({**current, "status": {}, "spec": spec})
    assert replaced["spec"]["sessionAffinity"] == "ClientIP" and replaced["status"] == ingress
    name = (await api.create(pod("p", schedulerName="nobody")))["metadata"]["name"]
    patched = await api.patch("v1", "Pod", "default", name,
                              {"status": {"phase": "Running"}, "spec": {"nodeName": "sneaky"}}, subresource="status")
    assert patched["status"]["phase"] == "Running" and "nodeName" not in patched["spec"]


async def test_deleting_a_bound_pod_is_graceful(api: ApiClient, nursery: trio.Nursery):
    await add_node(api, "worker")
    await api.create(pod("bound", nodeName="worker"))
    await api.create(pod("unbound", schedulerName="nobody"))
    events: list = []

    async def watch_pods() -> None:
        async with api.watch("v1", "Pod", "default") as stream:
            async for event in stream:
                obj = event["object"]
                events.append((event["type"], obj["metadata"]["name"], bool(obj["metadata"].get("deletionTimestamp"))))

    nursery.start_soon(watch_pods)
    await eventually(lambda: _ready(events, 2))
    marked = await api.delete("v1", "Pod", "default", "bound")
    assert RFC3339.match(marked["metadata"]["deletionTimestamp"])
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await api.get("v1", "Pod", "default", "bound"))["metadata"]["deletionTimestamp"]
    gone = await api.delete("v1", "Pod", "default", "unbound")
    assert "deletionTimestamp" not in gone["metadata"]
    await error_of(api.get("v1", "Pod", "default", "unbound"))
    await api.delete("v1", "Pod", "default", "bound", grace_period_seconds=0)
    assert (await error_of(api.get("v1", "Pod", "default", "bound"))).code == 404
    await eventually(lambda: _ready(events, 5))
    assert events[2:] == [("MODIFIED", "bound", True), ("DELETED", "unbound", False), ("DELETED", "bound", True)]


async def test_dry_run_stores_nothing(api: ApiClient):
    status, body = await raw(api, "POST", "/api/v1/namespaces/default/configmaps?dryRun=All", config_map("dry"))
    assert status == 201 and body["metadata"]["name"] == "dry"
    assert (await error_of(api.get("v1", "ConfigMap", "default", "dry"))).code == 404


async def test_a_restarted_apiserver_keeps_its_objects(tmp_path, signing_key):
    config = make_config(tmp_path, signing_key)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(ApiServer(config).run)
        api = ApiClient(config.listen[0])
        created = await api.create(config_map("kept"))
        service = await api.create({"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": "svc", "namespace": "default"},
                                    "spec": {"ports": [{"port": 80}]}})
        jwks = (await raw(api, "GET", "/openid/v1/jwks"))[1]
        version = server.store.resource_version
        nursery.cancel_scope.cancel()
    assert (config.data_dir / "store.json").exists()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(ApiServer(config).run)
        assert server.store.resource_version >= version
        again = await api.get("v1", "ConfigMap", "default", "kept")
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert (await raw(api, "GET", "/openid/v1/jwks"))[1] == jwks
        clash = await error_of(api.create({"apiVersion": "v1", "kind": "Service",
                                           "metadata": {"name": "svc2", "namespace": "default"},
                                           "spec": {"clusterIP": service["spec"]["clusterIP"],
                                                    "ports": [{"port": 80}]}}))
        assert clash.code == 422
        async with api.watch("v1", "ConfigMap", "default", resource_version=str(version - 1)) as stream:
            events = [event async for event in stream]
        assert events[0]["object"]["code"] == 410
        newer = await api.create(config_map("newer"))
        assert int(newer["metadata"]["resourceVersion"]) > version
        nursery.cancel_scope.cancel()
