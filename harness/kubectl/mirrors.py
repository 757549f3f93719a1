"""Local copies of the well-known sample manifests that walkthroughs apply by URL.

Seed 001 applies `https://raw.githubusercontent.com/linsun/sample-apps/main/sleep/sleep.yaml` and
Istio's docs apply `https://raw.githubusercontent.com/istio/istio/<branch>/samples/bookinfo/...`.
When such a URL cannot be fetched (a host without internet), `kubectl apply -f URL` uses the copy
under `samples/` instead and says so; any other URL fails as kubectl fails.
"""

from __future__ import annotations

import re
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent.parent / "samples"

_RAW = r"https://raw\.githubusercontent\.com/"
_BRANCH = r"(?:refs/heads/)?[^/]+"
# (URL pattern, path under samples/ built from its groups)
_MIRRORED = (
    (re.compile(_RAW + r"linsun/sample-apps/" + _BRANCH + r"/sleep/(sleep|notsleep)\.yaml"), r"sleep/\1.yaml"),
    (re.compile(_RAW + r"istio/istio/" + _BRANCH + r"/samples/(bookinfo/[A-Za-z0-9_./-]+\.yaml)"), r"\1"),
)


def local_copy(url: str, samples: Path = SAMPLES) -> Path | None:
    """The mirrored copy of `url` under `samples`, if the URL is a well-known sample we hold."""
    for pattern, template in _MIRRORED:
        match = pattern.fullmatch(url)
        if match is None:
            continue
        relative = match.expand(template)
        if ".." in Path(relative).parts:
            return None
        path = samples / relative
        return path if path.is_file() else None
    return None
