"""The Istio components `istioctl install` installs, read from the built-in manifests.

Every `*.yaml` of the manifests directory is read in file-name order (a new component is a new
file, no code change). A file belongs to the component named by the first
`install.istio.io/component` annotation among its documents, e.g.

    metadata:
      annotations:
        install.istio.io/component: Istiod

The value is the name istioctl prints (`✔ Istiod installed 🧠`): "Istio core", "Istiod", "CNI",
"Ztunnel", ... Files naming the same component are one component; a file naming none is
applied and waited for without a line of its own. Components are installed in the order they
first appear, which for the ambient profile is istioctl's own dependency order (base, istiod,
CNI, ztunnel).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common import kinds
from harness import manifests
from harness.istioctl.context import ISTIO_NAMESPACE, VERSION

Obj = dict[str, Any]
COMPONENT_ANNOTATION = "install.istio.io/component"

# istioctl's user-facing component names, by the name `--set components.<name>.enabled` uses.
SPEC_NAMES = {"base": "Istio core", "pilot": "Istiod", "cni": "CNI", "ztunnel": "Ztunnel",
              "ingressGateways": "Ingress gateways", "egressGateways": "Egress gateways"}
# The `operator.istio.io/component` label istioctl puts on what it installs.
OPERATOR_NAMES = {"Istio core": "Base", "Istiod": "Pilot", "CNI": "Cni", "Ztunnel": "Ztunnel",
                  "Ingress gateways": "IngressGateways", "Egress gateways": "EgressGateways"}
ICONS = {"Istio core": "⛵️", "Istiod": "🧠", "CNI": "🪢", "Ztunnel": "🔒", "Ingress gateways": "🛬",
         "Egress gateways": "🛫"}
DEFAULT_ICON = "✅"


@dataclass
class Component:
    name: str  # "" for manifests that name no component
    objects: list[Obj] = field(default_factory=list)

    @property
    def icon(self) -> str:
        return ICONS.get(self.name, DEFAULT_ICON)


def component_of(obj: Obj) -> str:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(COMPONENT_ANNOTATION, "")


def load_components(directory: Path) -> list[Component]:
    """The components of the manifests in `directory`, in install order."""
    found: dict[str, Component] = {}
    order: list[Component] = []
    for path in sorted(directory.glob("*.yaml")):
        objects = [obj for _, _, obj in manifests.load(path)]
        name = next((component_of(o) for o in objects if component_of(o)), "")
        if name and name in found:
            found[name].objects.extend(objects)
            continue
        component = Component(name, objects)
        order.append(component)
        if name:
            found[name] = component
    return order


def prepared(obj: Obj, component: str) -> Obj:
    """The object as istioctl applies it: in istio-system unless it says otherwise, with the
    operator's owner labels (a Namespace is left as written)."""
    result = copy.deepcopy(obj)
    meta = result.setdefault("metadata", {})
    kind = kinds.served(result.get("apiVersion", ""), result.get("kind", ""))
    if kind is not None and kind.namespaced:
        meta.setdefault("namespace", ISTIO_NAMESPACE)
    if result.get("kind") == "Namespace" or not component:
        return result
    meta["labels"] = {**(meta.get("labels") or {}),
                      "operator.istio.io/component": OPERATOR_NAMES.get(component, component),
                      "operator.istio.io/managed": "Reconcile", "operator.istio.io/version": VERSION,
                      "istio.io/rev": "default"}
    return result
