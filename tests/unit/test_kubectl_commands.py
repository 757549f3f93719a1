"""kubectl commands end to end against the in-memory apiserver: what they print, their exit
codes, and what they change."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import trio
import trio.testing

from harness.kubectl import KubectlContext, run
from tests.unit.test_kubectl_fake import Cluster, Result, cluster  # noqa: F401

SLEEP = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: sleep
---
apiVersion: v1
kind: Service
metadata:
  name: sleep
  labels:
    app: sleep
spec:
  ports:
  - port: 80
    name: http
  selector:
    app: sleep
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleep
spec:
  replicas: 1
  selector:
    matchLabels:
      app: sleep
  template:
    metadata:
      labels:
        app: sleep
    spec:
      serviceAccountName: sleep
      containers:
      - name: sleep
        image: curlimages/curl
        command: ["/bin/sleep", "infinity"]
"""


async def in_background(nursery: trio.Nursery, call: Callable[[], Awaitable[Result]]) -> dict[str, Result]:
    """Start a kubectl command and let it run until it blocks (on a watch); its result lands in
    the returned dict under "result"."""
    box: dict[str, Result] = {}

    async def runner() -> None:
        box["result"] = await call()

    nursery.start_soon(runner)
    await trio.testing.wait_all_tasks_blocked()
    return box


# -- apply and create ---------------------------------------------------------------------------

