"""Node authorization: may this node proxy (ztunnel) ask for that identity? As istiod's NodeAuthorizer.

The pods come from a list-then-watch of the apiserver (istiod's pod informer: every pod but the
Failed ones), indexed by name and by (namespace, service account, node), so a request costs two
dictionary lookups and no API call.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import trio

from components.ca.authn import Caller
from components.common.apiclient import ApiClient
from components.common.tls import Identity, IdentityError

log = logging.getLogger("serverca")

PodKey = tuple[str, str]            # (namespace, name)
SaNode = tuple[str, str, str]       # (namespace, service account, node)


class ImpersonationError(Exception):
    """Why a caller may not have the identity it asked for (istiod's node authorizer text)."""


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    service_account: str
    node: str

    @classmethod
    def of(cls, pod: dict[str, Any]) -> "PodInfo":
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        return cls(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""),
                   spec.get("serviceAccountName", ""), spec.get("nodeName", ""))

    @property
    def sa_node(self) -> SaNode | None:
        if not self.node or not self.service_account:
            return None
        return self.namespace, self.service_account, self.node


class PodIndex:
    """The pods the CA knows, kept current by `run()`; `synced` is set after the first listing."""

    def __init__(self) -> None:
        self._pods: dict[PodKey, PodInfo] = {}
        self._by_sa_node: dict[SaNode, set[PodKey]] = defaultdict(set)
        self.synced = trio.Event()

    def get(self, namespace: str, name: str) -> PodInfo | None:
        return self._pods.get((namespace, name))

    def on_node(self, namespace: str, service_account: str, node: str) -> bool:
        """Whether a pod running as `namespace/service_account` is scheduled on `node`."""
        return bool(self._by_sa_node.get((namespace, service_account, node)))

    def replace(self, pods: Iterable[dict[str, Any]]) -> None:
        self._pods.clear()
        self._by_sa_node.clear()
        for pod in pods:
            self.apply("ADDED", pod)

    def apply(self, event_type: str, pod: dict[str, Any]) -> None:
        info = PodInfo.of(pod)
        self._remove((info.namespace, info.name))
        failed = (pod.get("status") or {}).get("phase") == "Failed"
        if event_type != "DELETED" and not failed:
            self._pods[(info.namespace, info.name)] = info
            if info.sa_node is not None:
                self._by_sa_node[info.sa_node].add((info.namespace, info.name))

    def _remove(self, key: PodKey) -> None:
        old = self._pods.pop(key, None)
        if old is not None and old.sa_node is not None:
            members = self._by_sa_node.get(old.sa_node)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._by_sa_node[old.sa_node]

    async def run(self, api: ApiClient) -> None:
        async for event_type, obj in api.reflect("v1", "Pod"):
            if event_type == "SYNC":
                self.replace(obj.get("items") or [])
                self.synced.set()
            else:
                self.apply(event_type, obj)


class NodeAuthorizer:
    """istiod's `authenticateImpersonation`: trusted caller, valid identity, live caller pod, local workload."""

    def __init__(self, trusted_accounts: Iterable[tuple[str, str]], pods: PodIndex) -> None:
        self.trusted_accounts = frozenset(trusted_accounts)
        self.pods = pods

    def authorize(self, caller: Caller, requested: str) -> None:
        if (caller.pod_namespace, caller.service_account) not in self.trusted_accounts:
            raise ImpersonationError(f"caller ({caller}) is not allowed to impersonate")
        try:
            identity = Identity.parse(requested)
        except IdentityError as exc:
            raise ImpersonationError(f"failed to validate impersonated identity {requested}") from exc
        pod = self.pods.get(caller.pod_namespace, caller.pod_name)
        if pod is None:
            raise ImpersonationError(f'failed to lookup pod: pod "{caller.pod_name}" not found')
        if pod.uid != caller.pod_uid:
            raise ImpersonationError(f"pod found, but UID does not match: {pod.uid} vs {caller.pod_uid}")
        if pod.service_account != caller.service_account:
            raise ImpersonationError(f"pod found, but ServiceAccount does not match: {pod.service_account} vs "
                                     f"{caller.service_account}")
        if not self.pods.on_node(identity.namespace, identity.service_account, pod.node):
            raise ImpersonationError(f'no instances of "{identity.namespace}/{identity.service_account}" '
                                     f'found on node "{pod.node}"')
        log.debug("Node caller %s impersonated %s", caller, requested)


def parse_accounts(text: str) -> list[tuple[str, str]]:
    """`ns/sa,ns/sa` as CA_TRUSTED_NODE_ACCOUNTS spells it."""
    accounts = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        namespace, sep, account = item.partition("/")
        if not sep or not namespace or not account:
            raise ValueError(f"invalid trusted node account {item!r}: want <namespace>/<serviceaccount>")
        accounts.append((namespace, account))
    return accounts
