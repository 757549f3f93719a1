"""istioctl against the real apiserver, in-process on a Unix socket: install from a manifests
directory of the test's own (pods made ready by a stand-in kubelet), precheck, version, and
ztunnel-config reading a stand-in istiod and ztunnel on 127.0.0.1 through the pod proxy."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509

from components.common import http, pki
from components.common.apiclient import ApiClient
from harness.istioctl import IstioctlContext, cluster, run
from tests.unit.test_apiserver_support import add_kind_nodes, api, apiserver, pod, run_pod, signing_key  # noqa: F401
from tests.unit.test_istioctl_configdump import CERTIFICATES, demo_config
from tests.unit.test_istioctl_envoydump import WAYPOINT as WAYPOINT_ID, served_dump

ISTIO_CORE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  annotations:
    install.istio.io/component: Istio core
"""
ISTIOD = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istiod
  namespace: istio-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod
  namespace: istio-system
  labels: {app: istiod}
  annotations:
    install.istio.io/component: Istiod
spec:
  selector:
    matchLabels: {app: istiod}
  template:
    metadata:
      labels: {app: istiod, istio: pilot}
    spec:
      serviceAccountName: istiod
      containers:
      - name: discovery
        image: docker.io/istio/pilot:1.24.0
"""


def daemonset(name: str, component: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  annotations:
    install.istio.io/component: {component}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: docker.io/istio/{name}:1.24.0
"""


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "00-base.yaml").write_text(ISTIO_CORE)
    (directory / "10-istiod.yaml").write_text(ISTIOD)
    (directory / "20-cni.yaml").write_text(daemonset("istio-cni-node", "CNI"))
    (directory / "30-ztunnel.yaml").write_text(daemonset("ztunnel", "Ztunnel"))
    return directory


@dataclass
class Result:
    code: int
    out: str
    err: str


async def istioctl(api: ApiClient, *argv: str, stdin: str = "", manifests: Path | None = None,
                   cwd: Path = Path("/")) -> Result:
    out, err = io.StringIO(), io.StringIO()
    ctx = IstioctlContext(api=api, stdin=io.StringIO(stdin), stdout=out, stderr=err, cwd=cwd)
    if manifests is not None:
        ctx.manifests_dir = manifests
    code = await run(list(argv), ctx)
    return Result(code, out.getvalue(), err.getvalue())


async def fake_kubelet(api: ApiClient, namespace: str = "istio-system") -> None:
    """Reports every bound pod of the namespace Running and Ready (there is no kubelet here)."""
    async for event, obj in api.reflect("v1", "Pod", namespace):
        for item in obj["items"] if event == "SYNC" else [obj] if event != "DELETED" else []:
            if item["spec"].get("nodeName") and item.get("status", {}).get("phase") != "Running":
                await run_pod(api, namespace, item["metadata"]["name"], "127.0.0.1")


def checked_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("✔", "✘"))]


INSTALLED = ["✔ Istio core installed ⛵️", "✔ Istiod installed 🧠", "✔ CNI installed 🪢",
             "✔ Ztunnel installed 🔒", "✔ Installation complete"]


async def test_install_applies_each_component_and_waits_for_it(api: ApiClient, manifests: Path,
                                                               nursery: trio.Nursery):
    await add_kind_nodes(api)
    nursery.start_soon(fake_kubelet, api)
    result = await istioctl(api, "install", "--set", "profile=ambient", "-y", manifests=manifests)
    assert (result.code, result.out) == (0, "")
    assert result.err.startswith("        |\\          \n")
    assert checked_lines(result.err) == INSTALLED
    assert result.err.endswith("✔ Installation complete\nThe ambient profile has been installed successfully, "
                               "enjoy Istio without sidecars!\n")
    assert "- Processing resources for Istiod.\n" in result.err
    istiod = await api.get("apps/v1", "Deployment", "istio-system", "istiod")
    assert istiod["status"]["readyReplicas"] == 1
    assert istiod["metadata"]["labels"]["operator.istio.io/component"] == "Pilot"
    ztunnel = await api.get("apps/v1", "DaemonSet", "istio-system", "ztunnel")
    assert ztunnel["status"]["numberReady"] == 2  # the workers; the control plane is tainted
    again = await istioctl(api, "install", "--set", "profile=ambient", "--skip-confirmation", manifests=manifests)
    assert (again.code, checked_lines(again.err)) == (0, INSTALLED)


