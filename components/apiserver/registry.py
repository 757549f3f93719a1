"""What create, update, patch and delete mean: decoding, defaulting, admission, validation,
system metadata, optimistic concurrency, graceful deletion and ClusterIPs.

The REST layer and the in-process controllers both write through here, so a controller's pods
get the same defaults and checks as a user's. Every method is synchronous: one call is one
atomic step of the apiserver.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from typing import Any

import trio

from components.apiserver import decoding, defaults, errors, meta, patch, resources, schemas, validation
from components.apiserver.errors import FieldError, StatusError
from components.apiserver.ipalloc import ClusterIPAllocator
from components.apiserver.store import Store
from components.common import kinds

Obj = dict[str, Any]

SYSTEM_FIELDS = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "resourceVersion", "selfLink", "managedFields")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
POD_UPDATE_FORBIDDEN = ("pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                        "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
                        "to 1 if it was previously negative)")
SERVICE_ACCOUNT_WAIT = 2.0


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}}


def _ordered(obj: Obj) -> Obj:
    """Fields in Kubernetes' order: apiVersion, kind, metadata, the body, status last."""
    head = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    body = {k: v for k, v in obj.items() if k not in head and k != "status"}
    return {**head, **body, **({"status": obj["status"]} if "status" in obj else {})}


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Registry:
    def __init__(self, store: Store, allocator: ClusterIPAllocator):
        self.store = store
        self.allocator = allocator

    # -- reading -------------------------------------------------------------------------------

    def find(self, kind: kinds.Kind, namespace: str, name: str) -> Obj | None:
        return self.store.get(resources.key(kind), namespace if kind.namespaced else "", name)

    def get(self, kind: kinds.Kind, namespace: str, name: str) -> Obj:
        found = self.find(kind, namespace, name)
        if found is None:
            raise errors.not_found(kind, name)
        return found

    def list(self, kind: kinds.Kind, namespace: str | None = None) -> list[Obj]:
        return self.store.list(resources.key(kind), namespace if kind.namespaced else None)

    # -- decoding ------------------------------------------------------------------------------

    def _decode(self, kind: kinds.Kind, body: Any, namespace: str) -> Obj:
        """A private copy of a request body, checked against the kind and placed in its namespace."""
        if not isinstance(body, dict):
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): "
                                     f"couldn't get version/kind; json parse error: expected an object")
        api_version, kind_name = body.get("apiVersion"), body.get("kind")
        if api_version and api_version.rpartition("/")[0] != kind.group:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                     f"API version ({kind.api_version})")
        if kind_name and kind_name != kind.kind:
            raise errors.bad_request(f"the kind in the data ({kind_name}) does not match the expected kind "
                                     f"({kind.kind})")
        try:
            decoding.decode(body, schemas.schema_for(resources.key(kind)))
        except decoding.DecodeError as exc:
            raise errors.bad_request(f'{kind.kind} in version "{kind.version}" cannot be handled as a '
                                     f"{kind.kind}: {exc}") from exc
        rest = {k: v for k, v in copy.deepcopy(body).items() if k not in ("apiVersion", "kind", "metadata")}
        metadata = copy.deepcopy(body.get("metadata")) or {}
        obj = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, **rest}
        if kind.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        return obj

    def _check_namespace(self, kind: kinds.Kind, namespace: str, name: str) -> None:
        ns = self.store.get(resources.key(resources.NAMESPACE), "", namespace)
        if ns is None:
            raise errors.not_found(resources.NAMESPACE, namespace)
        if meta.is_terminating(ns):
            raise errors.forbidden(kind, name, f"unable to create new content in namespace {namespace} because it "
                                               f"is being terminated")

    # -- create --------------------------------------------------------------------------------

    def create(self, kind: kinds.Kind, namespace: str, body: Any, *, dry_run: bool = False) -> Obj:
        obj = self._decode(kind, body, namespace)
        metadata = obj["metadata"]
        group_kind = resources.key(kind)
        if kind.namespaced:
            self._check_namespace(kind, namespace, metadata.get("name") or metadata.get("generateName", ""))
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = self._generate_name(kind, namespace, metadata["generateName"])
        for field in SYSTEM_FIELDS:
            metadata.pop(field, None)
        if resources.has_status(group_kind) and group_kind != resources.key(resources.NODE):
            obj.pop("status", None)
            if group_kind in defaults.INITIAL_STATUS:
                obj["status"] = copy.deepcopy(defaults.INITIAL_STATUS[group_kind])
        defaults.apply(group_kind, obj)
        if group_kind == resources.key(resources.POD):
            self._admit_pod(obj)
        self._validate(kind, obj)
        if self.find(kind, namespace, metadata["name"]) is not None:
            raise errors.already_exists(kind, metadata["name"])
        new_ip = self._service_ips(kind, obj, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = meta.now()
        metadata["generation"] = 1
        if dry_run:
            return obj
        if new_ip:
            self.allocator.reserve(new_ip)
        return self.store.put(_ordered(obj))

    def _generate_name(self, kind: kinds.Kind, namespace: str, prefix: str) -> str:
        for _ in range(16):
            name = prefix + meta.random_suffix()
            if self.find(kind, namespace, name) is None:
                return name
        raise StatusError(409, "AlreadyExists",
                          f'{errors.qualified_resource(kind)} "{prefix}" already exists, the server was not able to '
                          f"generate a unique name for the object",
                          {"name": prefix, "kind": kind.plural, "retryAfterSeconds": 1})

    def _admit_pod(self, pod: Obj) -> None:
        """The ServiceAccount admission plugin: default the account and require that it exists."""
        spec = pod["spec"]
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        namespace = pod["metadata"]["namespace"]
        if self.store.get(resources.key(resources.SERVICE_ACCOUNT), namespace, account) is None:
            raise errors.forbidden(resources.POD, pod["metadata"].get("name", ""),
                                   f'error looking up service account {namespace}/{account}: serviceaccount '
                                   f'"{account}" not found')

    async def wait_for_service_account(self, namespace: str, body: Any) -> None:
        """Give the namespace controller a moment to make a new namespace's `default` account, as
        kube-apiserver's admission plugin does, before a pod that needs it is refused."""
        spec = body.get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict) or (spec.get("serviceAccountName") or spec.get("serviceAccount")):
            return

        def waiting() -> bool:
            ns = self.store.get(resources.key(resources.NAMESPACE), "", namespace)
            return ns is not None and not meta.is_terminating(ns) and \
                self.store.get(resources.key(resources.SERVICE_ACCOUNT), namespace, "default") is None

        with trio.move_on_after(SERVICE_ACCOUNT_WAIT):
            while waiting():
                await self.store.wait_beyond(self.store.resource_version)

    def _validate(self, kind: kinds.Kind, obj: Obj, extra: list[FieldError] | None = None) -> None:
        problems = (extra or []) + validation.validate(resources.key(kind), obj)
        if problems:
            raise errors.invalid(kind, obj["metadata"].get("name", ""), problems)

    def _service_ips(self, kind: kinds.Kind, obj: Obj, old: Obj | None) -> str | None:
        """Fill in a Service's cluster IPs; returns a newly taken address to reserve on commit."""
        if resources.key(kind) != resources.key(resources.SERVICE):
            return None
        spec = obj["spec"]
        old_spec = (old or {}).get("spec") or {}
        if spec.get("type") == "ExternalName":
            for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(field, None)
            return None
        old_ip = old_spec.get("clusterIP")
        if old_ip:
            requested = spec.get("clusterIP") or old_ip
            if requested != old_ip:
                raise errors.invalid(kind, obj["metadata"]["name"], [
                    FieldError("Invalid", "spec.clusterIPs[0]", requested, "may not change once set")])
            fresh = None
        else:
            requested = spec.get("clusterIP") or ""
            if requested == "None":
                fresh = None
            elif requested:
                problem = self.allocator.check(requested)
                if problem is not None:
                    raise errors.invalid(kind, obj["metadata"]["name"], [problem])
                fresh = requested
            else:
                fresh = self.allocator.pick()
                if fresh is None:
                    raise errors.internal("failed to allocate a serviceIP: range is full")
                requested = fresh
        spec["clusterIP"] = requested
        spec["clusterIPs"] = [requested]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        return fresh

    # -- update --------------------------------------------------------------------------------

    def update(self, kind: kinds.Kind, namespace: str, name: str, body: Any, *, subresource: str = "",
               dry_run: bool = False) -> Obj:
        obj = self._decode(kind, body, namespace)
        metadata = obj["metadata"]
        if metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(f"the name of the object ({metadata['name']}) does not match the name on the "
                                     f"URL ({name})")
        metadata["name"] = name
        old = self.get(kind, namespace, name)
        if metadata.get("resourceVersion") and metadata["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        new_ip = None
        if subresource == "status":
            new = self._status_update(kind, obj, old)
        else:
            new, new_ip = self._spec_update(kind, obj, old)
        if _without_rv(new) == _without_rv(old):
            return old
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and old["metadata"].get("finalizers") \
                and not new["metadata"].get("finalizers"):
            return self._remove(kind, new)
        self._release_dropped_ip(kind, new, old)
        if new_ip:
            self.allocator.reserve(new_ip)
        return self.store.put(_ordered(new))

    def _status_update(self, kind: kinds.Kind, obj: Obj, old: Obj) -> Obj:
        """The stored object with only its status replaced."""
        new = copy.deepcopy(old)
        if obj.get("status") is None:
            new.pop("status", None)
        else:
            new["status"] = obj["status"]
        self._validate(kind, new)
        return new

    def _spec_update(self, kind: kinds.Kind, new: Obj, old: Obj) -> tuple[Obj, str | None]:
        """The body as the new object: system metadata and (for kinds with a status subresource)
        status kept from the stored one, defaults filled in, validated; plus a ClusterIP to reserve."""
        group_kind = resources.key(kind)
        metadata = new["metadata"]
        for field in SYSTEM_FIELDS:
            if field in old["metadata"]:
                metadata[field] = old["metadata"][field]
            else:
                metadata.pop(field, None)
        if resources.has_status(group_kind):
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        is_pod = group_kind == resources.key(resources.POD)
        if is_pod:
            self._carry_over_pod_fields(new, old)
        defaults.apply(group_kind, new)
        self._validate(kind, new, self._pod_update_errors(new, old) if is_pod else [])
        new_ip = self._service_ips(kind, new, old)
        if _spec_part(new) != _spec_part(old):
            metadata["generation"] = old["metadata"].get("generation", 1) + 1
        return new, new_ip

    @staticmethod
    def _carry_over_pod_fields(new: Obj, old: Obj) -> None:
        """Keep what the apiserver set and a manifest does not say (binding, service account, pull
        policies), so re-applying a pod's manifest is not a change."""
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        for field in ("nodeName", "serviceAccountName", "serviceAccount"):
            if not spec.get(field) and old_spec.get(field):
                spec[field] = old_spec[field]
        for field in ("containers", "initContainers"):
            previous = {c.get("name"): c for c in old_spec.get(field) or []}
            for container in spec.get(field) or []:
                before = previous.get(container.get("name"))
                if before is not None and "imagePullPolicy" not in container and "imagePullPolicy" in before:
                    container["imagePullPolicy"] = before["imagePullPolicy"]

    @staticmethod
    def _pod_update_errors(new: Obj, old: Obj) -> list[FieldError]:
        """A pod's spec may change only in its images, deadline, grace period and added tolerations."""
        spec, old_spec = new["spec"], old.get("spec") or {}
        comparable = copy.deepcopy(spec)
        for field in ("containers", "initContainers"):
            for mine, theirs in zip(comparable.get(field) or [], old_spec.get(field) or []):
                mine["image"] = theirs.get("image")
        for field in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
            comparable[field] = old_spec.get(field)
        old_tolerations = old_spec.get("tolerations") or []
        if all(t in (comparable.get("tolerations") or []) for t in old_tolerations):
            comparable["tolerations"] = old_spec.get("tolerations")
        cleaned = {k: v for k, v in comparable.items() if v is not None}
        if cleaned != {k: v for k, v in old_spec.items() if v is not None}:
            return [FieldError("Forbidden", "spec", detail=POD_UPDATE_FORBIDDEN)]
        return []

    def _release_dropped_ip(self, kind: kinds.Kind, new: Obj, old: Obj) -> None:
        if resources.key(kind) != resources.key(resources.SERVICE):
            return
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and old_ip != "None" and (new.get("spec") or {}).get("clusterIP") != old_ip:
            self.allocator.release(old_ip)

    def patch(self, kind: kinds.Kind, namespace: str, name: str, body: Any, content_type: str, *,
              subresource: str = "", dry_run: bool = False) -> Obj:
        old = self.get(kind, namespace, name)
        try:
            patched = patch.apply(old, body, content_type)
        except patch.PatchError as exc:
            raise StatusError(422, "Invalid", str(exc)) from exc
        return self.update(kind, namespace, name, patched, subresource=subresource, dry_run=dry_run)

    def update_status(self, obj: Obj) -> Obj:
        """Controllers' status writes."""
        kind = kinds.for_object(obj["apiVersion"], obj["kind"])
        return self.update(kind, meta.namespace_of(obj), meta.name_of(obj), obj, subresource="status")

    def bind(self, pod: Obj, node_name: str) -> Obj:
        """The scheduler's binding: set spec.nodeName and the PodScheduled condition."""
        if pod["spec"].get("nodeName"):
            raise errors.conflict(resources.POD, meta.name_of(pod),
                                  f'pod {meta.name_of(pod)} is already assigned to node "{pod["spec"]["nodeName"]}"')
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node_name
        status = new.setdefault("status", {})
        status["conditions"] = meta.set_condition(status.get("conditions") or [], {
            "type": "PodScheduled", "status": "True", "lastProbeTime": None}, meta.now())
        return self.store.put(new)

    # -- delete --------------------------------------------------------------------------------

    def delete(self, kind: kinds.Kind, namespace: str, name: str, *, grace: int | None = None,
               dry_run: bool = False) -> Obj:
        """Delete an object; pods on a node, namespaces and objects with finalizers are only marked
        (the kubelet, the namespace controller or the finalizer's owner completes the deletion)."""
        old = self.get(kind, namespace, name)
        group_kind = resources.key(kind)
        if group_kind == resources.key(resources.NAMESPACE):
            return self._delete_namespace(old, dry_run)
        if group_kind == resources.key(resources.POD):
            spec = old.get("spec") or {}
            if grace is None:
                grace = spec.get("terminationGracePeriodSeconds", 30)
            node = self.store.get(resources.key(resources.NODE), "", spec.get("nodeName") or "")
            graceful = node is not None and not meta.is_pod_terminal(old) and grace > 0
            if graceful:
                return self._mark_deleted(old, grace, dry_run)
        if old["metadata"].get("finalizers"):
            return self._mark_deleted(old, 0, dry_run)
        return old if dry_run else self._remove(kind, old)

    def _mark_deleted(self, old: Obj, grace: int, dry_run: bool) -> Obj:
        current = old["metadata"].get("deletionGracePeriodSeconds")
        if old["metadata"].get("deletionTimestamp") and (current is None or current <= grace):
            return old
        new = copy.deepcopy(old)
        moment = meta.utc_now() + datetime.timedelta(seconds=grace)
        new["metadata"]["deletionTimestamp"] = meta.rfc3339(moment)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        return new if dry_run else self.store.put(new)

    def _delete_namespace(self, old: Obj, dry_run: bool) -> Obj:
        name = meta.name_of(old)
        if name in PROTECTED_NAMESPACES:
            raise errors.forbidden(resources.NAMESPACE, name, "this namespace may not be deleted")
        if meta.is_terminating(old):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = meta.now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new.setdefault("status", {})["phase"] = "Terminating"
        return new if dry_run else self.store.put(new)

    def purge(self, kind: kinds.Kind, namespace: str, name: str) -> Obj | None:
        """Remove an object for good, whatever marks it carries (a namespace once it is empty)."""
        found = self.find(kind, namespace, name)
        return None if found is None else self._remove(kind, found)

    def _remove(self, kind: kinds.Kind, obj: Obj) -> Obj:
        gone = self.store.remove(resources.key(kind), meta.namespace_of(obj), meta.name_of(obj))
        if resources.key(kind) == resources.key(resources.SERVICE):
            ip = (gone.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self.allocator.release(ip)
        return gone

    def restore_allocations(self) -> None:
        """Mark the addresses of stored Services as taken (after loading the store)."""
        for service in self.store.list(resources.key(resources.SERVICE)):
            ip = (service.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self.allocator.reserve(ip)
