"""ztunnel's config dump as istioctl 1.24 reads and prints it.

istioctl decodes the dump into its own Go structs (istioctl/pkg/writer/ztunnel/configdump/api.go),
so `-o json|yaml` shows exactly their fields, in their order, with Go's zero values for what is
missing (`"locality": {}`, `"hostname": ""`) and without what it does not know (a policy match's
`serviceAccounts`). The summaries are text/tabwriter tables: one space between columns, five for
certificates. Each of `workloads`, `services`, `policies` and `certificates` may be a list or a
map (its values are taken), as istioctl accepts both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from harness.istioctl.errors import IstioctlError
from harness.kubectl.printers import to_yaml
from harness.kubectl.tabwriter import TabWriter

Obj = dict[str, Any]
Convert = Callable[[Any], Any]

# -- Go's encoding/json over istioctl's structs ------------------------------------------------


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _any(value: Any) -> Any:
    return value


def _strings(value: Any) -> list[str] | None:
    return [_string(v) for v in value] if isinstance(value, list) else None


def _ints(value: Any) -> list[int] | None:
    return [_int(v) for v in value] if isinstance(value, list) else None


def _map(convert: Convert, numeric_keys: bool = False) -> Convert:
    """A Go map: keys sorted as strings (uint16 keys too, as encoding/json sorts them)."""
    def converted(value: Any) -> Obj | None:
        if not isinstance(value, dict):
            return None
        keys = {str(int(k)) if numeric_keys and str(k).isdigit() else str(k): v for k, v in value.items()}
        return {k: convert(keys[k]) for k in sorted(keys)}
    return converted


def _list(convert: Convert) -> Convert:
    return lambda value: [convert(v) for v in value] if isinstance(value, list) else None


@dataclass(frozen=True)
class Field:
    name: str
    convert: Convert
    omitempty: bool = False


def _empty(value: Any) -> bool:
    return value is None or value in ("", 0, False) or value == [] or value == {}


def _struct(*fields: Field) -> Convert:
    """A Go struct: every field in declaration order, `omitempty` ones only when set. A nested
    struct (not a pointer) is never empty to encoding/json, so it is always written."""
    def converted(value: Any) -> Obj:
        source = value if isinstance(value, dict) else {}
        out: Obj = {}
        for f in fields:
            item = f.convert(source.get(f.name))
            if not (f.omitempty and _empty(item)):
                out[f.name] = item
        return out
    return converted


def _pointer(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


_GATEWAY = _pointer(_struct(Field("destination", _string)))
_LOCALITY = _struct(Field("region", _string, True), Field("zone", _string, True), Field("subzone", _string, True))
_APPLICATION_TUNNEL = _struct(Field("protocol", _string), Field("port", _pointer(_int), True))
WORKLOAD = _struct(
    Field("uid", _string), Field("workloadIps", _strings), Field("waypoint", _GATEWAY, True),
    Field("networkGateway", _GATEWAY, True), Field("protocol", _string), Field("name", _string),
    Field("namespace", _string), Field("serviceAccount", _string), Field("workloadName", _string),
    Field("workloadType", _string), Field("canonicalName", _string), Field("canonicalRevision", _string),
    Field("clusterId", _string), Field("trustDomain", _string, True), Field("locality", _LOCALITY),
    Field("node", _string), Field("network", _string, True), Field("status", _string), Field("hostname", _string),
    Field("applicationTunnel", _APPLICATION_TUNNEL), Field("authorizationPolicies", _strings, True))
_ENDPOINT = _pointer(_struct(Field("workloadUid", _string), Field("service", _string), Field("address", _string, True),
                             Field("port", _map(_int, numeric_keys=True))))
_LOAD_BALANCER = _pointer(_struct(Field("mode", _string), Field("routingPreferences", _strings),
                                  Field("healthPolicy", _string)))
SERVICE = _struct(
    Field("name", _string), Field("namespace", _string), Field("hostname", _string), Field("vips", _strings),
    Field("ports", _map(_int)), Field("loadBalancer", _LOAD_BALANCER, True), Field("waypoint", _GATEWAY, True),
    Field("endpoints", _map(_ENDPOINT)), Field("subjectAltNames", _strings, True), Field("ipFamilies", _string))
_STRING_MATCH = _list(_struct(Field("Exact", _string, True), Field("Suffix", _string, True),
                              Field("Prefix", _string, True), Field("Presence", _any, True)))
_POLICY_MATCH = _pointer(_struct(
    Field("namespaces", _STRING_MATCH, True), Field("notNamespaces", _STRING_MATCH, True),
    Field("principals", _STRING_MATCH, True), Field("notPrincipals", _STRING_MATCH, True),
    Field("sourceIps", _strings, True), Field("notSourceIps", _strings, True),
    Field("destinationIps", _strings, True), Field("notDestinationIps", _strings, True),
    Field("destinationPorts", _ints, True), Field("notDestinationPorts", _ints, True)))
POLICY = _struct(Field("name", _string), Field("namespace", _string), Field("scope", _string),
                 Field("action", _string), Field("rules", _list(_list(_list(_POLICY_MATCH)))))
_CERT = _pointer(_struct(Field("pem", _string), Field("serialNumber", _string), Field("validFrom", _string),
                         Field("expirationTime", _string)))
CERTIFICATE = _struct(Field("identity", _string), Field("state", _string), Field("certChain", _list(_CERT)))


def go_json(value: Any, indent: str = "    ") -> str:
    """json.MarshalIndent: fields in the order given, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, separators=(",", ": "))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def dump_text(items: Any, output: str) -> str:
    """What `-o json|yaml` prints for a list (fmt.Fprintln of the marshaled text)."""
    if output == "yaml":
        return to_yaml(items) + "\n"
    return go_json(items) + "\n"