async def test_install_asks_first(api: ApiClient, manifests: Path, nursery: trio.Nursery):
    prompt = 'This will install the Istio 1.24.0 profile "ambient" into the cluster. Proceed? (y/N) '
    for answer in ("", "n\n", "no\n", "\n"):
        refused = await istioctl(api, "install", "--set", "profile=ambient", stdin=answer, manifests=manifests)
        assert (refused.code, refused.out) == (1, prompt)
        assert refused.err.endswith("\nCancelled.\n")
    assert (await api.list("apps/v1", "Deployment", "istio-system"))["items"] == []
    nursery.start_soon(fake_kubelet, api)
    await add_kind_nodes(api)
    accepted = await istioctl(api, "install", "--set", "profile=ambient", stdin="maybe\nY\n", manifests=manifests)
    assert (accepted.code, accepted.out) == (0, prompt * 2)
    assert checked_lines(accepted.err) == INSTALLED


async def test_install_reports_what_is_not_ready_in_time(api: ApiClient, manifests: Path):
    await add_kind_nodes(api)
    result = await istioctl(api, "install", "--set", "profile=ambient", "-y", "--readiness-timeout", "300ms",
                            "--set", "components.cni.enabled=false", manifests=manifests)
    assert result.code == 1
    assert checked_lines(result.err)[:2] == [
        "✔ Istio core installed ⛵️",
        "✘ Istiod encountered an error: failed to wait for resource: resources not ready after 300ms: "
        "context deadline exceeded"]
    assert "  Deployment/istio-system/istiod (pod istio-system/istiod-" in result.err
    assert "CNI" not in result.err
    assert "Error: failed to install manifests: 2 errors occurred:\n\t* failed to wait for resource" in result.err
    assert "Installation complete" not in result.err


async def test_install_settings_and_profiles(api: ApiClient, manifests: Path, nursery: trio.Nursery):
    unknown = await istioctl(api, "install", "--set", "profile=nope", manifests=manifests)
    assert (unknown.code, unknown.err) == (1, 'Error: generate config: profile "nope" not found: open '
                                              'profiles/nope.yaml: file does not exist\n')
    other = await istioctl(api, "install", "--set", "profile=demo", manifests=manifests)
    assert other.err == 'Error: profile "demo" is not emulated: only "ambient" is (--set profile=ambient)\n'
    nursery.start_soon(fake_kubelet, api)
    await add_kind_nodes(api)
    seed = await istioctl(api, "install", "--set", "profile=ambient", "--set",
                          "components.ingressGateways[0].enabled=true", "--set",
                          "components.ingressGateways[0].name=istio-ingressgateway", "--set",
                          "values.cni.cniConfDir=/x", "--skip-confirmation", manifests=manifests)
    assert seed.code == 0
    assert "Ingress gateways" not in seed.err.split("✔")[0]
    assert "! --set values.cni.cniConfDir=/x has no effect: the emulated Istio manifests are fixed\n" in seed.err
    assert checked_lines(seed.err) == INSTALLED


async def test_commands_that_need_istio_say_it_is_not_installed(api: ApiClient):
    for argv in (["ztunnel-config", "workloads"], ["zc", "services", "-o", "json"], ["zc", "policies"]):
        result = await istioctl(api, *argv)
        assert (result.code, result.out, result.err) == (1, "", 'Error: no running Istio pods in "istio-system"\n')
    certs = await istioctl(api, "zc", "certificates")
    assert certs.err == ('Error: failed retrieving: daemonsets.apps "ztunnel" not found in the "istio-system" '
                         'namespace\n')
    version = await istioctl(api, "version")
    assert (version.code, version.out) == (0, "client version: 1.24.0\n")
    assert version.err == 'Istio is not present in the cluster: no running Istio pods in namespace "istio-system"\n'


