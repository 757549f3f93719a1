"""The CA's root: kept in istio-system/istio-ca-secret across restarts, published as istio-ca-root-cert
in every namespace (as istiod's namespace controller: also ones created later, restored when edited or
deleted); and a CA without trusted node accounts refuses all impersonation."""

from __future__ import annotations

import base64

import trio

from components.ca.server import CAServer
from components.common import http, pki
from components.common.apiclient import ApiClient, ApiError
from components.common.tls import Identity
from tests.unit.test_apiserver_support import api, apiserver, eventually, signing_key  # noqa: F401
from tests.unit.test_ca_support import SLEEP, ca, ca_config, cluster, fetch, issue_token, refused  # noqa: F401

CM = "istio-ca-root-cert"


async def test_the_root_survives_a_restart_of_the_ca(api, cluster, tmp_path):
    async with trio.open_nursery() as nursery:
        first = await nursery.start(CAServer(ca_config(api)).run)
        first_root = first.root.cert_pem
        leaf = await fetch(first, await issue_token(api, cluster["sleep"]), SLEEP)
        nursery.cancel_scope.cancel()
    secret = await api.get("v1", "Secret", "istio-system", "istio-ca-secret")
    assert secret["type"] == "istio.io/ca-root"
    assert base64.b64decode(secret["data"]["ca-cert.pem"]) == first_root
    assert pki.load_private_key(base64.b64decode(secret["data"]["ca-key.pem"]))
    async with trio.open_nursery() as nursery:
        second = await nursery.start(CAServer(ca_config(api)).run)
        assert second.root.cert_pem == first_root
        again = await fetch(second, await issue_token(api, cluster["sleep"]), SLEEP)
        assert again.root_pem == leaf.root_pem
        assert again.cert.issuer == leaf.cert.issuer
        nursery.cancel_scope.cancel()


async def _published(api: ApiClient) -> dict[str, dict]:
    listing = await api.list("v1", "ConfigMap", field_selector=f"metadata.name={CM}")
    return {item["metadata"]["namespace"]: item for item in listing["items"]}


async def test_the_root_is_published_in_every_namespace_and_kept_there(ca, api):
    root = ca.root.cert_pem.decode()

    async def everywhere() -> bool:
        published = await _published(api)
        assert {"default", "kube-system", "istio-system"} <= set(published), sorted(published)
        return all(cm["data"] == {"root-cert.pem": root} and cm["metadata"]["labels"] == {"istio.io/config": "true"}
                   for cm in published.values())

    await eventually(everywhere)
    # istiod's namespace controller skips these system namespaces (kube-system it keeps, for ztunnel).
    assert not {"kube-public", "kube-node-lease"} & set(await _published(api))

    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
    await eventually(lambda: _has_root(api, "later", root))

    await api.delete("v1", "ConfigMap", "default", CM)
    await eventually(lambda: _has_root(api, "default", root))

    await api.patch("v1", "ConfigMap", "istio-system", CM, {"data": {"root-cert.pem": "tampered", "extra": "kept"}})

    async def restored() -> bool:
        cm = await api.get("v1", "ConfigMap", "istio-system", CM)
        return cm["data"] == {"root-cert.pem": root, "extra": "kept"}

    await eventually(restored)


async def _has_root(api: ApiClient, namespace: str, root: str) -> bool:
    try:
        cm = await api.get("v1", "ConfigMap", namespace, CM)
    except ApiError:
        return False
    return cm["data"].get("root-cert.pem") == root


async def test_without_trusted_node_accounts_no_one_may_impersonate(nursery, api, cluster):
    server = await nursery.start(CAServer(ca_config(api, trusted_node_accounts=[])).run)
    token = await issue_token(api, cluster["ztunnel"])
    refusal = await refused(server, token, SLEEP, impersonate=True)
    assert refusal.code == 16
    assert refusal.message == ("request impersonation authentication failure: impersonation not allowed, as node "
                               "authorizer (CA_TRUSTED_NODE_ACCOUNTS) is not configured")
    assert (await fetch(server, await issue_token(api, cluster["sleep"]), SLEEP)).identity == Identity.parse(SLEEP)


async def test_the_ca_waits_for_its_namespace_before_serving(nursery, api, caplog):
    server = CAServer(ca_config(api))
    nursery.start_soon(server.run)
    with trio.fail_after(5):
        while not any("Failed to write secret to CA" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.01)
    assert server.root is None and not server.serving.is_set()
    assert (await http.request(f"127.0.0.1:{server.ready_port}", "GET", "/ready")).status == 503
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    with trio.fail_after(5):
        await server.serving.wait()
    assert server.root is not None
    assert (await http.request(f"127.0.0.1:{server.ready_port}", "GET", "/ready")).status == 200
