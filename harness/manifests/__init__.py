"""The manifests the harness installs: cluster add-ons, and Istio's ambient profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SYSTEM = HERE / "system.yaml"
ISTIO = HERE / "istio"
PROFILES = ("ambient",)
# Files of ISTIO a profile leaves out unless asked for (`istioctl install --set
# components.ingressGateways[0].enabled=true`, or `ingressGateway: true` in a topology).
INGRESS_GATEWAY = ISTIO / "40-ingressgateway.yaml"


def load(path: Path) -> list[tuple[Path, int, dict[str, Any]]]:
    """(file, 1-based document index, object) for every document of a manifest file."""
    return [(path, index, doc) for index, doc in enumerate(yaml.safe_load_all(path.read_text()), 1) if doc]


def istio(profile: str = "ambient", *, ingress_gateway: bool = False) -> list[tuple[Path, int, dict[str, Any]]]:
    """Istio's manifests for a profile, file by file in name order (a new component is a new file)."""
    if profile not in PROFILES:
        raise ValueError(f'unknown profile "{profile}" (known: {", ".join(PROFILES)})')
    return [entry for path in sorted(ISTIO.glob("*.yaml")) if ingress_gateway or path != INGRESS_GATEWAY
            for entry in load(path)]
