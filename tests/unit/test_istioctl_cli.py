"""istioctl's command line without a cluster: finding commands as cobra does, flags, help,
cobra's errors and exit codes, `--set` settings, the manifests' components and small helpers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from components.common.apiclient import ApiClient
from harness.istioctl import IstioctlContext, run
from harness.istioctl.cli import find
from harness.istioctl.cluster import _infer_namespace
from harness.istioctl.components import load_components, prepared
from harness.istioctl.install import parse_settings
from harness.istioctl.version import image_tag
from harness.istioctl.waiting import go_duration, is_ready


async def istioctl(*argv: str, tmp: Path = Path("/nonexistent")) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = IstioctlContext(api=ApiClient(f"unix:{tmp}/no.sock"), stdin=io.StringIO(), stdout=out, stderr=err,
                          cwd=Path("/"))
    code = await run(list(argv), ctx)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, path, rest", [
    (["zc", "workloads", "-o", "json"], ["istioctl", "ztunnel-config", "workload"], ["-o", "json"]),
    (["-n", "foo", "ztunnel-config", "certs"], ["istioctl", "ztunnel-config", "certificate"], ["-n", "foo"]),
    (["--istioNamespace", "x", "x", "precheck"], ["istioctl", "experimental", "precheck"], ["--istioNamespace", "x"]),
    (["exp", "precheck", "-f", "1.20"], ["istioctl", "experimental", "precheck"], ["-f", "1.20"]),
    (["apply", "-y"], ["istioctl", "install"], ["-y"]),
    (["zc", "nope"], ["istioctl", "ztunnel-config"], ["nope"]),
    (["zc", "p", "ztunnel-abc.istio-system"], ["istioctl", "ztunnel-config", "policy"], ["ztunnel-abc.istio-system"]),
])
def test_find_walks_the_command_tree_past_flags(argv: list[str], path: list[str], rest: list[str]):
    found, remaining = find(argv)
    assert [c.name for c in found] == path
    assert remaining == rest


async def test_unknown_commands_get_cobras_error_and_exit_64():
    code, out, err = await istioctl("ztunel-config")
    assert (code, out) == (64, "")
    assert err == ('Error: unknown command "ztunel-config" for "istioctl"\n\nDid you mean this?\n\tztunnel-config\n\n'
                   "Run 'istioctl --help' for usage.\n")
    code, _, err = await istioctl("frobnicate")
    assert (code, err) == (64, 'Error: unknown command "frobnicate" for "istioctl"\n'
                               "Run 'istioctl --help' for usage.\n")


async def test_real_commands_not_emulated_say_so():
    code, _, err = await istioctl("ps", "ds/ztunnel", "-n", "istio-system")
    assert (code, err) == (1, 'Error: "istioctl proxy-status" is not emulated yet\n')
    code, _, err = await istioctl("pc", "clusters", "deploy/waypoint")
    assert (code, err) == (1, 'Error: "istioctl proxy-config cluster" is not emulated yet\n')


async def test_flag_errors_are_pflags():
    assert await istioctl("install", "--bogus") == (1, "", "Error: unknown flag: --bogus\n")
    assert await istioctl("zc", "workloads", "-o") == (1, "", "Error: flag needs an argument: 'o' in -o\n")
    code, _, err = await istioctl("install", "--readiness-timeout", "soon")
    assert (code, err) == (1, 'Error: invalid argument "soon" for "--readiness-timeout" flag: '
                              'time: invalid duration "soon"\n')
    assert await istioctl("install", "extra") == (1, "", "Error: accepts 0 arg(s), received 1\n")


async def test_help_for_groups_and_commands():
    code, out, _ = await istioctl()
    assert code == 0 and out.startswith("Istio configuration command line utility")
    assert "  ztunnel-config " in out and "  install " in out
    code, out, _ = await istioctl("x", "nothing-here")
    assert code == 0 and "Available Commands:\n  precheck " in out
    code, out, _ = await istioctl("zc", "workloads", "--help")
    assert code == 0 and "Usage:\n  istioctl ztunnel-config workload [<type>/]<name>[.<namespace>] [flags]" in out
    assert "--workload-namespace string" in out and "Aliases:\n  workload, w, workloads" in out
    code, out, _ = await istioctl("-n", "foo")
    assert code == 0 and out.startswith("Istio configuration command line utility")
    code, out, _ = await istioctl("help", "install")
    assert code == 0 and out.startswith("The install command generates an Istio install manifest")


def test_settings_keep_commas_and_know_components():
    settings = parse_settings(["profile=ambient", "components.cni.enabled=false", "values.a=b,c",
                               "components.egressGateways[0].enabled=true", "components.egressGateways[0].name=x"])
    assert settings.profile == "ambient"
    assert settings.disabled == {"CNI", "Ingress gateways"}
    assert settings.warnings == [
        "--set values.a=b,c has no effect: the emulated Istio manifests are fixed",
        "Egress gateways are not emulated yet: --set components.egressGateways[0].enabled=true installs no gateway"]
    assert parse_settings([]).profile == "default"
    assert parse_settings(["components.cni.enabled=false", "components.cni.enabled=true"]).disabled == {"Ingress gateways"}
    gateway = parse_settings(["components.ingressGateways[0].enabled=true", "components.ingressGateways[0].name=istio-ingressgateway"])
    assert (gateway.disabled, gateway.warnings) == (set(), [])
    other = parse_settings(["components.ingressGateways[1].enabled=true"])
    assert other.disabled == {"Ingress gateways"} and "only the first ingress gateway" in other.warnings[0]


def test_components_from_annotations_in_file_order(tmp_path: Path):
    (tmp_path / "20-b.yaml").write_text("kind: ConfigMap\napiVersion: v1\nmetadata: {name: b2}\n---\n"
                                        "kind: Deployment\napiVersion: apps/v1\nmetadata:\n  name: b\n"
                                        "  annotations: {install.istio.io/component: Istiod}\n")
    (tmp_path / "10-a.yaml").write_text("kind: Namespace\napiVersion: v1\nmetadata:\n  name: istio-system\n"
                                        "  annotations: {install.istio.io/component: Istio core}\n")
    (tmp_path / "30-c.yaml").write_text("kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\n")
    (tmp_path / "40-d.yaml").write_text("kind: Service\napiVersion: v1\nmetadata:\n  name: d\n"
                                        "  annotations: {install.istio.io/component: Istiod}\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    components = load_components(tmp_path)
    assert [(c.name, [o["metadata"]["name"] for o in c.objects]) for c in components] == [
        ("Istio core", ["istio-system"]), ("Istiod", ["b2", "b", "d"]), ("", ["c"])]
    assert [c.icon for c in components] == ["⛵️", "🧠", "✅"]


def test_prepared_objects_carry_the_operators_labels():
    deployment = prepared({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod",
                                                                                      "labels": {"app": "istiod"}}},
                          "Istiod")
    assert deployment["metadata"]["namespace"] == "istio-system"
    assert deployment["metadata"]["labels"] == {"app": "istiod", "operator.istio.io/component": "Pilot",
                                                "operator.istio.io/managed": "Reconcile",
                                                "operator.istio.io/version": "1.24.0", "istio.io/rev": "default"}
    namespace = prepared({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}, "Istio core")
    assert namespace["metadata"] == {"name": "istio-system"}


def test_readiness_of_workloads():
    deployment = {"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
                  "status": {"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2}}
    assert is_ready(deployment)
    assert not is_ready({**deployment, "status": {**deployment["status"], "observedGeneration": 1}})
    assert not is_ready({**deployment, "status": {**deployment["status"], "readyReplicas": 1}})
    fresh_daemonset = {"kind": "DaemonSet", "metadata": {"generation": 1}, "status": {}}
    assert not is_ready(fresh_daemonset)
    assert is_ready({**fresh_daemonset, "status": {"observedGeneration": 1, "desiredNumberScheduled": 0}})
    assert is_ready({"kind": "Namespace", "status": {"phase": "Active"}})


@pytest.mark.parametrize("seconds, text", [(300, "5m0s"), (30, "30s"), (1.5, "1.5s"), (0.3, "300ms"),
                                           (3600, "1h0m0s"), (0, "0s"), (90, "1m30s")])
def test_go_durations(seconds: float, text: str):
    assert go_duration(seconds) == text


@pytest.mark.parametrize("ref, ns, expected", [
    ("ztunnel-abc", "istio-system", ("ztunnel-abc", "istio-system")),
    ("ztunnel-abc.kube-system", "istio-system", ("ztunnel-abc", "kube-system")),
    ("daemonset/ztunnel", "istio-system", ("daemonset/ztunnel", "istio-system")),
    ("deployment.apps/istiod.other", "istio-system", ("deployment.apps/istiod", "other")),
])
def test_pod_references_carry_their_namespace(ref: str, ns: str, expected: tuple[str, str]):
    assert _infer_namespace(ref, ns) == expected


def test_control_plane_version_is_the_image_tag():
    assert image_tag({"spec": {"containers": [{"name": "x", "image": "a:1"},
                                              {"name": "discovery", "image": "docker.io/istio/pilot:1.24.0"}]}}) \
        == "1.24.0"
    assert image_tag({"spec": {"containers": [{"name": "discovery", "image": "localhost:5000/pilot"}]}}) == "unknown"
