"""The in-process controllers: namespaces, deployments, daemonsets, the scheduler, endpoints and
garbage collection, observed through the API as any client sees them."""

from __future__ import annotations

import re

from components.common.apiclient import ApiClient
from tests.unit.test_apiserver_support import (add_kind_nodes, add_node, api, apiserver, deployment,  # noqa: F401
                                               error_of, eventually, list_names, pod, run_pod,
                                               signing_key)

HASHED_NAME = re.compile(r"^web-([bcdfghjklmnpqrstvwxz2456789]{10})-[bcdfghjklmnpqrstvwxz2456789]{5}$")


async def pods_of(api: ApiClient, namespace: str = "default", selector: str | None = None,
                  active: bool = True) -> list[dict]:
    items = (await api.list("v1", "Pod", namespace, label_selector=selector))["items"]
    return [p for p in items if not (active and p["metadata"].get("deletionTimestamp"))]


# -- namespaces -----------------------------------------------------------------------------------

async def test_a_new_cluster_has_its_namespaces_and_kubernetes_service(api: ApiClient):
    namespaces = {n["metadata"]["name"]: n for n in (await api.list("v1", "Namespace"))["items"]}
    assert set(namespaces) >= {"default", "kube-system", "kube-public", "kube-node-lease"}
    assert all(n["status"]["phase"] == "Active" for n in namespaces.values())
    assert await list_names(api, "v1", "ServiceAccount", "kube-system") == ["default"]
    kubernetes = await api.get("v1", "Service", "default", "kubernetes")
    assert kubernetes["spec"]["clusterIP"] == "10.96.0.1"
    assert kubernetes["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]
    endpoints = await api.get("v1", "Endpoints", "default", "kubernetes")
    assert endpoints["subsets"] == [{"addresses": [{"ip": "172.18.0.2"}],
                                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    error = await error_of(api.delete("v1", "Namespace", None, "default"))
    assert (error.code, str(error)) == (403, 'namespaces "default" is forbidden: this namespace may not be deleted')


async def test_new_namespaces_get_a_default_service_account_and_pods_can_use_it(api: ApiClient):
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    created = await api.create(pod("sleep", "demo"))
    assert created["spec"]["serviceAccountName"] == "default"
    assert await list_names(api, "v1", "ServiceAccount", "demo") == ["default"]


async def test_deleting_a_namespace_deletes_its_content_first(api: ApiClient):
    await add_node(api, "worker")
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    await eventually(lambda: list_names(api, "v1", "ServiceAccount", "demo"))
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "demo"}})
    await api.create(pod("bound", "demo", nodeName="worker"))
    deleted = await api.delete("v1", "Namespace", None, "demo")
    assert deleted["status"]["phase"] == "Terminating"
    error = await error_of(api.create(pod("late", "demo")))
    assert (error.code, str(error)) == (403, 'pods "late" is forbidden: unable to create new content in namespace '
                                             'demo because it is being terminated')
    bound = await eventually(lambda: _terminating_pod(api))
    assert bound["metadata"]["deletionGracePeriodSeconds"] == 30
    assert await list_names(api, "v1", "ConfigMap", "demo") == []
    assert (await api.get("v1", "Namespace", None, "demo"))["status"]["phase"] == "Terminating"
    await api.delete("v1", "Pod", "demo", "bound", grace_period_seconds=0)
    await eventually(lambda: _gone(api, "v1", "Namespace", None, "demo"))


async def _terminating_pod(api: ApiClient) -> dict | None:
    found = await api.get("v1", "Pod", "demo", "bound")
    return found if found["metadata"].get("deletionTimestamp") else None