async def test_apply_creates_then_is_unchanged_then_configured(cluster: Cluster) -> None:
    cluster.namespace("ambient-demo")
    first = await cluster.kubectl("apply", "-f", "-", "-n", "ambient-demo", stdin=SLEEP)
    assert (first.code, first.out, first.err) == (
        0, "serviceaccount/sleep created\nservice/sleep created\ndeployment.apps/sleep created\n", "")
    writes = len([c for c in cluster.api.calls if c[0] != "GET"])
    again = await cluster.kubectl("apply", "-n", "ambient-demo", "-f", "-", stdin=SLEEP)
    assert again.out == "serviceaccount/sleep unchanged\nservice/sleep unchanged\ndeployment.apps/sleep unchanged\n"
    assert len([c for c in cluster.api.calls if c[0] != "GET"]) == writes
    changed = await cluster.kubectl("apply", "-f", "-", "-n", "ambient-demo",
                                    stdin=SLEEP.replace("/bin/sleep", "/bin/pause"))
    assert changed.out.splitlines()[2] == "deployment.apps/sleep configured"
    stored = cluster.api.stored("apps/v1", "Deployment", "ambient-demo", "sleep")
    assert stored["spec"]["template"]["spec"]["containers"][0]["command"][0] == "/bin/pause"
    applied = json.loads(stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["metadata"] == {"name": "sleep", "namespace": "ambient-demo"}


async def test_reapply_keeps_fields_the_manifest_does_not_declare(cluster: Cluster) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    assert (await cluster.kubectl("scale", "deploy/sleep", "--replicas=3")).out == "deployment.apps/sleep scaled\n"
    assert (await cluster.kubectl("label", "svc", "sleep", "extra=yes")).out == "service/sleep labeled\n"
    result = await cluster.kubectl("apply", "-f", "-", stdin=SLEEP.replace("name: http", "name: web"))
    # the manifest declares replicas, so (as in kubectl) re-applying it undoes the scale
    assert result.out.splitlines() == ["serviceaccount/sleep unchanged", "service/sleep configured",
                                       "deployment.apps/sleep configured"]
    svc = cluster.api.stored("v1", "Service", "default", "sleep")
    assert svc["metadata"]["labels"] == {"app": "sleep", "extra": "yes"}
    assert svc["spec"]["clusterIP"] == "10.96.0.42" and svc["spec"]["ports"][0]["name"] == "web"
    assert cluster.api.stored("apps/v1", "Deployment", "default", "sleep")["spec"]["replicas"] == 1
    dropped = await cluster.kubectl("apply", "-f", "-", stdin=SLEEP.replace("  labels:\n    app: sleep\nspec:\n  ports",
                                                                             "spec:\n  ports"))
    assert "service/sleep configured" in dropped.out
    # labels left the manifest: the whole map goes, as kubectl's deletion patch `labels: null` does
    assert "labels" not in cluster.api.stored("v1", "Service", "default", "sleep")["metadata"]


async def test_apply_reports_errors_after_processing_every_object(cluster: Cluster) -> None:
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: other\n---\n"
                "apiVersion: bar/v1\nkind: Foo\nmetadata:\n  name: x\n---\n"
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n")
    result = await cluster.kubectl("apply", "-n", "default", "-f", "-", stdin=manifest)
    assert result.code == 1
    assert result.out == "configmap/b created\n"
    assert result.err == (
        "the namespace from the provided object \"other\" does not match the namespace \"default\". You must pass "
        "'--namespace=other' to perform this operation.\n"
        'resource mapping not found for name: "x" namespace: "" from "STDIN": no matches for kind "Foo" in version '
        '"bar/v1"\nensure CRDs are installed first\n')


async def test_apply_single_errors_print_like_kubectl(cluster: Cluster) -> None:
    missing_ns = await cluster.kubectl("apply", "-f", "-", stdin=SLEEP.split("---")[0].replace(
        "name: sleep", "name: sleep\n  namespace: foo"))
    assert (missing_ns.code, missing_ns.err) == (
        1, 'Error from server (NotFound): error when creating "STDIN": namespaces "foo" not found\n')
    unknown = await cluster.kubectl("apply", "-f", "-", stdin="apiVersion: bar/v1\nkind: Foo\nmetadata:\n  name: x\n")
    assert unknown.err == ('error: resource mapping not found for name: "x" namespace: "" from "STDIN": no matches for '
                           'kind "Foo" in version "bar/v1"\nensure CRDs are installed first\n')
    empty = await cluster.kubectl("apply", "-f", "-", stdin="")
    assert (empty.code, empty.err) == (1, "error: no objects passed to apply\n")
    nothing = await cluster.kubectl("apply")
    assert nothing.err == "error: must specify one of -f and -k\n"


async def test_apply_yaml_errors_name_the_file_and_line(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   bad: here\n")
    result = await cluster.kubectl("apply", "-f", "x.yaml")
    assert (result.code, result.err) == (1, "error: error parsing x.yaml: error converting YAML to JSON: yaml: line 5: "
                                            "mapping values are not allowed in this context\n")
    gone = await cluster.kubectl("apply", "-f", "nope.yaml")
    assert gone.err == 'error: the path "nope.yaml" does not exist\n'


async def test_apply_reads_directories_lists_and_json(cluster: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "b.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-list"}}]}))
    (folder / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n")
    (folder / "notes.txt").write_text("ignored")
    result = await cluster.kubectl("apply", "-f", "manifests")
    assert result.out == "configmap/from-yaml created\nconfigmap/from-list created\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (await cluster.kubectl("apply", "-f", str(empty))).err == (
        f"error: error reading [{empty}]: recognized file extensions are [.json .yaml .yml]\n")


async def test_create(cluster: Cluster, tmp_path: Path) -> None:
    assert (await cluster.kubectl("create", "ns", "ambient-demo")).out == "namespace/ambient-demo created\n"
    again = await cluster.kubectl("create", "namespace", "ambient-demo")
    assert (again.code, again.err) == (
        1, 'Error from server (AlreadyExists): namespaces "ambient-demo" already exists\n')
    created = await cluster.kubectl("create", "sa", "sleep", "-n", "ambient-demo")
    assert created.out == "serviceaccount/sleep created\n"
    (tmp_path / "sa.yaml").write_text(SLEEP.split("---")[0])
    assert (await cluster.kubectl("create", "-f", "sa.yaml")).out == "serviceaccount/sleep created\n"
    dup = await cluster.kubectl("create", "-f", "sa.yaml")
    assert dup.err == ('Error from server (AlreadyExists): error when creating "sa.yaml": serviceaccounts "sleep" '
                       "already exists\n")
    warned = await cluster.kubectl("apply", "-f", "sa.yaml")
    assert warned.out == "serviceaccount/sleep configured\n"
    assert warned.err.startswith("Warning: resource serviceaccounts/sleep is missing the "
                                 "kubectl.kubernetes.io/last-applied-configuration annotation")
    deploy = await cluster.kubectl("create", "deployment", "web", "--image=docker.io/kong/httpbin:0.1.0",
                                   "--dry-run=client", "-o", "yaml")
    assert "  - image: docker.io/kong/httpbin:0.1.0\n        name: httpbin\n" in deploy.out
    assert cluster.api.stored("apps/v1", "Deployment", "default", "web") is None
    assert (await cluster.kubectl("create", "ns")).err.startswith("error: exactly one NAME is required, got 0")


