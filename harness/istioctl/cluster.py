"""Finding Istio's pods and talking to them, as istioctl does.

istioctl reaches a pod's admin port by port-forwarding; here the request goes through the
apiserver's pod proxy subresource (`/api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH`), and
failures read as istioctl's port-forward errors. Pod lookups follow istioctl 1.24's
`InferPodInfoFromTypedResource`: `NAME[.NS]` is a pod, `TYPE/NAME[.NS]` the first pod (by
kubectl's choice) of a workload.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from components.common import http
from components.common.apiclient import ApiClient, ApiError
from harness.istioctl.errors import IstioctlError
from harness.kubectl import pods as kubectl_pods
from harness.kubectl import resources
from harness.kubectl.errors import KubectlError

Obj = dict[str, Any]
FIRST_POD_TIMEOUT = 2.0  # how long istioctl waits for a workload's first pod
ISTIOD_HTTP_PORT = 8080  # the emulated istiod's debug endpoints (/debug/config_dump, /debug/syncz)
ZTUNNEL_ADMIN_PORT = 15000


def _ready(pod: Obj) -> bool:
    return kubectl_pods.is_ready(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")


async def running_istiods(api: ApiClient, namespace: str) -> list[Obj]:
    """istiod's pods that are Running and Ready (`GetIstioPods` with app=istiod)."""
    listing = await api.list("v1", "Pod", namespace, label_selector="app=istiod", field_selector="status.phase=Running")
    return [p for p in listing.get("items") or [] if _ready(p)]


async def istiod_pod(api: ApiClient, namespace: str) -> Obj:
    """The istiod to ask; istioctl's error when Istio is not installed (or not running)."""
    found = await running_istiods(api, namespace)
    if not found:
        raise IstioctlError(f'no running Istio pods in "{namespace}"')
    return found[0]


def _infer_namespace(ref: str, namespace: str) -> tuple[str, str]:
    """istioctl's `inferNsInfo`: `name.ns` and `type/name.ns` carry their namespace (the type of
    `deployment.apps/x` may itself contain dots)."""
    slash = ref.rfind("/")
    if slash > 0:
        dot = ref[slash:].rfind(".")
        return (ref, namespace) if dot < 0 else (ref[:slash + dot], ref[slash + dot + 1:])
    dot = ref.rfind(".")
    return (ref, namespace) if dot < 0 else (ref[:dot], ref[dot + 1:])


async def infer_pod(api: ApiClient, ref: str, namespace: str) -> tuple[str, str]:
    """(pod name, namespace) for `NAME[.NS]` or `TYPE/NAME[.NS]`."""
    name, namespace = _infer_namespace(ref, namespace)
    if "/" not in name:
        return name, namespace
    try:
        kind, object_name = resources.split_type_name(name)
        obj = await api.get(kind.api_version, kind.kind, namespace, object_name)
    except (KubectlError, ApiError) as exc:
        raise IstioctlError(f'failed retrieving: {exc} in the "{namespace}" namespace') from exc
    if kind.kind == "Pod":
        return object_name, namespace
    try:
        selector = kubectl_pods.selector_for(kind, obj)
    except KubectlError as exc:
        raise IstioctlError(f'"{name}" does not refer to a pod: {exc}') from exc
    try:
        pod, _ = await kubectl_pods.first_pod(api, namespace, selector, for_logs=True, timeout=FIRST_POD_TIMEOUT)
    except KubectlError as exc:
        raise IstioctlError(f'no pods match "{name}"') from exc
    return pod["metadata"]["name"], namespace


async def pod_on_node(api: ApiClient, node: str, daemonset: str, namespace: str) -> tuple[str, str]:
    """The DaemonSet's pod on a node (`PodOnNodeFromDaemonset`)."""
    try:
        ds = await api.get("apps/v1", "DaemonSet", namespace, daemonset)
    except ApiError as exc:
        raise IstioctlError(str(exc)) from exc
    labels = ((ds.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if not labels:
        raise IstioctlError("selector is required")
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    listing = await api.list("v1", "Pod", namespace, label_selector=selector, field_selector=f"spec.nodeName={node}")
    pods = sorted(listing.get("items") or [], key=lambda p: (not _ready(p), p["metadata"]["name"]))
    if not pods:
        raise IstioctlError("no pods found")
    return pods[0]["metadata"]["name"], namespace


async def is_ztunnel_pod(api: ApiClient, name: str, namespace: str) -> bool:
    """`IsZtunnelPod`: the pod's `app` label says ztunnel; without the pod or the label, its name."""
    try:
        pod = await api.get("v1", "Pod", namespace, name)
    except ApiError:
        return name.startswith("ztunnel")
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels["app"] == "ztunnel" if "app" in labels else name.startswith("ztunnel")


async def pod_request(api: ApiClient, name: str, namespace: str, port: int, path: str, method: str = "GET") -> bytes:
    """A request to a pod's port through the apiserver (istioctl's `EnvoyDoWithPort`); errors
    read as istioctl's port-forward errors."""
    forward_failed = "failure running port forward process: "
    try:
        pod = await api.get("v1", "Pod", namespace, name)
    except ApiError as exc:
        if exc.__cause__ is not None:  # the apiserver itself cannot be reached
            raise IstioctlError(str(exc)) from exc
        raise IstioctlError(f'{forward_failed}{forward_failed}failed retrieving: {exc} in the "{namespace}" '
                            "namespace") from exc
    phase = (pod.get("status") or {}).get("phase", "")
    if phase != "Running":
        raise IstioctlError(f"{forward_failed}{forward_failed}pod is not running. Status={phase}")
    quote = urllib.parse.quote
    target = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}:{port}/proxy/{path}"
    try:
        response = await http.request(api.address, method, target, headers=[("accept", "*/*")])
    except (OSError, http.HTTPError) as exc:
        raise IstioctlError(f"{forward_failed}{exc}") from exc
    if response.status == 503 and response.header("content-type", "").startswith("application/json"):
        status = response.json_body()
        if isinstance(status, dict) and status.get("kind") == "Status":
            raise IstioctlError(f"{forward_failed}{status.get('message', '')}")
    if response.status != 200:
        raise IstioctlError(f"unexpected status code: {response.status}")
    return response.body


async def pod_json(api: ApiClient, name: str, namespace: str, port: int, path: str) -> Any:
    body = await pod_request(api, name, namespace, port, path)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise IstioctlError(f"{name}.{namespace}: the response to /{path} is not JSON: {exc}") from exc