async def _gone(api: ApiClient, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
    return (await error_of(api.get(api_version, kind, namespace, name))).code == 404


# -- deployments ----------------------------------------------------------------------------------

async def test_deployment_pods_are_named_labelled_and_owned(api: ApiClient):
    created = await api.create(deployment("web", replicas=2))
    pods = await eventually(lambda: _count(api, "app=web", 2))
    hashes = {HASHED_NAME.match(p["metadata"]["name"]).group(1) for p in pods}
    assert len(hashes) == 1
    for p in pods:
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": next(iter(hashes))}
        assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                     "uid": created["metadata"]["uid"], "controller": True,
                                                     "blockOwnerDeletion": True}]
    await api.delete("apps/v1", "Deployment", "default", "web")
    await eventually(lambda: _count(api, "app=web", 0))
    await api.create(deployment("web", replicas=1))
    again = await eventually(lambda: _count(api, "app=web", 1))
    assert HASHED_NAME.match(again[0]["metadata"]["name"]).group(1) in hashes


async def _count(api: ApiClient, selector: str, count: int, namespace: str = "default") -> list[dict] | bool:
    pods = await pods_of(api, namespace, selector)
    return (pods or True) if len(pods) == count else False


async def test_deployments_scale_and_roll_to_a_new_template(api: ApiClient):
    await api.create(deployment("web", replicas=2))
    await eventually(lambda: _count(api, "app=web", 2))
    await api.patch("apps/v1", "Deployment", "default", "web", {"spec": {"replicas": 3}})
    first = await eventually(lambda: _count(api, "app=web", 3))
    await api.patch("apps/v1", "Deployment", "default", "web", {"spec": {"replicas": 1}})
    await eventually(lambda: _count(api, "app=web", 1))
    old_hash = first[0]["metadata"]["labels"]["pod-template-hash"]
    await api.patch("apps/v1", "Deployment", "default", "web", {"spec": {"template": {"metadata": {
        "annotations": {"restarted": "now"}}}}})

    async def rolled() -> bool:
        pods = await pods_of(api, selector="app=web")
        return len(pods) == 1 and pods[0]["metadata"]["labels"]["pod-template-hash"] != old_hash

    await eventually(rolled)
    new = (await pods_of(api, selector="app=web"))[0]
    assert new["metadata"]["annotations"] == {"restarted": "now"}


async def test_deployment_status_follows_pod_readiness(api: ApiClient):
    await api.create(deployment("web", replicas=2))
    pods = await eventually(lambda: _count(api, "app=web", 2))

    async def status_is(**expected: int) -> bool:
        status = (await api.get("apps/v1", "Deployment", "default", "web"))["status"]
        return all(status.get(k, 0) == v for k, v in expected.items())

    await eventually(lambda: status_is(replicas=2, updatedReplicas=2, readyReplicas=0, observedGeneration=1))
    for index, p in enumerate(pods):
        await run_pod(api, "default", p["metadata"]["name"], f"10.244.1.{index + 2}")
    await eventually(lambda: status_is(replicas=2, readyReplicas=2, availableReplicas=2))
    status = (await api.get("apps/v1", "Deployment", "default", "web"))["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"


# -- daemonsets -----------------------------------------------------------------------------------

def daemon_set(name: str, **pod_spec) -> dict:
    pod_spec.setdefault("containers", [{"name": name, "image": "docker.io/istio/ztunnel:1.24.0"}])
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}


async def _nodes_of(api: ApiClient, app: str, count: int) -> list[str] | bool:
    pods = await pods_of(api, "kube-system", f"app={app}")
    nodes = sorted(p["spec"]["nodeName"] for p in pods)
    return nodes if len(nodes) == count else False


