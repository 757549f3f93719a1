"""Seed 001's certificate walkthrough on seed 002's cluster (topologies/ambient.yaml, ambient-demo
enrolled): its exact `istioctl pc secret ds/ztunnel ... | jq | base64 | openssl` pipeline, run in
bash with the cluster's kubectl and istioctl first on PATH. The seed was written for the
Envoy-based ztunnel of 2022; istioctl 1.24 reads a ztunnel's dump as Envoy's and finds no secrets
there, so the pipeline prints no certificate, as it would on a real 1.24 mesh. What 1.24 offers
instead is checked too: `ztunnel-config certificates` for the sleep identity, and `pc secret` on
a waypoint, whose Envoy shows its own certificate. One cluster for the module (needs root)."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
import trio

from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from harness.steps import run_bash
from tests.e2e.test_ambient_l4 import NS, SLEEP_ID, bounded, curl, eventually, pod, set_enrolment, ztunnel_on

pytestmark = pytest.mark.e2e
AMBIENT_TOPOLOGY = REPO / "topologies" / "ambient.yaml"
WAYPOINT_ID = "spiffe://cluster.local/ns/ambient-demo/sa/waypoint"
PIPELINE_TIMEOUT = 60.0
NO_SECRETS = "config dump has no configuration type type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
ISSUER = re.compile(r"Issuer: ?O ?= ?cluster\.local")

SEED_PIPELINE = ("istioctl pc secret ds/ztunnel -n istio-system -o json | jq -r "
                 "'.dynamicActiveSecrets[0].secret.tlsCertificate.certificateChain.inlineBytes' | base64 --decode | "
                 "openssl x509 -noout -text -in /dev/stdin")


async def _set_up(cluster: Cluster) -> None:
    await set_enrolment(cluster, True)
    # A first mesh connection: sleep's ztunnel holds sleep's certificate from then on.
    await eventually(lambda: _status(curl(cluster, "sleep", "http://httpbin:8000/status/204", "-o", "/dev/null",
                                          "-w", "%{http_code}")), 30, interval=0.2)
    (await cluster.istioctl("waypoint", "apply", "-n", NS, "--wait")).check()
    (await cluster.kubectl("rollout", "status", "deploy/waypoint", "-n", NS, "--timeout=60s")).check()


async def _status(pending) -> bool:  # type: ignore[no-untyped-def]
    return (await pending).stdout == "204"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Cluster]:
    with cluster_up(AMBIENT_TOPOLOGY, "e2e-pcsecret") as cluster:
        trio.run(_set_up, cluster)
        yield cluster


async def bash(cluster: Cluster, command: str) -> tuple[int, str]:
    code, output, _ = await run_bash(cluster.run.bin, command, PIPELINE_TIMEOUT)
    return code, output


@bounded
async def test_seeds_pipeline_finds_no_secrets_in_a_ztunnel_dump(mesh: Cluster) -> None:
    code, output = await bash(mesh, SEED_PIPELINE)
    assert code != 0, output
    assert f"Error: sidecar doesn't support secrets: {NO_SECRETS}" in output
    assert "Certificate:" not in output
    ztunnel = await ztunnel_on(mesh, (await pod(mesh, "sleep")).node)
    named = await mesh.istioctl("pc", "secret", ztunnel, "-n", "istio-system")
    assert (named.exit_code, named.stdout, named.stderr) == (1, "", f"Error: {NO_SECRETS}\n")


@bounded
async def test_ztunnel_config_shows_the_sleep_certificate_the_seed_expects(mesh: Cluster) -> None:
    ztunnel = await ztunnel_on(mesh, (await pod(mesh, "sleep")).node)
    code, output = await bash(mesh, (
        f"istioctl zc certificates {ztunnel} -n istio-system -o json | "
        f"jq -r '.[] | select(.identity == \"{SLEEP_ID}\") | .certChain[0].pem' | base64 --decode | "
        "openssl x509 -noout -text -in /dev/stdin"))
    assert code == 0, output
    assert f"URI:{SLEEP_ID}" in output
    assert ISSUER.search(output), output


@bounded
async def test_pc_secret_on_a_waypoint_prints_its_envoy_secrets(mesh: Cluster) -> None:
    code, output = await bash(mesh, SEED_PIPELINE.replace("ds/ztunnel -n istio-system", f"deploy/waypoint -n {NS}"))
    assert code == 0, output
    assert f"URI:{WAYPOINT_ID}" in output
    assert ISSUER.search(output), output
    table = (await mesh.istioctl("pc", "secrets", f"deploy/waypoint.{NS}")).check().stdout.splitlines()
    assert table[0].split() == ["RESOURCE", "NAME", "TYPE", "STATUS", "VALID", "CERT", "SERIAL", "NUMBER", "NOT",
                                "AFTER", "NOT", "BEFORE"]
    default, rootca = (line.split() for line in table[1:])
    assert (default[:5], rootca[:4]) == (["default", "Cert", "Chain", "ACTIVE", "true"], ["ROOTCA", "CA", "ACTIVE", "true"])
