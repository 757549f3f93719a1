"""`kubectl apply -f URL` on a host without internet: well-known samples come from samples/."""

from __future__ import annotations

import socket
import pytest

from harness.kubectl import mirrors
from tests.unit.test_kubectl_fake import Cluster, cluster  # noqa: F401

SLEEP_URL = "https://raw.githubusercontent.com/linsun/sample-apps/main/sleep/sleep.yaml"
BOOKINFO_URL = ("https://raw.githubusercontent.com/istio/istio/release-1.22/samples/bookinfo/platform/kube/"
                "bookinfo.yaml")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every HTTPS fetch goes through a proxy address nothing listens on: the URL is unreachable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")


def test_well_known_sample_urls_map_to_files_under_samples():
    assert mirrors.local_copy(SLEEP_URL) == mirrors.SAMPLES / "sleep" / "sleep.yaml"
    assert mirrors.local_copy(SLEEP_URL.replace("sleep.yaml", "notsleep.yaml")) == mirrors.SAMPLES / "sleep" / "notsleep.yaml"
    assert mirrors.local_copy(BOOKINFO_URL) == mirrors.SAMPLES / "bookinfo" / "platform" / "kube" / "bookinfo.yaml"
    gateway = BOOKINFO_URL.replace("release-1.22", "master").replace("platform/kube/bookinfo.yaml",
                                                                      "networking/bookinfo-gateway.yaml")
    assert mirrors.local_copy(gateway) == mirrors.SAMPLES / "bookinfo" / "networking" / "bookinfo-gateway.yaml"


def test_other_urls_and_samples_we_do_not_hold_have_no_mirror():
    assert mirrors.local_copy("https://example.com/sleep/sleep.yaml") is None
    assert mirrors.local_copy(BOOKINFO_URL.replace("bookinfo.yaml", "bookinfo-db.yaml")) is None
    assert mirrors.local_copy(BOOKINFO_URL.replace("platform/kube", "../../sleep")) is None


async def test_apply_of_an_unreachable_sample_url_uses_the_mirror_and_says_so(cluster: Cluster, offline: None):
    cluster.namespace("default")
    result = await cluster.kubectl("apply", "-f", SLEEP_URL)
    assert result.code == 0, result.err
    assert result.out == "serviceaccount/sleep created\nservice/sleep created\ndeployment.apps/sleep created\n"
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"warning: could not fetch {SLEEP_URL} (")
    assert result.err.rstrip().endswith(f"applying the local mirror {mirrors.SAMPLES / 'sleep' / 'sleep.yaml'} instead")
    assert cluster.api.stored("apps/v1", "Deployment", "default", "sleep") is not None


async def test_apply_of_an_unreachable_unknown_url_fails_as_kubectl(cluster: Cluster, offline: None):
    url = "https://raw.githubusercontent.com/someone/else/main/app.yaml"
    result = await cluster.kubectl("apply", "-f", url)
    assert result.code == 1
    assert result.err.startswith(f'error: Get "{url}": ')
    assert result.out == ""


async def test_relative_sample_paths_resolve_against_the_working_directory(cluster: Cluster):
    cluster.namespace("default")
    cluster.tmp = mirrors.SAMPLES.parent
    result = await cluster.kubectl("apply", "-f", "samples/bookinfo/networking/bookinfo-gateway.yaml")
    assert (result.code, result.err) == (0, "")
    assert result.out == ("gateway.networking.istio.io/bookinfo-gateway created\n"
                          "virtualservice.networking.istio.io/bookinfo created\n")
    istio = await cluster.kubectl("get", "gateways.networking.istio.io")
    assert istio.out.splitlines()[1].split()[0] == "bookinfo-gateway"
    assert (await cluster.kubectl("get", "gw", "bookinfo-gateway")).code == 0
    gateway_api = await cluster.kubectl("get", "gateway")
    assert "bookinfo-gateway" not in gateway_api.out + gateway_api.err

