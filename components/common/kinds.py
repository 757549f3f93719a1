"""The resource kinds the cluster knows: REST names, scope and kubectl short names.

The apiserver serves exactly the kinds registered here (anything else is 404, as for a kind whose
CRD is not installed); its storage is generic, so registering a kind is all it takes to serve it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    api_version: str          # "v1", "apps/v1", "security.istio.io/v1"
    kind: str                 # "Pod"
    plural: str               # "pods"
    namespaced: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def collection_path(self, namespace: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection_path(namespace)}/{name}"


def plural_of(kind: str) -> str:
    """Kubernetes' default plural of a kind name (lower-cased)."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


BUILTIN_KINDS: tuple[Kind, ...] = (
    Kind("v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",)),
    Kind("v1", "Node", "nodes", namespaced=False, short_names=("no",)),
    Kind("v1", "Pod", "pods", short_names=("po",)),
    Kind("v1", "Service", "services", short_names=("svc",)),
    Kind("v1", "Endpoints", "endpoints", short_names=("ep",)),
    Kind("v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    Kind("v1", "ConfigMap", "configmaps", short_names=("cm",)),
    Kind("v1", "Secret", "secrets"),
    Kind("v1", "Event", "events", short_names=("ev",)),
    Kind("apps/v1", "Deployment", "deployments", short_names=("deploy",)),
    Kind("apps/v1", "DaemonSet", "daemonsets", short_names=("ds",)),
    Kind("apps/v1", "ReplicaSet", "replicasets", short_names=("rs",)),
    Kind("authentication.k8s.io/v1", "TokenReview", "tokenreviews", namespaced=False),
    # Istio's and the Gateway API's kinds, as if their CRDs were installed. The first version listed
    # for a kind is the one `kubectl get` shows.
    *(Kind(f"security.istio.io/{v}", "AuthorizationPolicy", "authorizationpolicies", short_names=("ap",))
      for v in ("v1", "v1beta1")),
    *(Kind(f"security.istio.io/{v}", "PeerAuthentication", "peerauthentications", short_names=("pa",))
      for v in ("v1", "v1beta1")),
    *(Kind(f"networking.istio.io/{v}", "VirtualService", "virtualservices", short_names=("vs",))
      for v in ("v1", "v1beta1", "v1alpha3")),
    *(Kind(f"networking.istio.io/{v}", "DestinationRule", "destinationrules", short_names=("dr",))
      for v in ("v1", "v1beta1", "v1alpha3")),
    *(Kind(f"gateway.networking.k8s.io/{v}", "Gateway", "gateways", short_names=("gtw",))
      for v in ("v1", "v1beta1")),
    *(Kind(f"gateway.networking.k8s.io/{v}", "HTTPRoute", "httproutes") for v in ("v1", "v1beta1")),
    # Istio's own Gateway comes after the Gateway API's, so that `gateway` keeps naming the latter
    # (as kubectl resolves it with both CRDs installed); `gateways.networking.istio.io` names it.
    *(Kind(f"networking.istio.io/{v}", "Gateway", "gateways", short_names=("gw",))
      for v in ("v1", "v1beta1", "v1alpha3")),
    *(Kind(f"gateway.networking.k8s.io/{v}", "GatewayClass", "gatewayclasses", namespaced=False,
           short_names=("gc",)) for v in ("v1", "v1beta1")),
)

_SERVED: dict[tuple[str, str], Kind] = {}      # (apiVersion, kind) -> Kind
_BY_PATH: dict[tuple[str, str], Kind] = {}     # (apiVersion, plural) -> Kind
_BY_NAME: dict[str, Kind] = {}                 # kubectl names -> preferred version


def register(kind: Kind) -> None:
    """Serve a kind at its apiVersion (the first registered version of a kind is preferred)."""
    _SERVED[(kind.api_version, kind.kind)] = kind
    _BY_PATH[(kind.api_version, kind.plural)] = kind
    for name in (kind.kind.lower(), kind.plural, *kind.short_names):
        _BY_NAME.setdefault(name, kind)


for _k in BUILTIN_KINDS:
    register(_k)


def served(api_version: str, kind: str) -> Kind | None:
    """The Kind served at this apiVersion, or None (kubectl: "no matches for kind")."""
    return _SERVED.get((api_version, kind))


def all_served() -> list[Kind]:
    """Every served kind at every version, in registration order (preferred versions first)."""
    return list(_SERVED.values())


def by_path(api_version: str, plural: str) -> Kind | None:
    """The Kind behind a REST collection, `/apis/<api_version>/.../<plural>`."""
    return _BY_PATH.get((api_version, plural))


def for_object(api_version: str, kind: str) -> Kind:
    """The Kind of a manifest's apiVersion/kind; kinds not served get Kubernetes' defaults so
    a client can still address them (the apiserver then answers 404)."""
    return _SERVED.get((api_version, kind)) or Kind(api_version, kind, plural_of(kind))


def preferred(kind: str, group: str) -> Kind | None:
    """The preferred served version of a group's kind."""
    return next((k for k in _SERVED.values() if k.kind == kind and k.group == group), None)


def storage_key(api_version: str, kind: str) -> tuple[str, str]:
    """Objects of one kind are stored once, whatever version they were written at."""
    return api_version.rpartition("/")[0], kind


def lookup(resource: str) -> Kind | None:
    """A kind by the name a kubectl user types: `pods`, `po`, `pod`, `deploy`, `Pod`,
    or `deployments.apps` / `gateways.gateway.networking.k8s.io`."""
    name, _, group = resource.partition(".")
    found = _BY_NAME.get(name.lower())
    if found is None or not group or found.group == group:
        return found
    return next((k for k in _SERVED.values() if k.group == group and name.lower() in
                 (k.kind.lower(), k.plural, *k.short_names)), None)