# -- the dump ----------------------------------------------------------------------------------

@dataclass
class ZtunnelDump:
    """A config dump as istioctl decodes it (`Prime`)."""

    workloads: list[Obj]
    services: list[Obj]
    policies: list[Obj]
    certificates: list[Obj]
    raw: str  # the dump as received, what `all -o json` prints

    @classmethod
    def parse(cls, text: str) -> "ZtunnelDump":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise IstioctlError(f"error unmarshalling config dump response from ztunnel: {exc}") from exc
        if not isinstance(data, dict):
            raise IstioctlError("error unmarshalling config dump response from ztunnel: not a JSON object")

        def entries(key: str, convert: Convert) -> list[Obj]:
            value = data.get(key)
            values = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
            return [convert(v) for v in values]

        return cls(entries("workloads", WORKLOAD), entries("services", SERVICE), entries("policies", POLICY),
                   entries("certificates", CERTIFICATE), text)


# -- filters -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkloadFilter:
    address: str = ""
    node: str = ""
    namespace: str = ""

    def accepts(self, workload: Obj) -> bool:
        if self.namespace and workload["namespace"].lower() != self.namespace.lower():
            return False
        if self.address and not any(ip.lower() == self.address.lower() for ip in workload["workloadIps"] or []):
            return False
        return not self.node or workload["node"].lower() == self.node.lower()


def in_namespace(items: list[Obj], namespace: str) -> list[Obj]:
    """The service and policy filters: by namespace, case-insensitively."""
    return [i for i in items if not namespace or i["namespace"].lower() == namespace.lower()]


def _by_namespace_name(items: list[Obj], *extra: str) -> list[Obj]:
    return sorted(items, key=lambda i: (i["namespace"], i["name"], *(i[k] for k in extra)))


# -- summaries ---------------------------------------------------------------------------------

def table(rows: list[list[str]], padding: int = 1) -> str:
    """istioctl's text/tabwriter tables: `padding` spaces between columns."""
    writer = TabWriter(minwidth=0, padding=padding)
    for row in rows:
        writer.write("\t".join(row) + "\n")
    return writer.flush()


