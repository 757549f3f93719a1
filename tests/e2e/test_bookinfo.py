"""Seed 001's application on its cluster (topologies/bookinfo.yaml, as cluster `e2e-bookinfo`):
from sleep, productpage's page carries the book's details and reviews; over repeated requests the
reviews come from all three versions, stars only from v2 (black) and v3 (red); once `default` is
labelled for ambient the same holds through the mesh, and productpage's calls to reviews show in
ztunnel's access log (needs root)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterator

import pytest
import trio

from harness.cluster import Cluster
from harness.pytest_plugin import REPO, cluster_up
from tests.e2e.test_ambient_l4 import eventually, pod_log, wait_for_log, ztunnel_on

pytestmark = pytest.mark.e2e
BOOKINFO_TOPOLOGY = REPO / "topologies" / "bookinfo.yaml"
TEST_TIMEOUT = 60.0
BATCH = 15
MOST_REQUESTS = 90
STAR_COLOURS = {"v1": "none", "v2": "black", "v3": "red"}
# One line per /productpage fetched from sleep: the reviews version, the stars' colour, and
# whether the details and the reviews sections are there (seed 001's `grep reviews-v.-`).
PAGES = r"""for i in $(seq 1 {n}); do
  page=$(curl -s --max-time 10 http://productpage:9080/productpage)
  version=$(printf '%s\n' "$page" | grep -o 'reviews-v.-' | head -n1 | cut -c9-10)
  colour=$(printf '%s\n' "$page" | grep -o '<font color="[a-z]*"' | head -n1 | cut -d'"' -f2)
  details=$(printf '%s\n' "$page" | grep -c 'Book Details')
  reviews=$(printf '%s\n' "$page" | grep -c 'Book Reviews')
  echo "${{version:-?}} ${{colour:-none}} $details $reviews"
done"""


@pytest.fixture(scope="module")
def bookinfo() -> Iterator[Cluster]:
    with cluster_up(BOOKINFO_TOPOLOGY, "e2e-bookinfo") as cluster:
        yield cluster


async def pages_until_every_version(cluster: Cluster) -> Counter[tuple[str, str]]:
    """(reviews version, star colour) of product pages fetched from sleep, in batches, until each
    version has served at least once (reviews' endpoints are picked at random) or MOST_REQUESTS."""
    seen: Counter[tuple[str, str]] = Counter()
    while len({version for version, _ in seen}) < 3 and sum(seen.values()) < MOST_REQUESTS:
        result = (await cluster.exec("deploy/sleep", "sh", "-c", PAGES.format(n=BATCH))).check()
        for line in result.stdout.splitlines():
            version, colour, details, reviews = line.split()
            assert (details, reviews) != ("0", "0") and details == "1" and reviews == "1", result.stdout
            seen[(version, colour)] += 1
    return seen


def assert_versions_and_stars(seen: Counter[tuple[str, str]]) -> None:
    assert {version for version, _ in seen} == {"v1", "v2", "v3"}, seen
    assert all(STAR_COLOURS[version] == colour for version, colour in seen), seen


async def enrolled(cluster: Cluster, deployment: str) -> bool:
    listeners = (await cluster.exec(f"deploy/{deployment}", "ss", "-ntl")).stdout
    return "*:15001 " in listeners and "*:15008 " in listeners


async def test_bookinfo_out_of_the_mesh_then_through_it(bookinfo: Cluster) -> None:
    cluster = bookinfo
    with trio.fail_after(TEST_TIMEOUT):
        index = (await cluster.exec("deploy/sleep", "curl", "-s", "http://productpage:9080/")).check()
        assert index.stdout.splitlines()[0] == "<!DOCTYPE html>"
        notsleep = (await cluster.exec("deploy/notsleep", "curl", "-s", "http://productpage:9080/")).check()
        assert "simple bookstore application" in notsleep.stdout
        assert_versions_and_stars(await pages_until_every_version(cluster))

        (await cluster.kubectl("label", "namespace", "default", "istio.io/dataplane-mode=ambient")).check()
        for deployment in ("sleep", "productpage-v1", "reviews-v1", "reviews-v2", "reviews-v3"):
            await eventually(lambda d=deployment: enrolled(cluster, d), 15)
        pods = (await cluster.api.list("v1", "Pod", "default", label_selector="app=productpage"))["items"]
        (productpage,) = pods
        ztunnel = await ztunnel_on(cluster, productpage["spec"]["nodeName"])
        mark = len(await pod_log(cluster, ztunnel))

        assert_versions_and_stars(await pages_until_every_version(cluster))
        line = await wait_for_log(cluster, ztunnel, "\tinfo\taccess\tconnection complete",
                                  f'src.workload="{productpage["metadata"]["name"]}"',
                                  'dst.service="reviews.default.svc.cluster.local"', 'direction="outbound"',
                                  "spiffe://cluster.local/ns/default/sa/bookinfo-reviews", after=mark)
        assert re.search(r'dst\.workload="reviews-v[123]-', line), line