# -- get ----------------------------------------------------------------------------------------

async def test_get_tables_and_errors(cluster: Cluster) -> None:
    cluster.namespace("ambient-demo")
    cluster.pod("httpbin-5c779fc757-9dxfm", "ambient-demo", labels={"app": "httpbin"}, ip="10.244.2.6",
                node="ambient-worker2", age=26)
    result = await cluster.kubectl("get", "pod", "-n", "ambient-demo", "-o", "wide")
    assert result.out == (
        "NAME                       READY   STATUS    RESTARTS   AGE   IP           NODE              NOMINATED NODE   "
        "READINESS GATES\n"
        "httpbin-5c779fc757-9dxfm   1/1     Running   0          26s   10.244.2.6   ambient-worker2   <none>           "
        "<none>\n")
    empty = await cluster.kubectl("get", "pods")
    assert (empty.code, empty.out, empty.err) == (0, "", "No resources found in default namespace.\n")
    missing = await cluster.kubectl("get", "pods", "x", "-n", "ambient-demo")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): pods "x" not found\n')
    unknown = await cluster.kubectl("get", "foo")
    assert (unknown.code, unknown.err) == (1, 'error: the server doesn\'t have a resource type "foo"\n')
    both = await cluster.kubectl("get", "pods", "httpbin-5c779fc757-9dxfm", "x", "-n", "ambient-demo", "--no-headers")
    assert both.code == 1 and both.out.startswith("httpbin-5c779fc757-9dxfm   1/1")
    assert (await cluster.kubectl("get", "pods", "-A")).out.startswith("NAMESPACE      NAME")
    assert (await cluster.kubectl("get")).err.startswith("You must specify the type of resource to get.")


async def test_get_output_formats(cluster: Cluster) -> None:
    for index, node in enumerate(["ambient-worker", "ambient-worker2"]):
        cluster.pod(f"ztunnel-{index}", labels={"app": "ztunnel"}, node=node, ip=f"10.244.{index + 1}.3")
    selected = await cluster.kubectl("get", "pod", "-l", "app=ztunnel",
                                     "--field-selector=spec.nodeName=ambient-worker2",
                                     "-o=jsonpath={.items[0].metadata.name}")
    assert selected.out == "ztunnel-1"
    ips = await cluster.kubectl("get", "pods", "-o", "jsonpath={.items[*].status.podIP}")
    assert ips.out == "10.244.1.3 10.244.2.3"
    ranged = await cluster.kubectl("get", "pods", "-o",
                                   'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}')
    assert ranged.out == "ztunnel-0\tRunning\nztunnel-1\tRunning\n"
    ready = await cluster.kubectl("get", "pod", "ztunnel-0",
                                  "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')
    assert ready.out == "True"
    assert (await cluster.kubectl("get", "pods", "-o", "name")).out == "pod/ztunnel-0\npod/ztunnel-1\n"
    single = json.loads((await cluster.kubectl("get", "pod", "ztunnel-0", "-o", "json")).out)
    assert (single["kind"], single["metadata"]["name"]) == ("Pod", "ztunnel-0")
    listed = json.loads((await cluster.kubectl("get", "pod/ztunnel-0", "pod/ztunnel-1", "-o", "json")).out)
    assert listed["kind"] == "List" and len(listed["items"]) == 2
    none = await cluster.kubectl("get", "pods", "-l", "app=none", "-o", "yaml")
    assert none.out == 'apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: ""\n'
    out_of_range = await cluster.kubectl("get", "pods", "-l", "app=none", "-o", "jsonpath={.items[0].metadata.name}")
    assert out_of_range.code == 1
    assert out_of_range.err.startswith('error: error executing jsonpath "{.items[0].metadata.name}": Error executing '
                                       "template: array index out of bounds: index 0, length 0.")
    labels = await cluster.kubectl("get", "pods", "--show-labels", "-L", "app")
    assert labels.out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "APP", "LABELS"]
    bad = await cluster.kubectl("get", "pods", "-o", "xml")
    assert bad.err.startswith('error: unable to match a printer suitable for the output format "xml"')


