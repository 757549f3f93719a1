"""`istioctl waypoint` against the real apiserver in-process, with istiod's waypoint controller
where a waypoint has to become Programmed."""

from __future__ import annotations

import pytest
import trio

from components.common.apiclient import ApiClient, ApiError
from components.istiod.waypoints import WaypointController
from tests.unit.test_apiserver_support import api, apiserver, list_names, signing_key  # noqa: F401
from tests.unit.test_istioctl_apiserver import istioctl

GW = "gateway.networking.k8s.io/v1"

GENERATED = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  labels:
    istio.io/waypoint-for: service
  name: waypoint
  namespace: default
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
"""


async def test_generate_prints_the_gateway_of_the_docs(api: ApiClient) -> None:
    result = await istioctl(api, "waypoint", "generate", "--for", "service", "-n", "default")
    assert (result.code, result.out, result.err) == (0, GENERATED, "")
    other = await istioctl(api, "waypoint", "generate", "-n", "bookinfo", "--name", "reviews-wp", "--for", "workload")
    assert "    istio.io/waypoint-for: workload\n  name: reviews-wp\n  namespace: bookinfo\n" in other.out


async def test_generate_refuses_an_unknown_traffic_type(api: ApiClient) -> None:
    result = await istioctl(api, "waypoint", "generate", "--for", "pods")
    assert result.code == 1
    assert result.err == ("Error: invalid traffic type: pods. Valid options are: service, workload, all, none\n")


async def test_apply_enroll_list_status_and_delete(api: ApiClient, nursery: trio.Nursery) -> None:
    nursery.start_soon(WaypointController(api).run)
    await api.patch("v1", "Namespace", None, "default", {"metadata": {"labels": {"istio.io/dataplane-mode": "ambient"}}})

    applied = await istioctl(api, "waypoint", "apply", "-n", "default", "--enroll-namespace", "--wait")
    assert (applied.code, applied.err) == (0, "")
    assert applied.out == ("✅ waypoint default/waypoint applied\n"
                              '✅ namespace default labeled with "istio.io/use-waypoint: waypoint"\n')
    namespace = await api.get("v1", "Namespace", None, "default")
    assert namespace["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"
    gw = await api.get(GW, "Gateway", "default", "waypoint")
    assert gw["metadata"]["labels"] == {"istio.io/waypoint-for": "service"}

    await api.create({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "ingress", "namespace": "default"},
                      "spec": {"gatewayClassName": "istio", "listeners": []}})
    listed = await istioctl(api, "waypoint", "list", "-n", "default")
    assert listed.out == "NAME         REVISION     PROGRAMMED\nwaypoint     default      True\n"
    everywhere = await istioctl(api, "waypoint", "list", "-A")
    assert everywhere.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "REVISION", "PROGRAMMED"]

    status = await istioctl(api, "waypoint", "status", "-n", "default")
    assert status.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "STATUS", "TYPE", "REASON", "MESSAGE"]
    assert status.out.splitlines()[2].split()[:5] == ["default", "waypoint", "True", "Programmed", "Programmed"]

    deleted = await istioctl(api, "waypoint", "delete", "--all", "-n", "default")
    assert deleted.out == "waypoint default/waypoint deleted\n"
    assert await list_names(api, GW, "Gateway", "default") == ["ingress"]
    again = await istioctl(api, "waypoint", "delete", "-n", "default")
    assert again.out == "waypoint default/waypoint not found\n"
    empty = await istioctl(api, "waypoint", "list")
    assert empty.out == "No waypoints found.\n"


async def test_apply_warns_when_the_namespace_is_not_ambient(api: ApiClient) -> None:
    result = await istioctl(api, "waypoint", "apply", "--name", "wp", "--for", "all", "--enroll-namespace")
    assert result.out.startswith("Warning: namespace is not enrolled in ambient.")
    assert result.out.endswith("✅ waypoint default/wp applied\n"
                                  '✅ namespace default labeled with "istio.io/use-waypoint: wp"\n')
    gw = await api.get(GW, "Gateway", "default", "wp")
    assert gw["metadata"]["labels"]["istio.io/waypoint-for"] == "all"


async def test_delete_names_and_all_are_exclusive(api: ApiClient) -> None:
    result = await istioctl(api, "waypoint", "delete", "--all", "wp")
    assert (result.code, result.err) == (1, "Error: cannot specify waypoint names when deleting all waypoints\n")
    with pytest.raises(ApiError):
        await api.get(GW, "Gateway", "default", "wp")
