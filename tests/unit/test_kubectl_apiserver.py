"""kubectl against the real apiserver, in-process on a Unix socket: the messages, defaults and
watches kubectl relies on, as the apiserver really produces them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import trio
import trio.testing

from components.common.apiclient import ApiClient
from harness.kubectl import KubectlContext, run
from tests.unit.test_apiserver_support import (add_kind_nodes, api, apiserver, eventually, pod,  # noqa: F401
                                               run_pod, signing_key)
from tests.unit.test_kubectl_commands import SLEEP
from tests.unit.test_kubectl_fake import Result


async def kubectl(api: ApiClient, *argv: str, stdin: str = "", cwd: Path = Path("/")) -> Result:
    out, err = io.StringIO(), io.StringIO()

    async def no_exec(pod: dict[str, Any], container: str, argv: list[str], stdin: bool, tty: bool) -> int:
        raise AssertionError("no exec in these tests")

    ctx = KubectlContext(api=api, stdin=io.BytesIO(stdin.encode()), stdout=out, stderr=err, exec_in_pod=no_exec,
                         container_log_path=lambda pod, container: cwd / f"{container}.log", cwd=cwd)
    code = await run(list(argv), ctx)
    return Result(code, out.getvalue(), err.getvalue())


async def test_apply_get_label_against_the_apiserver(api: ApiClient) -> None:
    assert (await kubectl(api, "create", "ns", "ambient-demo")).out == "namespace/ambient-demo created\n"
    created = await kubectl(api, "apply", "-f", "-", "-n", "ambient-demo", stdin=SLEEP)
    assert (created.code, created.out, created.err) == (
        0, "serviceaccount/sleep created\nservice/sleep created\ndeployment.apps/sleep created\n", "")
    again = await kubectl(api, "apply", "-f", "-", "-n", "ambient-demo", stdin=SLEEP)
    assert again.out == "serviceaccount/sleep unchanged\nservice/sleep unchanged\ndeployment.apps/sleep unchanged\n"
    services = (await kubectl(api, "get", "svc", "-n", "ambient-demo")).out.splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    name, kind, cluster_ip, external, ports, _ = services[1].split()
    assert (name, kind, external, ports) == ("sleep", "ClusterIP", "<none>", "80/TCP")
    assert cluster_ip.startswith("10.96.")
    labeled = await kubectl(api, "label", "namespace", "ambient-demo", "istio.io/dataplane-mode=ambient")
    assert labeled.out == "namespace/ambient-demo labeled\n"
    shown = await kubectl(api, "get", "ns", "ambient-demo", "-o", "jsonpath={.metadata.labels}")
    assert json.loads(shown.out)["istio.io/dataplane-mode"] == "ambient"
    reapplied = await kubectl(api, "apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                                             "  name: ambient-demo\n")
    assert reapplied.out == "namespace/ambient-demo configured\n"
    assert "Warning: resource namespaces/ambient-demo is missing" in reapplied.err
    still = await api.get("v1", "Namespace", None, "ambient-demo")
    assert still["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"


async def test_errors_from_the_apiserver(api: ApiClient) -> None:
    missing = await kubectl(api, "get", "pods", "x")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): pods "x" not found\n')
    no_ns = await kubectl(api, "apply", "-n", "foo", "-f", "-", stdin=SLEEP.split("---")[0])
    assert no_ns.err == 'Error from server (NotFound): error when creating "STDIN": namespaces "foo" not found\n'
    await kubectl(api, "create", "ns", "demo")
    twice = await kubectl(api, "create", "ns", "demo")
    assert twice.err == 'Error from server (AlreadyExists): namespaces "demo" already exists\n'
    gone = await kubectl(api, "delete", "deploy", "nope")
    assert gone.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    version = await kubectl(api, "version")
    assert version.out.splitlines()[2].startswith("Server Version: v1.")


async def test_scheduled_pods_wait_and_graceful_delete(api: ApiClient) -> None:
    await add_kind_nodes(api)
    await api.create(pod("sleep", labels={"app": "sleep"}))
    bound = await eventually(lambda: _node_of(api, "sleep"))
    by_node = await kubectl(api, "get", "pods", "-l", "app=sleep", f"--field-selector=spec.nodeName={bound}",
                            "-o=jsonpath={.items[0].metadata.name}")
    assert by_node.out == "sleep"
    async with trio.open_nursery() as nursery:
        waited: dict[str, Result] = {}

        async def wait_ready() -> None:
            waited["result"] = await kubectl(api, "wait", "--for=condition=Ready", "pod/sleep", "--timeout=10s")

        nursery.start_soon(wait_ready)
        await trio.testing.wait_all_tasks_blocked()
        await run_pod(api, "default", "sleep", "10.244.1.5")
    assert waited["result"].out == "pod/sleep condition met\n"
    wide = (await kubectl(api, "get", "pod", "sleep", "-o", "wide")).out.splitlines()[1].split()
    assert wide[2] == "Running"
    assert wide[5:7] == ["10.244.1.5", bound]

    async with trio.open_nursery() as nursery:
        deleted: dict[str, Result] = {}

        async def delete() -> None:
            deleted["result"] = await kubectl(api, "delete", "pod", "sleep", "--timeout=10s")

        nursery.start_soon(delete)
        await eventually(lambda: _terminating(api, "sleep"))
        assert "result" not in deleted
        await api.delete("v1", "Pod", "default", "sleep", grace_period_seconds=0)
    assert (deleted["result"].code, deleted["result"].out) == (0, 'pod "sleep" deleted\n')


async def _node_of(api: ApiClient, name: str) -> str:
    return (await api.get("v1", "Pod", "default", name))["spec"].get("nodeName", "")


async def _terminating(api: ApiClient, name: str) -> bool:
    return bool((await api.get("v1", "Pod", "default", name))["metadata"].get("deletionTimestamp"))


async def test_deployments_patch_scale_restart_and_get_all(api: ApiClient) -> None:
    await kubectl(api, "apply", "-f", "-", stdin=SLEEP)
    assert (await kubectl(api, "scale", "deploy/sleep", "--replicas=2")).out == "deployment.apps/sleep scaled\n"
    patched = await kubectl(api, "patch", "deployment", "sleep", "-p",
                            '{"spec":{"template":{"spec":{"containers":[{"name":"sleep","image":"busybox"}]}}}}')
    assert (patched.code, patched.out, patched.err) == (0, "deployment.apps/sleep patched\n", "")
    assert (await kubectl(api, "rollout", "restart", "deploy", "sleep")).out == "deployment.apps/sleep restarted\n"
    template = (await api.get("apps/v1", "Deployment", "default", "sleep"))["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "busybox"
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    await eventually(lambda: _pods_named(api, "sleep-"))
    everything = (await kubectl(api, "get", "all")).out
    assert "\nservice/kubernetes " in everything and "\ndeployment.apps/sleep " in everything
    assert everything.startswith("NAME ") and "\npod/sleep-" in everything
    described = (await kubectl(api, "describe", "deploy", "sleep")).out
    assert described.startswith("Name:                   sleep\nNamespace:              default\n")
    assert "\nReplicas:               2 desired | " in described


async def _pods_named(api: ApiClient, prefix: str) -> bool:
    items = (await api.list("v1", "Pod", "default"))["items"]
    return any(p["metadata"]["name"].startswith(prefix) for p in items)