async def test_get_several_kinds_and_all(cluster: Cluster) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    cluster.pod("sleep-9454cc476-ntctf", labels={"app": "sleep"})
    everything = await cluster.kubectl("get", "all")
    blocks = everything.out.split("\n\n")
    assert [b.splitlines()[1].split()[0] for b in blocks] == ["pod/sleep-9454cc476-ntctf", "service/sleep",
                                                              "deployment.apps/sleep"]
    pair = await cluster.kubectl("get", "svc/sleep", "sa/sleep")
    assert pair.out.splitlines()[1].startswith("service/sleep ")
    assert pair.out.splitlines()[-1].startswith("serviceaccount/sleep ")
    mixed = await cluster.kubectl("get", "svc", "svc/sleep")
    assert mixed.err.startswith("error: there is no need to specify a resource type as a separate argument")


async def test_get_watch_prints_rows_as_they_change(cluster: Cluster) -> None:
    cluster.pod("p", phase="Pending", ready=False)
    out = io.StringIO()
    ctx = KubectlContext(api=cluster.api, stdin=io.BytesIO(), stdout=out, stderr=io.StringIO(),
                         exec_in_pod=cluster.exec_in_pod, container_log_path=cluster.log_path, cwd=cluster.tmp)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, ["get", "pods", "-w"], ctx)
        await trio.testing.wait_all_tasks_blocked()
        cluster.pod("p")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:3] == ["p", "0/1", "ContainerCreating"]
    assert lines[2].split()[:3] == ["p", "1/1", "Running"]
    assert lines[1].index("0/1") == lines[2].index("1/1")


# -- delete -------------------------------------------------------------------------------------

async def test_delete_pod_waits_for_the_kubelet(cluster: Cluster) -> None:
    cluster.pod("p")
    async with trio.open_nursery() as nursery:
        box = await in_background(nursery, lambda: cluster.kubectl("delete", "pod", "p"))
        assert "result" not in box
        assert cluster.api.stored("v1", "Pod", "default", "p")["metadata"]["deletionTimestamp"]
        listed = await cluster.kubectl("get", "pods")
        assert listed.out.splitlines()[1].split()[2] == "Terminating"
        cluster.api.remove("v1", "Pod", "default", "p")
    assert (box["result"].code, box["result"].out) == (0, 'pod "p" deleted\n')


async def test_delete_variants(cluster: Cluster, tmp_path: Path) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    no_wait = await cluster.kubectl("delete", "deploy", "sleep", "--wait=false")
    assert no_wait.out == 'deployment.apps "sleep" deleted\n'
    missing = await cluster.kubectl("delete", "deploy", "sleep")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): deployments.apps "sleep" not found\n')
    ignored = await cluster.kubectl("delete", "deploy", "sleep", "--ignore-not-found")
    assert (ignored.code, ignored.out, ignored.err) == (0, "", "")
    (tmp_path / "sleep.yaml").write_text(SLEEP)
    from_file = await cluster.kubectl("delete", "-f", "sleep.yaml")
    assert from_file.out == 'serviceaccount "sleep" deleted\nservice "sleep" deleted\n'
    assert from_file.err == ('Error from server (NotFound): error when deleting "sleep.yaml": deployments.apps "sleep" '
                             "not found\n")
    for name in ("a", "b"):
        await cluster.kubectl("create", "sa", name)
    assert (await cluster.kubectl("delete", "sa", "--all")).out == ('serviceaccount "a" deleted\n'
                                                                    'serviceaccount "b" deleted\n')
    assert (await cluster.kubectl("delete", "sa", "-l", "app=none")).out == "No resources found\n"
    assert (await cluster.kubectl("delete", "sa")).err == (
        "error: resource(s) were provided, but no name was specified\n")