def _waypoint_name(waypoint: Obj | None, services: list[Obj]) -> str:
    """The service a waypoint address names (its `namespace/hostname` or one of its VIPs)."""
    if waypoint is None:
        return "None"
    destination = waypoint["destination"]
    for service in services:
        if f"{service['namespace']}/{service['hostname']}" == destination or destination in (service["vips"] or []):
            return service["name"]
    return "NA"


def workload_summary(dump: ZtunnelDump, selection: WorkloadFilter = WorkloadFilter()) -> str:
    chosen = sorted((w for w in dump.workloads if selection.accepts(w)),
                    key=lambda w: (w["namespace"] + "." + w["name"], w["node"]))
    rows = [["NAMESPACE", "POD NAME", "ADDRESS", "NODE", "WAYPOINT", "PROTOCOL"]]
    for w in chosen:
        address = ",".join(w["workloadIps"] or []) or w["hostname"]
        rows.append([w["namespace"], w["name"], address, w["node"], _waypoint_name(w.get("waypoint"), dump.services),
                     w["protocol"]])
    return table(rows)


def service_summary(dump: ZtunnelDump, namespace: str = "") -> str:
    health = {w["uid"]: w["status"] for w in dump.workloads}
    rows = [["NAMESPACE", "SERVICE NAME", "SERVICE VIP", "WAYPOINT", "ENDPOINTS"]]
    for s in _by_namespace_name(in_namespace(dump.services, namespace), "hostname"):
        endpoints = list((s["endpoints"] or {}).values())
        healthy = sum(1 for e in endpoints if e is not None and health.get(e["workloadUid"]) == "Healthy")
        vips = ",".join(vip.partition("/")[2] for vip in s["vips"] or [])
        rows.append([s["namespace"], s["name"], vips, _waypoint_name(s.get("waypoint"), dump.services),
                     f"{healthy}/{len(endpoints)}"])
    return table(rows)


def policy_summary(dump: ZtunnelDump, namespace: str = "") -> str:
    rows = [["NAMESPACE", "POLICY NAME", "ACTION", "SCOPE"]]
    rows += [[p["namespace"], p["name"], p["action"], p["scope"]]
             for p in _by_namespace_name(in_namespace(dump.policies, namespace))]
    return table(rows)


def _serial_hex(serial: str) -> str:
    """The decimal serial number as `%x` prints a big.Int (`<nil>` when it is not decimal)."""
    return format(int(serial), "x") if serial.isdigit() else "<nil>"


def _valid_now(cert: Obj, now: datetime) -> bool:
    try:
        not_before = datetime.fromisoformat(cert["validFrom"].replace("Z", "+00:00"))
        not_after = datetime.fromisoformat(cert["expirationTime"].replace("Z", "+00:00"))
    except ValueError:
        return False
    return not_before < now < not_after


def certificate_summary(dump: ZtunnelDump, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    rows = [["CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"]]
    for secret in dump.certificates:
        state = "Unavailable" if "Unavailable" in secret["state"] else secret["state"]
        chain = [c for c in secret["certChain"] or [] if c is not None]
        if not chain:
            rows.append([secret["identity"], "NA", state, "false", "NA", "NA", "NA"])
        for i, cert in enumerate(chain):
            kind = "Leaf" if i == 0 else "Root" if i == len(chain) - 1 else "Intermediate"
            rows.append([secret["identity"], kind, state, "true" if _valid_now(cert, now) else "false",
                         _serial_hex(cert["serialNumber"]), cert["expirationTime"] or "NA", cert["validFrom"] or "NA"])
    return table(rows, padding=5)


def full_summary(dump: ZtunnelDump, now: datetime | None = None) -> str:
    """`all`: each summary after a blank line."""
    return "".join("\n" + part for part in (workload_summary(dump), service_summary(dump), policy_summary(dump),
                                            certificate_summary(dump, now)))


def sorted_services(dump: ZtunnelDump, namespace: str = "") -> list[Obj]:
    return _by_namespace_name(in_namespace(dump.services, namespace), "hostname")


def sorted_policies(dump: ZtunnelDump, namespace: str = "") -> list[Obj]:
    return _by_namespace_name(in_namespace(dump.policies, namespace))