async def test_daemonsets_run_one_pod_per_tolerating_node(api: ApiClient):
    await add_kind_nodes(api)
    created = await api.create(daemon_set("plain"))
    await api.create(daemon_set("everywhere", tolerations=[{"operator": "Exists"}]))
    await api.create(daemon_set("selected", nodeSelector={"role": "edge"}))
    assert await eventually(lambda: _nodes_of(api, "plain", 2)) == ["worker", "worker2"]
    assert await eventually(lambda: _nodes_of(api, "everywhere", 3)) == ["control-plane", "worker", "worker2"]
    pods = await pods_of(api, "kube-system", "app=plain")
    assert all(re.match(r"^plain-[bcdfghjklmnpqrstvwxz2456789]{5}$", p["metadata"]["name"]) for p in pods)
    assert pods[0]["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    await add_node(api, "edge", {"role": "edge"})
    assert await eventually(lambda: _nodes_of(api, "selected", 1)) == ["edge"]
    assert await eventually(lambda: _nodes_of(api, "plain", 3)) == ["edge", "worker", "worker2"]

    async def status_ok() -> bool:
        status = (await api.get("apps/v1", "DaemonSet", "kube-system", "plain"))["status"]
        return status["desiredNumberScheduled"] == 3 and status["currentNumberScheduled"] == 3 and \
            status["numberReady"] == 0 and status["observedGeneration"] == 1

    await eventually(status_ok)


# -- scheduler ------------------------------------------------------------------------------------

async def node_of(api: ApiClient, name: str, namespace: str = "default") -> str | None:
    return (await api.get("v1", "Pod", namespace, name))["spec"].get("nodeName")


async def test_scheduler_spreads_pods_and_avoids_the_control_plane(api: ApiClient):
    await add_kind_nodes(api)
    for name in ("a", "b", "c", "d"):
        await api.create(pod(name))
        await eventually(lambda: node_of(api, name))
    nodes = [await node_of(api, n) for n in ("a", "b", "c", "d")]
    assert sorted(nodes) == ["worker", "worker", "worker2", "worker2"]
    scheduled = await api.get("v1", "Pod", "default", "a")
    condition = next(c for c in scheduled["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["status"] == "True"
    events = (await api.list("v1", "Event", "default"))["items"]
    assert any(e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "a" and
               e["message"] == f"Successfully assigned default/a to {nodes[0]}" for e in events)


async def test_scheduler_honours_node_selectors_and_anti_affinity(api: ApiClient):
    await add_kind_nodes(api)
    await api.create(pod("sleep", labels={"app": "sleep"}, nodeSelector={"kubernetes.io/hostname": "worker"}))
    assert await eventually(lambda: node_of(api, "sleep")) == "worker"
    await api.create(pod("notsleep", labels={"app": "notsleep"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["sleep"]}]},
            "topologyKey": "kubernetes.io/hostname"}]}}))
    assert await eventually(lambda: node_of(api, "notsleep")) == "worker2"
    await api.create(pod("with-sleep", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "sleep"}}, "topologyKey": "kubernetes.io/hostname"}]}}))
    assert await eventually(lambda: node_of(api, "with-sleep")) == "worker"
    await api.create(pod("on-cp", tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                                "effect": "NoSchedule"}],
                         affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                             "nodeSelectorTerms": [{"matchExpressions": [{
                                 "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]}}}))
    assert await eventually(lambda: node_of(api, "on-cp")) == "control-plane"


async def test_unschedulable_pods_say_why_and_are_retried(api: ApiClient):
    await add_kind_nodes(api)
    await api.create(pod("picky", nodeSelector={"disk": "ssd"}))
    expected = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
                "3 Preemption is not helpful for scheduling.")

    async def unschedulable() -> dict | None:
        found = await api.get("v1", "Pod", "default", "picky")
        return next((c for c in found["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)

    condition = await eventually(unschedulable)
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "Unschedulable", expected)
    events = (await api.list("v1", "Event", "default"))["items"]
    assert [e["message"] for e in events if e["reason"] == "FailedScheduling"] == [expected]
    assert events[0]["type"] == "Warning" and events[0]["involvedObject"]["kind"] == "Pod"
    await add_node(api, "fast", {"disk": "ssd"})
    assert await eventually(lambda: node_of(api, "picky")) == "fast"


async def test_anti_affinity_that_cannot_be_met_is_reported(api: ApiClient):
    await add_node(api, "worker")
    await api.create(pod("one", labels={"app": "x"}))
    await eventually(lambda: node_of(api, "one"))
    await api.create(pod("two", labels={"app": "x"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "x"}},
                                                            "topologyKey": "kubernetes.io/hostname"}]}}))

    async def message() -> str | None:
        found = await api.get("v1", "Pod", "default", "two")
        return next((c.get("message") for c in found["status"].get("conditions", []) if c["type"] == "PodScheduled"),
                    None)

    assert await eventually(message) == (
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod.")


async def test_a_pod_bound_to_a_missing_node_stays_pending(api: ApiClient):
    await api.create(pod("lost", nodeName="ghost"))

    async def condition() -> dict | None:
        found = await api.get("v1", "Pod", "default", "lost")
        return next((c for c in found["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)

    found = await eventually(condition)
    assert (found["status"], found["message"]) == ("False", 'node "ghost" not found')
    assert (await api.get("v1", "Pod", "default", "lost"))["status"]["phase"] == "Pending"


# -- endpoints ------------------------------------------------------------------------------------

async def test_endpoints_follow_pods_readiness_and_named_ports(api: ApiClient):
    await add_node(api, "worker")
    await api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"selector": {"app": "web"}, "ports": [
                          {"name": "http", "port": 80, "targetPort": "http-web"},
                          {"name": "metrics", "port": 9090, "targetPort": 15020}]}})
    containers = [{"name": "web", "image": "httpbin", "ports": [{"name": "http-web", "containerPort": 8080}]}]
    for name in ("web-1", "web-2"):
        await api.create(pod(name, labels={"app": "web"}, containers=containers))
    await api.create(pod("other", labels={"app": "other"}, containers=containers))
    for name, ip in (("web-1", "10.244.1.2"), ("web-2", "10.244.1.3"), ("other", "10.244.1.4")):
        await eventually(lambda: node_of(api, name))
        await run_pod(api, "default", name, ip, ready=name != "web-2")
    web1 = await api.get("v1", "Pod", "default", "web-1")

    async def subsets() -> list | None:
        found = await api.get("v1", "Endpoints", "default", "web")
        return found.get("subsets") if any("notReadyAddresses" in s for s in found.get("subsets", [])) else None

    found = await eventually(subsets)
    assert found == [{
        "addresses": [{"ip": "10.244.1.2", "nodeName": "worker", "targetRef": {
            "kind": "Pod", "namespace": "default", "name": "web-1", "uid": web1["metadata"]["uid"]}}],
        "notReadyAddresses": [{"ip": "10.244.1.3", "nodeName": "worker", "targetRef": {
            "kind": "Pod", "namespace": "default", "name": "web-2", "uid": found[0]["notReadyAddresses"][0][
                "targetRef"]["uid"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 15020,
                                                                       "protocol": "TCP"}]}]
    await api.delete("v1", "Pod", "default", "web-1")

    async def only_not_ready() -> bool:
        found = (await api.get("v1", "Endpoints", "default", "web")).get("subsets", [])
        return len(found) == 1 and "addresses" not in found[0]

    await eventually(only_not_ready)
    await api.delete("v1", "Service", "default", "web")
    await eventually(lambda: _gone(api, "v1", "Endpoints", "default", "web"))


# -- garbage collection ---------------------------------------------------------------------------

async def test_dependents_go_with_their_owner(api: ApiClient):
    owner = await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner",
                                                                                     "namespace": "default"}})
    other = await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other",
                                                                                     "namespace": "default"}})

    def ref(obj: dict) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}

    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "single", "namespace": "default", "ownerReferences": [ref(owner)]}})
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "shared", "namespace": "default", "ownerReferences": [ref(owner), ref(other)]}})
    await api.delete("v1", "ConfigMap", "default", "owner")
    await eventually(lambda: _gone(api, "v1", "ConfigMap", "default", "single"))

    async def trimmed() -> bool:
        shared = await api.get("v1", "ConfigMap", "default", "shared")
        return shared["metadata"]["ownerReferences"] == [ref(other)]

    await eventually(trimmed)
