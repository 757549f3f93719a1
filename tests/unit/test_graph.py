"""`ambient graph`: what the picture holds, read back from the SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.graph import build, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def pod(name: str, node: str, ip: str, *, namespace: str = "demo", labels: dict | None = None,
        annotations: dict | None = None, host_network: bool = False) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"nodeName": node, "hostNetwork": host_network}, "status": {"podIP": ip}}


def cluster_objects() -> tuple[list, list, list, list, list]:
    nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, ip in [("cp", "172.18.0.2"), ("worker", "172.18.0.3")]]
    pods = [pod("sleep-1", "worker", "10.244.1.2", labels={"app": "sleep"},
                annotations={"ambient.istio.io/redirection": "enabled"}),
            pod("outside-1", "worker", "10.244.1.3", namespace="plain", labels={"app": "outside"}),
            pod("ztunnel-x", "worker", "10.244.1.4", namespace="istio-system", labels={"app": "ztunnel"}),
            pod("istio-cni-node-y", "worker", "172.18.0.3", namespace="istio-system", host_network=True),
            pod("waypoint-2", "cp", "10.244.0.5",
                labels={"gateway.networking.k8s.io/gateway-name": "waypoint"})]
    services = [{"metadata": {"name": "sleep", "namespace": "demo", "labels": {"istio.io/use-waypoint": "waypoint"}},
                 "spec": {"clusterIP": "10.96.1.2", "ports": [{"port": 80}], "selector": {"app": "sleep"}}},
                {"metadata": {"name": "outside", "namespace": "plain"},
                 "spec": {"clusterIP": "10.96.1.3", "ports": [{"port": 80}], "selector": {"app": "outside"}}}]
    namespaces = [{"metadata": {"name": "demo", "labels": {"istio.io/dataplane-mode": "ambient"}}},
                  {"metadata": {"name": "plain"}}]
    gateways = [{"metadata": {"name": "waypoint", "namespace": "demo", "labels": {"istio.io/waypoint-for": "service"}},
                 "spec": {"gatewayClassName": "istio-waypoint"}},
                {"metadata": {"name": "ingress", "namespace": "demo"}, "spec": {"gatewayClassName": "istio"}}]
    return nodes, pods, services, namespaces, gateways


def test_the_svg_shows_nodes_pods_mesh_membership_services_and_waypoints() -> None:
    snapshot = build("demo", *cluster_objects())
    root = ET.fromstring(render_svg(snapshot))
    groups = {(g.get("class"), g.get("data-name")): g for g in root.iter(f"{SVG}g")}
    assert groups[("node", "worker")].get("data-ip") == "172.18.0.3"
    sleep, outside = groups[("pod", "sleep-1")], groups[("pod", "outside-1")]
    assert (sleep.get("data-mesh"), sleep.get("data-node"), sleep.get("data-ip")) == ("ambient", "worker", "10.244.1.2")
    assert (outside.get("data-mesh"), outside.get("data-mark")) == ("none", "not in mesh")
    assert groups[("pod", "ztunnel-x")].get("data-mark") == "ztunnel"
    assert groups[("pod", "istio-cni-node-y")].get("data-mark") == "hostNetwork"
    assert groups[("pod", "waypoint-2")].get("data-mark") == "waypoint"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "ambient" in texts and "not in mesh" in texts
    assert "demo · 10.244.1.2" in texts
    assert groups[("service", "sleep")].get("data-waypoint") == "waypoint"
    assert "→ sleep-1" in texts and "via waypoint waypoint" in texts
    assert "demo/waypoint (for service traffic): used by service sleep" in texts
    assert ("waypoint", "ingress") not in groups
    assert "namespaces in the ambient mesh: demo" in texts


def test_a_namespace_label_puts_its_services_behind_the_waypoint_unless_they_opt_out() -> None:
    nodes, pods, services, namespaces, gateways = cluster_objects()
    namespaces[0]["metadata"]["labels"]["istio.io/use-waypoint"] = "waypoint"
    services.append({"metadata": {"name": "direct", "namespace": "demo", "labels": {"istio.io/use-waypoint": "none"}},
                     "spec": {"clusterIP": "10.96.1.4", "selector": {"app": "nothing"}}})
    services.append({"metadata": {"name": "waypoint", "namespace": "demo",
                                  "labels": {"gateway.networking.k8s.io/gateway-name": "waypoint"}},
                     "spec": {"clusterIP": "10.96.1.5", "selector": {"gateway.networking.k8s.io/gateway-name": "waypoint"}}})
    snapshot = build("demo", nodes, pods, services, namespaces, gateways)
    assert {s.name: s.waypoint for s in snapshot.services} == {"sleep": "waypoint", "outside": "", "direct": "",
                                                                  "waypoint": ""}
    assert snapshot.waypoints[0].used_by == ("namespace demo", "service sleep")
    root = ET.fromstring(render_svg(snapshot))
    assert "→ no pods" in [t.text for t in root.iter(f"{SVG}text")]
