"""kubectl's tables, AGE, pod STATUS derivation and output formats, from object fixtures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from components.common import kinds
from harness.kubectl import printers, tables, timefmt
from harness.kubectl.tabwriter import TabWriter

NOW = datetime(2024, 3, 17, 13, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(resource: str, objects: list[dict[str, Any]], **options: Any) -> str:
    printer = printers.TablePrinter(printers.TableOptions(**options))
    return printer.print(kinds.lookup(resource), objects, NOW)


def pod(name: str, *, node: str = "ambient-worker2", ip: str = "10.244.2.6", age: float = 26,
        statuses: list[dict[str, Any]] | None = None, phase: str = "Running", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ambient-demo", "creationTimestamp": ago(age), **meta},
            "spec": {"nodeName": node, "containers": [{"name": s["name"]} for s in statuses or [{"name": "app"}]]},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                       "containerStatuses": statuses if statuses is not None else [
                           {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}]}}


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (26, "26s"), (119, "119s"), (120, "2m"), (9 * 60 + 16, "9m16s"), (600, "10m"), (69 * 60, "69m"),
    (3 * 3600, "3h"), (5 * 3600 + 2 * 60, "5h2m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (3 * 86400, "3d"),
    (3 * 86400 + 5 * 3600, "3d5h"), (30 * 86400, "30d"), (800 * 86400, "2y70d"), (-1, "0s"), (-5, "<invalid>"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert timefmt.human_duration(seconds) == text


def test_parse_time_accepts_fractions_and_offsets() -> None:
    assert timefmt.parse_time("2024-03-17T12:07:08.827667123Z") == datetime(2024, 3, 17, 12, 7, 8, 827667,
                                                                            tzinfo=timezone.utc)
    assert timefmt.parse_time("2024-03-17T21:07:08+09:00") == datetime(2024, 3, 17, 12, 7, 8, tzinfo=timezone.utc)
    assert timefmt.since(None, NOW) == "<unknown>"


def test_pods_wide_matches_the_seed() -> None:
    cni = [pod(name, node=node, ip=ip, age=69 * 60) for name, node, ip in [
        ("istio-cni-node-2kjs5", "ambient-worker2", "192.168.228.2"),
        ("istio-cni-node-dn5jb", "ambient-control-plane", "192.168.228.3"),
        ("istio-cni-node-xvjkv", "ambient-worker", "192.168.228.4")]]
    assert table("pods", cni, wide=True) == (
        "NAME                   READY   STATUS    RESTARTS   AGE   IP              NODE                    "
        "NOMINATED NODE   READINESS GATES\n"
        "istio-cni-node-2kjs5   1/1     Running   0          69m   192.168.228.2   ambient-worker2         "
        "<none>           <none>\n"
        "istio-cni-node-dn5jb   1/1     Running   0          69m   192.168.228.3   ambient-control-plane   "
        "<none>           <none>\n"
        "istio-cni-node-xvjkv   1/1     Running   0          69m   192.168.228.4   ambient-worker          "
        "<none>           <none>\n")


def test_pods_table_with_namespace_kind_and_labels() -> None:
    text = table("pods", [pod("sleep-9454cc476-ntctf", labels={"app": "sleep", "pod-template-hash": "9454cc476"})],
                 with_namespace=True, with_kind=True, show_labels=True)
    assert text == ("NAMESPACE      NAME                        READY   STATUS    RESTARTS   AGE   LABELS\n"
                    "ambient-demo   pod/sleep-9454cc476-ntctf   1/1     Running   0          26s   "
                    "app=sleep,pod-template-hash=9454cc476\n")


def status(state: dict[str, Any], ready: bool = False, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "ready": ready, "restartCount": restarts, "state": state, **extra}


@pytest.mark.parametrize("statuses, phase, expected", [
    ([], "Pending", ("0/1", "Pending", "0")),
    ([status({"waiting": {"reason": "ContainerCreating"}})], "Pending", ("0/1", "ContainerCreating", "0")),
    ([status({"running": {}}, ready=True)], "Running", ("1/1", "Running", "0")),
    ([status({"running": {}}, ready=False)], "Running", ("0/1", "Running", "0")),
    ([status({"terminated": {"reason": "Completed", "exitCode": 0}})], "Succeeded", ("0/1", "Completed", "0")),
    ([status({"terminated": {"reason": "Error", "exitCode": 1}})], "Failed", ("0/1", "Error", "0")),
    ([status({"terminated": {"exitCode": 137}})], "Failed", ("0/1", "ExitCode:137", "0")),
    ([status({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=4,
             lastState={"terminated": {"exitCode": 1, "finishedAt": ago(300)}})],
     "Running", ("0/1", "CrashLoopBackOff", "4 (5m ago)")),
])
def test_pod_status_derivation(statuses: list[dict[str, Any]], phase: str, expected: tuple[str, str, str]) -> None:
    obj = pod("p", statuses=statuses, phase=phase)
    obj["spec"]["containers"] = [{"name": "app"}]
    assert tables.pod_row(obj, NOW) == expected


def test_terminating_and_init_status() -> None:
    deleting = pod("p", deletionTimestamp=ago(1))
    assert tables.pod_row(deleting, NOW)[1] == "Terminating"
    initializing = pod("p", statuses=[], phase="Pending")
    initializing["spec"]["initContainers"] = [{"name": "init"}]
    initializing["status"]["initContainerStatuses"] = [{"name": "init", "state": {"running": {}}}]
    assert tables.pod_row(initializing, NOW)[1] == "Init:0/1"


def test_services_table() -> None:
    svc = {"metadata": {"name": "httpbin", "creationTimestamp": ago(3600)},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.186.47", "clusterIPs": ["10.96.186.47"],
                    "ports": [{"name": "http", "port": 8000, "targetPort": 8080, "protocol": "TCP"}],
                    "selector": {"app": "httpbin"}}}
    lb = {"metadata": {"name": "istio-ingressgateway", "creationTimestamp": ago(3600)},
          "spec": {"type": "LoadBalancer", "clusterIP": "10.96.5.5",
                   "ports": [{"port": 80, "nodePort": 31380, "protocol": "TCP"}, {"port": 443, "nodePort": 31390}]},
          "status": {"loadBalancer": {}}}
    assert table("svc", [svc, lb]) == (
        "NAME                   TYPE           CLUSTER-IP     EXTERNAL-IP   PORT(S)                      AGE\n"
        "httpbin                ClusterIP      10.96.186.47   <none>        8000/TCP                     60m\n"
        "istio-ingressgateway   LoadBalancer   10.96.5.5      <pending>     80:31380/TCP,443:31390/TCP   60m\n")
    assert table("svc", [svc], wide=True).splitlines()[1].endswith("60m   app=httpbin")


def test_nodes_namespaces_deployments_daemonsets() -> None:
    node = {"metadata": {"name": "ambient-control-plane", "creationTimestamp": ago(86400 * 3),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.29.2"},
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}}
    worker = {"metadata": {"name": "ambient-worker", "creationTimestamp": ago(86400 * 3)},
              "status": {"conditions": [{"type": "Ready", "status": "False"}],
                         "nodeInfo": {"kubeletVersion": "v1.29.2"}}}
    assert table("nodes", [node, worker]) == (
        "NAME                    STATUS     ROLES           AGE   VERSION\n"
        "ambient-control-plane   Ready      control-plane   3d    v1.29.2\n"
        "ambient-worker          NotReady   <none>          3d    v1.29.2\n")
    wide = table("nodes", [node], wide=True).splitlines()
    assert wide[0].endswith("VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE    KERNEL-VERSION   CONTAINER-RUNTIME")
    assert wide[1].split()[-5:] == ["172.18.0.2", "<none>", "<unknown>", "<unknown>", "<unknown>"]
    assert table("ns", [{"metadata": {"name": "ambient-demo", "creationTimestamp": ago(50)},
                         "status": {"phase": "Active"}}]) == (
        "NAME           STATUS   AGE\nambient-demo   Active   50s\n")
    deploy = {"metadata": {"name": "httpbin", "creationTimestamp": ago(26)}, "spec": {"replicas": 3},
              "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert table("deploy", [deploy]) == ("NAME      READY   UP-TO-DATE   AVAILABLE   AGE\n"
                                         "httpbin   2/3     3            2           26s\n")
    ds = {"metadata": {"name": "ztunnel", "creationTimestamp": ago(75 * 60)},
          "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3,
                     "updatedNumberScheduled": 3, "numberAvailable": 3}}
    assert table("ds", [ds]) == (
        "NAME      DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR            AGE\n"
        "ztunnel   3         3         3       3            3           kubernetes.io/os=linux   75m\n")


def test_endpoints_events_serviceaccounts() -> None:
    endpoints = {"metadata": {"name": "productpage", "creationTimestamp": ago(60)},
                 "subsets": [{"addresses": [{"ip": f"10.244.1.{i}"} for i in range(5)],
                              "ports": [{"port": 9080}]}]}
    assert "10.244.1.0:9080,10.244.1.1:9080,10.244.1.2:9080 + 2 more..." in table("ep", [endpoints])
    assert table("ep", [{"metadata": {"name": "x", "creationTimestamp": ago(60)}}]).splitlines()[1] == (
        "x      <none>      60s")
    event = {"metadata": {"name": "e1"}, "type": "Normal", "reason": "Scheduled", "count": 1,
             "lastTimestamp": ago(26), "firstTimestamp": ago(26),
             "involvedObject": {"kind": "Pod", "name": "httpbin-1"}, "message": "Successfully assigned x\n"}
    assert table("events", [event]) == (
        "LAST SEEN   TYPE     REASON      OBJECT          MESSAGE\n"
        "26s         Normal   Scheduled   pod/httpbin-1   Successfully assigned x\n")
    assert table("sa", [{"metadata": {"name": "sleep", "creationTimestamp": ago(6)}}]) == (
        "NAME    SECRETS   AGE\nsleep   0         6s\n")


def test_custom_resource_columns() -> None:
    gateway = {"metadata": {"name": "waypoint", "creationTimestamp": ago(42)},
               "spec": {"gatewayClassName": "istio-waypoint"},
               "status": {"conditions": [{"type": "Accepted", "status": "True"},
                                         {"type": "Programmed", "status": "False"}]}}
    assert table("gateways", [gateway]) == ("NAME       CLASS            ADDRESS   PROGRAMMED   AGE\n"
                                            "waypoint   istio-waypoint             False        42s\n")
    gateway["status"]["addresses"] = [{"value": "10.96.58.95"}, {"value": "10.96.58.96"}]
    assert "10.96.58.95   False" in table("gateways", [gateway])
    policy = {"metadata": {"name": "allow-sleep", "creationTimestamp": ago(5)}, "spec": {"action": "ALLOW"}}
    deny = {"metadata": {"name": "default-deny", "creationTimestamp": ago(5)}, "spec": {}}
    assert table("authorizationpolicies", [policy, deny]) == ("NAME           ACTION   AGE\n"
                                                             "allow-sleep    ALLOW    5s\n"
                                                             "default-deny            5s\n")
    vs = {"metadata": {"name": "reviews", "creationTimestamp": ago(5)}, "spec": {"hosts": ["reviews"]}}
    assert table("vs", [vs]).splitlines() == ["NAME      GATEWAYS   HOSTS         AGE",
                                              'reviews              ["reviews"]   5s']
    assert table("configmaps", [{"metadata": {"name": "c", "creationTimestamp": ago(5)}, "data": {"a": "b"}}]) == (
        "NAME   DATA   AGE\nc      1      5s\n")


def test_unknown_kinds_print_name_and_age() -> None:
    other = kinds.Kind("example.com/v1", "Widget", "widgets")
    printer = printers.TablePrinter(printers.TableOptions())
    assert printer.print(other, [{"metadata": {"name": "w", "creationTimestamp": ago(3)}}], NOW) == (
        "NAME   AGE\nw      3s\n")


def test_tables_of_several_kinds_are_separated_and_keep_headers_once() -> None:
    printer = printers.TablePrinter(printers.TableOptions(with_kind=True))
    first = printer.print(kinds.lookup("pods"), [pod("a")], NOW)
    second = printer.print(kinds.lookup("sa"), [{"metadata": {"name": "sleep", "creationTimestamp": ago(6)}}], NOW)
    assert first.startswith("NAME    READY")
    assert second.startswith("\nNAME                   SECRETS   AGE\nserviceaccount/sleep")
    assert printer.print(kinds.lookup("sa"), [{"metadata": {"name": "x", "creationTimestamp": ago(6)}}], NOW) == (
        "serviceaccount/x       0         6s\n")


def test_tabwriter_aligns_blocks_of_consecutive_lines() -> None:
    writer = TabWriter(minwidth=0, padding=2)
    writer.write("Name:\tx\nService Account:\ty\nIPs:\n  IP:\t10.0.0.1\nPort:\thttp\t80/TCP\nEndpoints:\t<none>\n")
    assert writer.flush() == ("Name:             x\nService Account:  y\nIPs:\n  IP:       10.0.0.1\n"
                              "Port:       http  80/TCP\nEndpoints:  <none>\n")


def test_yaml_like_kubectl() -> None:
    text = printers.to_yaml({"metadata": {"name": "x", "resourceVersion": "",
                                          "creationTimestamp": "2024-03-17T12:07:08Z",
                                          "labels": {"on": "true", "n": "y", "port": "80"}},
                             "spec": {"hosts": ["*"], "script": "a\nb\n", "empty": {}, "none": None}})
    assert text == ("metadata:\n  creationTimestamp: \"2024-03-17T12:07:08Z\"\n  labels:\n    \"n\": \"y\"\n"
                    "    \"on\": \"true\"\n    port: \"80\"\n  name: x\n  resourceVersion: \"\"\n"
                    "spec:\n  empty: {}\n  hosts:\n  - '*'\n  none: null\n  script: |\n    a\n    b\n")


def test_json_like_kubectl() -> None:
    assert printers.to_json({"b": "<a&b>", "a": [1, {"z": True}]}) == (
        '{\n    "a": [\n        1,\n        {\n            "z": true\n        }\n    ],\n'
        '    "b": "\\u003ca\\u0026b\\u003e"\n}\n')


def test_output_formats_and_errors() -> None:
    pods_kind = kinds.lookup("pods")
    shown = [printers.for_output(pod("a", managedFields=[{}]), pods_kind)]
    assert "managedFields" not in printers.to_yaml(shown[0])
    assert shown[0]["kind"] == "Pod" and shown[0]["apiVersion"] == "v1"
    assert printers.render_objects(printers.parse_output("name"), shown, [pods_kind], False) == "pod/a\n"
    listed = printers.render_objects(printers.parse_output("yaml"), shown, [pods_kind], False)
    assert listed.startswith("apiVersion: v1\nitems:\n- apiVersion: v1\n")
    assert listed.endswith("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
    columns = printers.parse_output("custom-columns=NAME:.metadata.name,IP:.status.podIP,X:.spec.none")
    assert printers.render_objects(columns, shown, [pods_kind], False) == (
        "NAME   IP           X\na      10.244.2.6   <none>\n")
    with pytest.raises(Exception, match='unable to match a printer suitable for the output format "xml"'):
        printers.parse_output("xml")
    with pytest.raises(printers.PartialOutput) as partial:
        printers.render_objects(printers.parse_output("jsonpath={.a}{.b[3]}"),
                                [{"a": "first", "b": []}], [pods_kind], True)
    assert partial.value.text == "first"
    assert partial.value.error.message.startswith(
        'error executing jsonpath "{.a}{.b[3]}": Error executing template: array index out of bounds: index 3, '
        "length 0. Printing more information for debugging the template:")


def test_sort_by() -> None:
    pods_kind = kinds.lookup("pods")
    objs = [(pods_kind, pod("b", age=5)), (pods_kind, pod("a", age=50)), (pods_kind, pod("c", age=20))]
    ordered = printers.sort_objects(objs, ".metadata.creationTimestamp")
    assert [o["metadata"]["name"] for _, o in ordered] == ["a", "c", "b"]
    assert [o["metadata"]["name"] for _, o in printers.sort_objects(objs, "{.metadata.name}")] == ["a", "b", "c"]