async def test_delete_now_and_force(cluster: Cluster) -> None:
    cluster.pod("p")
    forced = await cluster.kubectl("delete", "pod", "p", "--grace-period=0", "--force")
    assert forced.out == 'pod "p" force deleted\n'
    assert forced.err.startswith("Warning: Immediate deletion does not wait for confirmation")
    cluster.pod("q")
    timed_out = await cluster.kubectl("delete", "pod", "q", "--now", "--timeout=0.1s")
    assert (timed_out.code, timed_out.err) == (1, "error: timed out waiting for the condition on pods/q\n")
    assert cluster.api.stored("v1", "Pod", "default", "q")["metadata"]["deletionGracePeriodSeconds"] == 1


# -- label, annotate, patch, scale, rollout -----------------------------------------------------

async def test_label_and_annotate(cluster: Cluster) -> None:
    cluster.namespace("ambient-demo")
    assert (await cluster.kubectl("label", "namespace", "ambient-demo", "istio.io/dataplane-mode=ambient")).out == (
        "namespace/ambient-demo labeled\n")
    same = await cluster.kubectl("label", "ns", "ambient-demo", "istio.io/dataplane-mode=ambient")
    assert same.out == "namespace/ambient-demo not labeled\n"
    clash = await cluster.kubectl("label", "ns/ambient-demo", "istio.io/dataplane-mode=none")
    assert (clash.code, clash.err) == (
        1, "error: 'istio.io/dataplane-mode' already has a value (ambient), and --overwrite is false\n")
    forced = await cluster.kubectl("label", "ns/ambient-demo", "istio.io/dataplane-mode=none", "--overwrite")
    assert forced.out == "namespace/ambient-demo labeled\n"
    removed = await cluster.kubectl("label", "ns", "ambient-demo", "istio.io/dataplane-mode-", "gone-")
    assert removed.out == 'label "gone" not found.\nnamespace/ambient-demo unlabeled\n'
    assert "istio.io/dataplane-mode" not in cluster.api.stored("v1", "Namespace", None, "ambient-demo")["metadata"][
        "labels"]
    no_change = await cluster.kubectl("label", "ns", "ambient-demo")
    assert no_change.err == "error: at least one label update is required\n"
    annotated = await cluster.kubectl("annotate", "ns", "ambient-demo", "note=1")
    assert annotated.out == "namespace/ambient-demo annotated\n"
    clash = await cluster.kubectl("annotate", "ns", "ambient-demo", "note=2")
    assert clash.err == ("error: --overwrite is false but found the following declared annotation(s): 'note' already "
                         "has a value (1)\n")
    missing = await cluster.kubectl("label", "ns", "nope", "a=b")
    assert missing.err == 'Error from server (NotFound): namespaces "nope" not found\n'