async def test_precheck(api: ApiClient):
    clean = await istioctl(api, "x", "precheck")
    assert (clean.code, clean.out) == (0, "")
    assert clean.err == ("✔ No issues found when checking the cluster. Istio is safe to install or upgrade!\n"
                         "  To get started, check out https://istio.io/latest/docs/setup/getting-started/.\n")
    assert (await istioctl(api, "experimental", "precheck", "--from-version", "1.22")).code == 0
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    await api.create({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": "zipkin", "namespace": "istio-system"}, "spec": {"ports": [{"port": 9411}]}})
    issues = await istioctl(api, "x", "precheck", "--from-version", "1.20")
    assert issues.code == 1
    assert issues.out == (
        "\x1b[33mWarning\x1b[0m [IST0169] (Service istio-system/zipkin) The configuration "
        '"meshConfig.defaultConfig.tracer" changed in release 1.21: tracing is no longer by default enabled to send '
        "to 'zipkin.istio-system.svc'; follow https://istio.io/latest/docs/tasks/observability/distributed-tracing/"
        "telemetry-api/. Or, install with `--set compatibilityVersion=1.21` to retain the old default.\n")
    assert issues.err == ("Error: Issues found when checking the cluster. Istio may not be safe to install or "
                          "upgrade.\nSee https://istio.io/v1.24/docs/reference/config/analysis for more information "
                          "about causes and resolutions.\n")
    bad = await istioctl(api, "x", "precheck", "-f", "2.0")
    assert bad.err == "Error: expected major version 1, got 2.0\n"


# -- ztunnel-config and version against stand-ins for istiod and a ztunnel ------------------------

def _json_handler(routes: dict[str, Any]) -> http.Handler:
    async def handle(request: http.Request) -> http.Response:
        if request.path in routes:
            return http.Response.json(routes[request.path], indent=2)
        return http.Response.json({"error": "not found"}, 404)
    return handle


async def _serve(nursery: trio.Nursery, routes: dict[str, Any]) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(http.serve, listeners, _json_handler(routes))
    return listeners[0].socket.getsockname()[1]


async def _istio_pod(api: ApiClient, name: str, labels: dict[str, str], image: str, node: str = "") -> None:
    spec: dict[str, Any] = {"containers": [{"name": "discovery", "image": image}]}
    if node:
        spec["nodeName"] = node
    await api.create(pod(name, "istio-system", labels, **spec))
    await run_pod(api, "istio-system", name, "127.0.0.1")


@pytest.fixture
async def mesh(api: ApiClient, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> ApiClient:
    """istio-system with a running istiod and one ztunnel pod (on node `worker`) answering on
    127.0.0.1, as their admin ports would through the pod proxy."""
    config = demo_config()
    istiod_port = await _serve(nursery, {
        "/debug/config_dump": {"version": "3", "config": config, "subscribers": []},
        "/debug/syncz": [{"proxy": "ztunnel-abcde", "connected": True}, {"proxy": "ztunnel-fghij", "connected": True}]})
    ztunnel_port = await _serve(nursery, {"/config_dump": {**config, "certificates": CERTIFICATES}})
    monkeypatch.setattr(cluster, "ISTIOD_HTTP_PORT", istiod_port)
    monkeypatch.setattr(cluster, "ZTUNNEL_ADMIN_PORT", ztunnel_port)
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    await _istio_pod(api, "istiod-5b9c8c7d4-abcde", {"app": "istiod", "istio": "pilot"}, "docker.io/istio/pilot:1.24.0")
    container = {"name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.24.0"}
    await api.create({"apiVersion": "apps/v1", "kind": "DaemonSet",
                      "metadata": {"name": "ztunnel", "namespace": "istio-system"},
                      "spec": {"selector": {"matchLabels": {"app": "ztunnel"}},
                               "template": {"metadata": {"labels": {"app": "ztunnel"}},
                                            "spec": {"containers": [container]}}}})
    await _istio_pod(api, "ztunnel-abcde", {"app": "ztunnel"}, "docker.io/istio/ztunnel:1.24.0", node="worker")
    return api


async def test_ztunnel_config_workloads_services_policies(mesh: ApiClient):
    workloads = await istioctl(mesh, "ztunnel-config", "workloads")
    assert (workloads.code, workloads.err) == (0, "")
    assert workloads.out.splitlines()[:2] == [
        "NAMESPACE    POD NAME                 ADDRESS    NODE            WAYPOINT PROTOCOL",
        "ambient-demo httpbin-5c779fc757-9dxfm 10.244.2.6 ambient-worker2 None     HBONE"]
    filtered = await istioctl(mesh, "zc", "w", "--workload-namespace", "default")
    assert filtered.out.splitlines()[1].split() == ["default", "outside", "10.244.1.9", "ambient-worker", "None",
                                                    "TCP"]
    services = await istioctl(mesh, "zc", "svc")
    assert services.out.splitlines()[1] == "ambient-demo httpbin      10.96.12.34 None     1/2"
    policies = await istioctl(mesh, "zc", "policies", "--policy-namespace", "ambient-demo")
    assert policies.out == ("NAMESPACE    POLICY NAME            ACTION SCOPE\n"
                            "ambient-demo allow-sleep-to-httpbin Allow  WorkloadSelector\n")
    as_json = await istioctl(mesh, "zc", "workload", "-o", "json", "--address", "10.244.2.6")
    assert [w["name"] for w in json.loads(as_json.out)] == ["httpbin-5c779fc757-9dxfm"]
    bad = await istioctl(mesh, "zc", "policies", "-o", "wide")
    assert bad.err == 'Error: output format "wide" not supported\n'


async def test_ztunnel_config_certificates_and_all_from_a_ztunnel(mesh: ApiClient):
    certs = await istioctl(mesh, "zc", "certificates")
    assert certs.code == 0
    assert certs.out.splitlines()[0].split() == ["CERTIFICATE", "NAME", "TYPE", "STATUS", "VALID", "CERT", "SERIAL",
                                                 "NUMBER", "NOT", "AFTER", "NOT", "BEFORE"]
    assert len(certs.out.splitlines()) == 5
    on_node = await istioctl(mesh, "zc", "certs", "--node", "worker", "-o", "json")
    assert json.loads(on_node.out)[0]["identity"] == "spiffe://cluster.local/ns/ambient-demo/sa/sleep"
    everything = await istioctl(mesh, "zc", "all")
    assert everything.out.startswith("\nNAMESPACE    POD NAME") and "\nCERTIFICATE NAME" in everything.out
    dumped = json.loads((await istioctl(mesh, "zc", "all", "-o", "json")).out)
    assert set(dumped) == {"workloads", "services", "policies", "certificates"}


async def test_ztunnel_config_pod_selection_errors(mesh: ApiClient):
    nowhere = await istioctl(mesh, "zc", "certificates", "--node", "worker2")
    assert nowhere.err == "Error: no pods found\n"
    istiod = await istioctl(mesh, "zc", "workloads", "istiod-5b9c8c7d4-abcde")
    assert istiod.err == "Error: workloads command is only supported by Ztunnel proxies: istiod-5b9c8c7d4-abcde\n"
    missing = await istioctl(mesh, "zc", "certificates", "ztunnel-zzzzz.istio-system")
    assert missing.err == ("Error: failed to execute command on ztunnel-zzzzz.istio-system Ztunnel: failure running "
                           "port forward process: failure running port forward process: failed retrieving: pods "
                           '"ztunnel-zzzzz" not found in the "istio-system" namespace\n')
    both = await istioctl(mesh, "zc", "workloads", "ztunnel-abcde", "--node", "worker")
    assert both.err == "Error: at most one of --file, --node, or pod name must be passed\n"
    wrong_ns = await istioctl(mesh, "zc", "certificates", "-n", "default")
    assert wrong_ns.err == ('Error: failed retrieving: daemonsets.apps "ztunnel" not found in the "default" '
                            'namespace\n')


async def test_ztunnel_config_from_a_file(api: ApiClient, tmp_path: Path):
    (tmp_path / "dump.json").write_text(json.dumps({**demo_config(), "certificates": CERTIFICATES}))
    from_file = await istioctl(api, "zc", "policies", "-f", "dump.json", cwd=tmp_path)
    assert (from_file.code, from_file.out.splitlines()[1].split()[1]) == (0, "allow-sleep-to-httpbin")
    (tmp_path / "bad.json").write_text("{")
    bad = await istioctl(api, "zc", "policies", "-f", "bad.json", cwd=tmp_path)
    assert bad.err.startswith("Error: error unmarshalling config dump response from ztunnel: ")


async def test_version_with_istiod(mesh: ApiClient):
    result = await istioctl(mesh, "version")
    assert (result.code, result.err) == (0, "")
    assert result.out == ("client version: 1.24.0\ncontrol plane version: 1.24.0\n"
                          "data plane version: 1.24.0 (2 proxies)\n")
    assert (await istioctl(mesh, "version", "--remote=false")).out == "client version: 1.24.0\n"


async def test_unreachable_istiod_reads_as_a_port_forward_failure(mesh: ApiClient, monkeypatch: pytest.MonkeyPatch):
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    closed = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    monkeypatch.setattr(cluster, "ISTIOD_HTTP_PORT", closed)
    result = await istioctl(mesh, "zc", "workloads")
    assert result.err == (f"Error: failure running port forward process: error trying to reach service: dial tcp "
                          f"127.0.0.1:{closed}: connect: connection refused\n")




# -- proxy-config secret against stand-ins for a waypoint's Envoy and a ztunnel ---------------------

@pytest.fixture
async def waypoint(mesh: ApiClient, nursery: trio.Nursery) -> str:
    """A waypoint pod (`waypoint-7d9f8c5b6-xk2lp` of deploy/waypoint in ambient-demo) whose admin
    port, on 127.0.0.1, serves the config dump the waypoint component builds; returns the port."""
    root = pki.RootCA.generate()
    port = await _serve(nursery, {"/config_dump": served_dump(root, root.issue(str(WAYPOINT_ID)))})
    await mesh.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ambient-demo"}})
    labels = {"gateway.networking.k8s.io/gateway-name": "waypoint"}
    container = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}
    await mesh.create({"apiVersion": "apps/v1", "kind": "DaemonSet",
                       "metadata": {"name": "waypoint", "namespace": "ambient-demo"},
                       "spec": {"selector": {"matchLabels": labels},
                                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
    await mesh.create(pod("waypoint-7d9f8c5b6-xk2lp", "ambient-demo", labels, containers=[container], nodeName="worker"))
    await run_pod(mesh, "ambient-demo", "waypoint-7d9f8c5b6-xk2lp", "127.0.0.1")
    return str(port)


async def test_proxy_config_secret_of_a_waypoint(mesh: ApiClient, waypoint: str):
    short = await istioctl(mesh, "pc", "secret", "waypoint-7d9f8c5b6-xk2lp.ambient-demo", "--proxy-admin-port", waypoint)
    assert (short.code, short.err) == (0, "")
    assert [line.split()[:3] for line in short.out.splitlines()] == [
        ["RESOURCE", "NAME", "TYPE"], ["default", "Cert", "Chain"], ["ROOTCA", "CA", "ACTIVE"]]
    as_json = await istioctl(mesh, "-n", "ambient-demo", "proxy-config", "secrets", "ds/waypoint", "-o", "json",
                             "--proxy-admin-port", waypoint)
    chain = json.loads(as_json.out)["dynamicActiveSecrets"][0]["secret"]["tlsCertificate"]["certificateChain"]
    leaf = pki.load_certificates(base64.b64decode(chain["inlineBytes"]))[0]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [str(WAYPOINT_ID)]
    as_yaml = await istioctl(mesh, "pc", "s", "waypoint-7d9f8c5b6-xk2lp", "-n", "ambient-demo", "-o", "yaml",
                             "--proxy-admin-port", waypoint)
    assert as_yaml.out.startswith("dynamicActiveSecrets:\n- lastUpdated: ")


async def test_proxy_config_secret_of_a_ztunnel_is_istioctl_1_24s_error(mesh: ApiClient):
    port = str(cluster.ZTUNNEL_ADMIN_PORT)
    as_json = await istioctl(mesh, "pc", "secret", "ds/ztunnel", "-n", "istio-system", "-o", "json",
                             "--proxy-admin-port", port)
    assert (as_json.code, as_json.out) == (1, "")
    assert as_json.err == ("Error: sidecar doesn't support secrets: config dump has no configuration type "
                           "type.googleapis.com/envoy.admin.v3.SecretsConfigDump\n")
    short = await istioctl(mesh, "pc", "secret", "ztunnel-abcde.istio-system", "--proxy-admin-port", port)
    assert (short.code, short.err) == (
        1, "Error: config dump has no configuration type type.googleapis.com/envoy.admin.v3.SecretsConfigDump\n")


async def test_proxy_config_secret_errors(mesh: ApiClient):
    port = str(cluster.ZTUNNEL_ADMIN_PORT)
    assert (await istioctl(mesh, "pc", "secret")).err == "Error: secret requires pod name or --file parameter\n"
    missing = await istioctl(mesh, "pc", "secret", "sleep-1", "--proxy-admin-port", port)
    assert missing.err == ("Error: failed to execute command on sleep-1.default sidecar: failure running port forward "
                           "process: failure running port forward process: failed retrieving: pods \"sleep-1\" not "
                           "found in the \"default\" namespace\n")
    no_workload = await istioctl(mesh, "pc", "secret", "deploy/waypoint", "-n", "istio-system")
    assert no_workload.err == ('Error: failed retrieving: deployments.apps "waypoint" not found in the "istio-system" '
                               "namespace\n")
    wide = await istioctl(mesh, "pc", "secret", "ztunnel-abcde.istio-system", "-o", "wide", "--proxy-admin-port", port)
    assert wide.err == 'Error: output format "wide" not supported\n'
