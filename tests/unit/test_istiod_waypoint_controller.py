"""istiod's waypoint controller against the real apiserver, in-process on a Unix socket."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from components.common.apiclient import ApiClient, ApiError
from components.istiod.waypoints import WaypointController, desired_objects
from harness import images
from tests.unit.test_apiserver_support import api, apiserver, eventually, signing_key  # noqa: F401

GW = "gateway.networking.k8s.io/v1"


def gateway(name: str = "waypoint", cls: str = "istio-waypoint", **annotations: str) -> dict[str, Any]:
    return {"apiVersion": GW, "kind": "Gateway",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                         "labels": {"istio.io/waypoint-for": "service"}},
            "spec": {"gatewayClassName": cls,
                     "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}


@pytest.fixture
async def controller(api: ApiClient, nursery: trio.Nursery) -> WaypointController:
    started = WaypointController(api, clock=lambda: "2026-01-01T00:00:00Z")
    nursery.start_soon(started.run)
    return started


async def programmed(api: ApiClient, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        gw = await api.get(GW, "Gateway", "default", name)
        return gw if (gw.get("status") or {}).get("addresses") else None
    return await eventually(probe)


async def test_waypoint_gateway_gets_deployment_service_account_and_status(
        api: ApiClient, controller: WaypointController) -> None:
    await api.create(gateway())
    gw = await programmed(api, "waypoint")
    service = await api.get("v1", "Service", "default", "waypoint")
    deployment = await api.get("apps/v1", "Deployment", "default", "waypoint")
    await api.get("v1", "ServiceAccount", "default", "waypoint")

    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": service["spec"]["clusterIP"]}]
    assert [(c["type"], c["status"], c["message"]) for c in gw["status"]["conditions"]] == [
        ("Accepted", "True", "Resource accepted"),
        ("Programmed", "True", "Resource programmed, assigned to service(s) "
                               "waypoint.default.svc.cluster.local:15008")]
    assert {"name": "mesh", "port": 15008} in [{k: p[k] for k in ("name", "port")} for p in service["spec"]["ports"]]
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Gateway", "waypoint", gw["metadata"]["uid"])
    template = deployment["spec"]["template"]
    assert {"gateway.networking.k8s.io/gateway-name": "waypoint", "istio.io/gateway-name": "waypoint",
            "networking.istio.io/tunnel": "http", "istio.io/dataplane-mode": "none"}.items() \
        <= template["metadata"]["labels"].items()
    container = template["spec"]["containers"][0]
    assert container["image"] == "docker.io/istio/proxyv2:1.24.0"
    assert container["args"][:2] == ["proxy", "waypoint"]
    assert template["spec"]["serviceAccountName"] == "waypoint"


async def test_status_written_once_and_objects_restored(api: ApiClient, controller: WaypointController) -> None:
    await api.create(gateway())
    gw = await programmed(api, "waypoint")
    version = gw["metadata"]["resourceVersion"]
    await api.patch("v1", "Service", "default", "waypoint", {"metadata": {"labels": {"istio.io/gateway-name": "x"}}})
    await api.patch(GW, "Gateway", "default", "waypoint", {"metadata": {"labels": {"touched": "yes"}}})

    async def restored() -> bool:
        service = await api.get("v1", "Service", "default", "waypoint")
        return service["metadata"]["labels"]["istio.io/gateway-name"] == "waypoint"
    await eventually(restored)
    await trio.sleep(0.2)
    after = await api.get(GW, "Gateway", "default", "waypoint")
    assert after["status"] == gw["status"]
    assert int(after["metadata"]["resourceVersion"]) > int(version)


async def test_legacy_istio_mesh_form_of_seed_001(api: ApiClient, controller: WaypointController) -> None:
    await api.create(gateway("productpage", "istio-mesh", **{"istio.io/service-account": "bookinfo-productpage"}))
    gw = await programmed(api, "productpage")
    ready = next(c for c in gw["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Ready", 1)
    assert ready["message"] == 'Deployed waypoint proxy to "default" namespace for "bookinfo-productpage" service account'
    # Named as early ambient named it (seed 001 execs into deploy/bookinfo-productpage-waypoint-proxy),
    # so the application's own `productpage` Service is left alone.
    deployment = await api.get("apps/v1", "Deployment", "default", "bookinfo-productpage-waypoint-proxy")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "bookinfo-productpage"
    await api.get("v1", "Service", "default", "bookinfo-productpage-waypoint-proxy")
    for kind in ("Service", "ServiceAccount"):
        with pytest.raises(ApiError):
            await api.get("v1", kind, "default", "productpage")


async def test_other_gateway_classes_are_left_alone(api: ApiClient, controller: WaypointController) -> None:
    await api.create(gateway("ingress", "istio"))
    await api.create(gateway())
    await programmed(api, "waypoint")
    with pytest.raises(ApiError):
        await api.get("apps/v1", "Deployment", "default", "ingress")
    ingress = await api.get(GW, "Gateway", "default", "ingress")
    assert not (ingress.get("status") or {}).get("addresses")


async def test_deleting_the_gateway_removes_its_objects(api: ApiClient, controller: WaypointController) -> None:
    await api.create(gateway())
    await programmed(api, "waypoint")
    await api.delete(GW, "Gateway", "default", "waypoint")

    async def gone() -> bool:
        for version, kind in (("v1", "Service"), ("apps/v1", "Deployment"), ("v1", "ServiceAccount")):
            try:
                await api.get(version, kind, "default", "waypoint")
                return False
            except ApiError as exc:
                assert exc.code == 404
        return True
    await eventually(gone)


def test_waypoint_pods_run_the_waypoint_proxy_as_pilot_agent_would() -> None:
    """proxyv2 runs components.waypoint with the Deployment's `proxy waypoint` arguments, and the
    pod gets what the proxy needs from the cluster: its CA token and the mesh root."""
    gw = {**gateway(), "metadata": {**gateway()["metadata"], "uid": "u1"}}
    deployment = next(o for o in desired_objects(gw) if o["kind"] == "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    argv = images.argv_for(container, {"POD_NAMESPACE": "default"})
    assert argv[1:5] == ["-m", "components.waypoint", "proxy", "waypoint"]
    assert "--serviceCluster" in argv and argv[argv.index("--serviceCluster") + 1].endswith(".default")
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    token = volumes["istio-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "istio-ca"
    assert volumes["istiod-ca-cert"]["configMap"]["name"] == "istio-ca-root-cert"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/var/run/secrets/tokens", "/var/run/secrets/istio"}