async def test_patch_scale_rollout(cluster: Cluster) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    image = '{"spec":{"template":{"spec":{"containers":[{"name":"sleep","image":"busybox"}]}}}}'
    strategic = await cluster.kubectl("patch", "deploy", "sleep", "-p", image)
    assert strategic.out == "deployment.apps/sleep patched\n"
    container = cluster.api.stored("apps/v1", "Deployment", "default", "sleep")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["image"] == "busybox" and container["command"] == ["/bin/sleep", "infinity"]
    unchanged = await cluster.kubectl("patch", "deploy/sleep", "--type", "merge", "-p", "spec: {replicas: 1}")
    assert unchanged.out == "deployment.apps/sleep patched (no change)\n"
    as_json = await cluster.kubectl("patch", "svc", "sleep", "--type=json",
                                    "-p", '[{"op":"replace","path":"/spec/ports/0/port","value":8080}]')
    assert as_json.out == "service/sleep patched\n"
    assert cluster.api.stored("v1", "Service", "default", "sleep")["spec"]["ports"][0]["port"] == 8080
    assert (await cluster.kubectl("scale", "deploy", "sleep")).err == 'error: required flag(s) "replicas" not set\n'
    restarted = await cluster.kubectl("rollout", "restart", "deploy/sleep")
    assert restarted.out == "deployment.apps/sleep restarted\n"
    annotations = cluster.api.stored("apps/v1", "Deployment", "default", "sleep")["spec"]["template"]["metadata"][
        "annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


async def test_rollout_status_follows_the_deployment(cluster: Cluster) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    deploy = cluster.api.stored("apps/v1", "Deployment", "default", "sleep")
    async with trio.open_nursery() as nursery:
        box = await in_background(nursery, lambda: cluster.kubectl("rollout", "status", "deploy/sleep"))
        deploy["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}
        cluster.api.put(deploy)
        await trio.testing.wait_all_tasks_blocked()
        deploy["status"]["availableReplicas"] = 1
        cluster.api.put(deploy)
    assert box["result"].out == ("Waiting for deployment spec update to be observed...\n"
                                 'Waiting for deployment "sleep" rollout to finish: 0 of 1 updated replicas are '
                                 "available...\n"
                                 'deployment "sleep" successfully rolled out\n')


# -- wait ---------------------------------------------------------------------------------------

async def test_wait_for_conditions(cluster: Cluster) -> None:
    cluster.pod("ready")
    met = await cluster.kubectl("wait", "--for=condition=Ready", "pod/ready", "--timeout=30s")
    assert (met.code, met.out) == (0, "pod/ready condition met\n")
    cluster.pod("slow", phase="Pending", ready=False)
    async with trio.open_nursery() as nursery:
        box = await in_background(nursery, lambda: cluster.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Running", "pods", "--all", "--timeout=30s"))
        cluster.pod("slow")
    assert box["result"].out == "pod/ready condition met\npod/slow condition met\n"
    timeout = await cluster.kubectl("wait", "--for=condition=Ready=false", "pod/ready", "--timeout=0.05s")
    assert (timeout.code, timeout.err) == (1, "error: timed out waiting for the condition on pods/ready\n")
    none = await cluster.kubectl("wait", "--for=condition=Ready", "pods", "-l", "app=none")
    assert none.err == "error: no matching resources found\n"
    missing = await cluster.kubectl("wait", "--for=condition=Ready", "pod/nope")
    assert missing.err == 'Error from server (NotFound): pods "nope" not found\n'


async def test_wait_for_delete(cluster: Cluster) -> None:
    cluster.pod("p")
    async with trio.open_nursery() as nursery:
        box = await in_background(nursery, lambda: cluster.kubectl("wait", "--for=delete", "pod/p", "--timeout=30s"))
        await cluster.api.delete("v1", "Pod", "default", "p")
        await trio.testing.wait_all_tasks_blocked()
        assert "result" not in box
        cluster.api.remove("v1", "Pod", "default", "p")
    assert box["result"].out == "pod/p condition met\n"
    assert (await cluster.kubectl("wait", "--for=delete", "pod/p")).code == 0


# -- logs and exec ------------------------------------------------------------------------------

def ztunnels(cluster: Cluster) -> list[dict[str, Any]]:
    cluster.namespace("istio-system")
    cluster.api.put({"apiVersion": "apps/v1", "kind": "DaemonSet",
                     "metadata": {"name": "ztunnel", "namespace": "istio-system"},
                     "spec": {"selector": {"matchLabels": {"app": "ztunnel"}}}})
    pods = []
    for index, name in enumerate(["ztunnel-59c7g", "ztunnel-lkvj6", "ztunnel-rx7nk"]):
        pod = cluster.pod(name, "istio-system", containers=("istio-proxy",), labels={"app": "ztunnel"},
                          age=4500 - index)
        cluster.write_log(pod, "istio-proxy", "".join(f"{name} line {i}\n" for i in range(1, 13)))
        pods.append(pod)
    return pods


async def test_logs(cluster: Cluster) -> None:
    ztunnels(cluster)
    tail = await cluster.kubectl("logs", "ztunnel-lkvj6", "-n", "istio-system", "--tail", "2")
    assert (tail.code, tail.out, tail.err) == (0, "ztunnel-lkvj6 line 11\nztunnel-lkvj6 line 12\n", "")
    by_ds = await cluster.kubectl("logs", "ds/ztunnel", "-n", "istio-system", "--tail=1")
    assert (by_ds.out, by_ds.err) == ("ztunnel-59c7g line 12\n", "Found 3 pods, using pod/ztunnel-59c7g\n")
    by_selector = await cluster.kubectl("logs", "-l", "app=ztunnel", "-n", "istio-system", "--prefix")
    lines = by_selector.out.splitlines()
    assert len(lines) == 30 and lines[0] == "[pod/ztunnel-59c7g/istio-proxy] ztunnel-59c7g line 3"
    missing = await cluster.kubectl("logs", "nope")
    assert missing.err == 'Error from server (NotFound): pods "nope" not found\n'
    usage = await cluster.kubectl("logs")
    assert usage.err.startswith("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")


async def test_logs_containers(cluster: Cluster) -> None:
    pod = cluster.pod("productpage", containers=("productpage", "istio-proxy"))
    cluster.write_log(pod, "productpage", "hello\n")
    defaulted = await cluster.kubectl("logs", "productpage")
    assert (defaulted.out, defaulted.err) == ("hello\n", 'Defaulted container "productpage" out of: productpage, '
                                                         "istio-proxy\n")
    waiting = await cluster.kubectl("logs", "productpage", "-c", "istio-proxy")
    assert waiting.err == ('Error from server (BadRequest): container "istio-proxy" in pod "productpage" is waiting to '
                           "start: ContainerCreating\n")
    invalid = await cluster.kubectl("logs", "pod/productpage", "-c", "nope")
    assert invalid.err == "error: container nope is not valid for pod productpage\n"
    annotated = cluster.pod("ann", containers=("a", "b"),
                            meta={"annotations": {"kubectl.kubernetes.io/default-container": "b"}})
    cluster.write_log(annotated, "b", "from b\n")
    assert (await cluster.kubectl("logs", "ann")).out == "from b\n"


async def test_logs_follow_until_the_pod_is_gone(cluster: Cluster) -> None:
    pod = cluster.pod("p")
    cluster.write_log(pod, "app", "one\n")
    async with trio.open_nursery() as nursery:
        box = await in_background(nursery, lambda: cluster.kubectl("logs", "-f", "p"))
        cluster.write_log(pod, "app", "two\nthr")
        cluster.write_log(pod, "app", "ee\n")
        await cluster.api.delete("v1", "Pod", "default", "p", grace_period_seconds=0)
    assert box["result"].out == "one\ntwo\nthree\n"


async def test_exec(cluster: Cluster) -> None:
    await cluster.kubectl("apply", "-f", "-", stdin=SLEEP)
    cluster.pod("sleep-9454cc476-ntctf", labels={"app": "sleep"}, containers=("sleep", "istio-proxy"))
    ran = await cluster.kubectl("exec", "deploy/sleep", "--", "curl", "-s", "http://productpage:9080/")
    assert (ran.code, ran.err) == (0, 'Defaulted container "sleep" out of: sleep, istio-proxy\n')
    assert cluster.execs[-1] == ("sleep-9454cc476-ntctf", "sleep", ["curl", "-s", "http://productpage:9080/"],
                                 False, False)
    cluster.exec_code = 56
    failed = await cluster.kubectl("exec", "sleep-9454cc476-ntctf", "-c", "sleep", "--", "curl", "httpbin:8000")
    assert (failed.code, failed.err) == (56, "command terminated with exit code 56\n")
    cluster.exec_code = 0
    tty = await cluster.kubectl("exec", "-it", "svc/sleep", "-c", "istio-proxy", "--", "sh")
    assert tty.err == "Unable to use a TTY - input is not a terminal or the right kind of file\n"
    assert cluster.execs[-1][1:] == ("istio-proxy", ["sh"], True, False)
    bad = await cluster.kubectl("exec", "sleep-9454cc476-ntctf", "-c", "nope", "--", "sh")
    assert bad.err == 'error: unable to upgrade connection: container not found ("nope")\n'
    missing = await cluster.kubectl("exec", "nope", "--", "sh")
    assert missing.err == 'Error from server (NotFound): pods "nope" not found\n'
    cluster.pod("done", phase="Succeeded", ready=False)
    completed = await cluster.kubectl("exec", "done", "--", "sh")
    assert completed.err == "error: cannot exec into a container in a completed pod; current phase is Succeeded\n"
    cluster.pod("pending", phase="Pending", ready=False)
    assert (await cluster.kubectl("exec", "pending", "--", "sh")).err == (
        'error: unable to upgrade connection: container not found ("app")\n')
    no_command = await cluster.kubectl("exec", "sleep-9454cc476-ntctf")
    assert no_command.err == "error: you must specify at least one command for the container\n"


async def test_debug_runs_in_the_pods_namespaces(cluster: Cluster) -> None:
    cluster.pod("httpbin", containers=("httpbin",))
    result = await cluster.kubectl("debug", "httpbin", "-it", "--image", "nicolaka/netshoot", "--profile=netadmin",
                                   "--", "ss", "-ntlp")
    assert result.code == 0
    notice, tty = result.err.splitlines()
    assert notice.startswith("Defaulting debug container name to debugger-") and len(notice) == len(
        "Defaulting debug container name to debugger-abcde.")
    assert tty == "Unable to use a TTY - input is not a terminal or the right kind of file"
    assert cluster.execs[-1] == ("httpbin", "httpbin", ["ss", "-ntlp"], True, False)
    assert (await cluster.kubectl("debug", "httpbin", "--", "sh")).err == "error: --image is required\n"


# -- describe and the rest ----------------------------------------------------------------------

async def test_describe(cluster: Cluster) -> None:
    pod = cluster.pod("httpbin-5c779fc757-9dxfm", labels={"app": "httpbin", "version": "v1"},
                      spec={"serviceAccountName": "httpbin"})
    cluster.api.put({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
                     "type": "Normal", "reason": "Scheduled", "firstTimestamp": pod["metadata"]["creationTimestamp"],
                     "source": {"component": "default-scheduler"}, "message": "Successfully assigned",
                     "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}})
    described = await cluster.kubectl("describe", "pod", "httpbin")
    lines = described.out.splitlines()
    assert lines[0] == "Name:             httpbin-5c779fc757-9dxfm"
    assert lines[2:6] == ["Service Account:  httpbin", "Node:             worker/172.18.0.3",
                          "Labels:           app=httpbin", "                  version=v1"]
    assert lines[-3:-1] == ["  Type    Reason     Age   From               Message",
                            "  ----    ------     ----  ----               -------"]
    assert lines[-1].startswith("  Normal  Scheduled  60s   default-scheduler  Successfully assigned")
    missing = await cluster.kubectl("describe", "pod", "nope")
    assert missing.err == 'Error from server (NotFound): pods "nope" not found\n'
    cluster.api.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "default"},
                     "spec": {"type": "ClusterIP", "clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"],
                              "ports": [{"name": "http", "port": 8000, "targetPort": 8080, "protocol": "TCP"}],
                              "selector": {"app": "httpbin"}}})
    cluster.api.put({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "httpbin", "namespace": "default"},
                     "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"name": "http", "port": 8080}]}]})
    service = (await cluster.kubectl("describe", "svc", "httpbin")).out
    assert ("Port:              http  8000/TCP\nTargetPort:        8080/TCP\n"
            "Endpoints:         10.244.1.5:8080\n") in service


async def test_version_api_resources_config_help(cluster: Cluster) -> None:
    version = await cluster.kubectl("version", "--client")
    assert version.out == ("Client Version: v1.29.2\nKustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3\n")
    resources = (await cluster.kubectl("api-resources")).out.splitlines()
    assert resources[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert resources[1].split() == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    assert any(line.split() == ["deployments", "deploy", "apps/v1", "true", "Deployment"] for line in resources)
    assert (await cluster.kubectl("config", "current-context")).out == "fake\n"
    assert (await cluster.kubectl("--help")).out.startswith("kubectl controls the Kubernetes cluster manager.")
    unknown = await cluster.kubectl("frobnicate")
    assert (unknown.code, unknown.err) == (1, 'error: unknown command "frobnicate" for "kubectl"\n')
    bad_flag = await cluster.kubectl("get", "pods", "--bogus")
    assert bad_flag.err == "error: unknown flag: --bogus\nSee 'kubectl get --help' for usage.\n"


@pytest.mark.parametrize("argv", [["-n", "default", "get", "pods"], ["get", "-n=default", "pods"],
                                  ["get", "pods", "--namespace", "default", "-v", "6", "--context", "kind-ambient"]])
async def test_global_flags_anywhere(cluster: Cluster, argv: list[str]) -> None:
    cluster.pod("p")
    result = await cluster.kubectl(*argv)
    assert result.code == 0 and result.out.splitlines()[1].startswith("p ")
