"""Output formats: tables, `-o yaml|json|name|jsonpath=...|custom-columns=...`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from components.common import kinds
from harness.kubectl import jsonpath, tables
from harness.kubectl.errors import KubectlError
from harness.kubectl.tabwriter import TabWriter, table_writer

ALLOWED_FORMATS = ("custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,"
                   "jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml")


def resource_name(kind: kinds.Kind) -> str:
    """How kubectl names a kind in its messages: `pod`, `deployment.apps`."""
    return kind.kind.lower() + (f".{kind.group}" if kind.group else "")


def object_ref(kind: kinds.Kind, obj: dict[str, Any]) -> str:
    """`deployment.apps/httpbin`, as `-o name` and apply print it."""
    return f"{resource_name(kind)}/{(obj.get('metadata') or {}).get('name', '')}"


def for_output(obj: dict[str, Any], kind: kinds.Kind) -> dict[str, Any]:
    """The object as kubectl shows it: apiVersion and kind set, managedFields hidden."""
    shown = copy.deepcopy(obj)
    shown.setdefault("apiVersion", kind.api_version)
    shown.setdefault("kind", kind.kind)
    (shown.get("metadata") or {}).pop("managedFields", None)
    return shown


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


# -- YAML and JSON as kubectl writes them -------------------------------------------------------

class _GoYamlDumper(yaml.SafeDumper):
    """go-yaml's choices: strings that would read back as another type are double-quoted,
    multi-line strings use literal blocks, keys are sorted."""


_YAML11_BOOLS = {"y", "Y", "n", "N"}
_OTHER_TYPES = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "null", "timestamp", "merge")}


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    resolved = dumper.resolve(yaml.ScalarNode, value, (True, False))
    if resolved in _OTHER_TYPES or value in _YAML11_BOOLS:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_GoYamlDumper.add_representer(str, _represent_str)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                     width=80)


def to_json(obj: Any) -> str:
    return jsonpath.go_json(obj, indent=4) + "\n"


# -- the -o flag --------------------------------------------------------------------------------

@dataclass
class OutputFormat:
    """A parsed `-o` value. `kind` is "" (table), "wide", "yaml", "json", "name", "jsonpath",
    "jsonpath-as-json" or "custom-columns"."""
    kind: str = ""
    template: str = ""
    columns: list[tuple[str, jsonpath.JSONPath]] = field(default_factory=list)

    @property
    def human(self) -> bool:
        return self.kind in ("", "wide")


def parse_output(value: str) -> OutputFormat:
    name, _, template = value.partition("=")
    if name in ("", "wide", "yaml", "json", "name"):
        if template:
            raise KubectlError(f'unable to match a printer suitable for the output format "{value}", '
                               f"allowed formats are: {ALLOWED_FORMATS}")
        return OutputFormat(name)
    if name in ("jsonpath", "jsonpath-as-json"):
        if not template:
            raise KubectlError("template format specified but no template given")
        try:
            jsonpath.JSONPath(template)
        except jsonpath.JSONPathError as exc:
            raise KubectlError(str(exc)) from exc
        return OutputFormat(name, template)
    if name == "custom-columns":
        if not template:
            raise KubectlError("custom-columns format specified but no custom columns given")
        columns = []
        for spec in template.split(","):
            header, sep, path = spec.partition(":")
            if not sep:
                raise KubectlError(f'unexpected custom-columns spec: {spec}, expected <header>:<json-path-expr>')
            try:
                columns.append((header, jsonpath.JSONPath(jsonpath.relaxed(path))))
            except jsonpath.JSONPathError as exc:
                raise KubectlError(str(exc)) from exc
        return OutputFormat(name, template, columns)
    raise KubectlError(f'unable to match a printer suitable for the output format "{value}", '
                       f"allowed formats are: {ALLOWED_FORMATS}")


def render_jsonpath(fmt: OutputFormat, data: Any) -> str:
    """Run a jsonpath template; a failure keeps what was printed and reports kubectl's error."""
    template = jsonpath.JSONPath(fmt.template)
    out: list[str] = []
    try:
        for values in template.iter_results(data):
            out.append(jsonpath.format_results(values, fmt.kind == "jsonpath-as-json"))
    except jsonpath.JSONPathError as exc:
        raise PartialOutput("".join(out), KubectlError(
            f'error executing jsonpath "{fmt.template}": Error executing template: {exc}. Printing more '
            f"information for debugging the template:\n\ttemplate was:\n\t\t{fmt.template}\n"
            f"\tobject given to jsonpath engine was:\n\t\t{jsonpath.go_json(data)}\n\n")) from exc
    return "".join(out)


class PartialOutput(Exception):
    """Output produced before an error, to be printed before the error is reported."""

    def __init__(self, text: str, error: KubectlError):
        super().__init__(error.message)
        self.text = text
        self.error = error


def render_custom_columns(fmt: OutputFormat, objects: list[dict[str, Any]], no_headers: bool) -> str:
    writer = table_writer()
    if not no_headers:
        writer.write("\t".join(header for header, _ in fmt.columns) + "\n")
    for obj in objects:
        cells = []
        for _, template in fmt.columns:
            try:
                values = [v for group in template.find_results(obj) for v in group]
            except jsonpath.JSONPathError:
                values = []
            cells.append(",".join(jsonpath.go_format(v) for v in values) or "<none>")
        writer.write("\t".join(cells) + "\n")
    return writer.flush()


def render_objects(fmt: OutputFormat, shown: list[dict[str, Any]], kinds_of: list[kinds.Kind],
                   single: bool, no_headers: bool = False) -> str:
    """Non-table output of objects already passed through `for_output`. `single`: the user named
    exactly one object, so it is printed by itself rather than in a List."""
    if fmt.kind == "name":
        return "".join(object_ref(k, o) + "\n" for k, o in zip(kinds_of, shown))
    if fmt.kind == "custom-columns":
        return render_custom_columns(fmt, shown, no_headers)
    data: Any = shown[0] if single and len(shown) == 1 else as_list(shown)
    if fmt.kind == "yaml":
        return to_yaml(data)
    if fmt.kind == "json":
        return to_json(data)
    return render_jsonpath(fmt, data)


# -- tables -------------------------------------------------------------------------------------

@dataclass
class TableOptions:
    wide: bool = False
    no_headers: bool = False
    with_namespace: bool = False
    with_kind: bool = False
    show_labels: bool = False
    label_columns: list[str] = field(default_factory=list)


def _cell_text(value: str | None) -> str:
    if value is None:
        return ""
    newline = value.find("\n")
    return value if newline < 0 else value[:newline] + "..."


class TablePrinter:
    """Prints objects kind by kind as kubectl does: a header per kind, a blank line between
    kinds, and column widths remembered between calls (for watch)."""

    def __init__(self, options: TableOptions):
        self.options = options
        self.writer: TabWriter = table_writer()
        self.last_kind: kinds.Kind | None = None
        self.printed_any = False

    def _with_namespace(self, kind: kinds.Kind) -> bool:
        return self.options.with_namespace and kind.namespaced

    def headers(self, kind: kinds.Kind) -> list[str]:
        names = [c.header for c in tables.columns_for(kind, self.options.wide)]
        names += [label.split("/")[-1].upper() for label in self.options.label_columns]
        if self.options.show_labels:
            names.append("LABELS")
        if self._with_namespace(kind):
            names.insert(0, "NAMESPACE")
        return names

    def row(self, kind: kinds.Kind, obj: dict[str, Any], now: datetime) -> list[str]:
        columns = tables.columns_for(kind, self.options.wide)
        cells = [_cell_text(c.cell(obj, now)) for c in columns]
        if self.options.with_kind and columns and columns[0] is tables.NAME:
            cells[0] = f"{resource_name(kind)}/{cells[0]}"
        labels = (obj.get("metadata") or {}).get("labels") or {}
        cells += [labels.get(key, "") for key in self.options.label_columns]
        if self.options.show_labels:
            cells.append(tables.format_labels(labels))
        if self._with_namespace(kind):
            cells.insert(0, (obj.get("metadata") or {}).get("namespace", ""))
        return cells

    def print(self, kind: kinds.Kind, objects: list[dict[str, Any]], now: datetime) -> str:
        """The text for these objects (all of one kind); empty for no objects."""
        if not objects:
            return ""
        prefix = ""
        if self.last_kind is None or self.last_kind != kind:
            prefix = self.writer.flush()
            if self.last_kind is not None:
                self.writer = table_writer()
                if not self.options.no_headers and self.printed_any:
                    prefix += "\n"
            if not self.options.no_headers:
                self.writer.write("\t".join(self.headers(kind)) + "\n")
            self.last_kind = kind
        for obj in objects:
            self.writer.write("\t".join(self.row(kind, obj, now)) + "\n")
        self.printed_any = True
        return prefix + self.writer.flush()


def sort_objects(objects: list[tuple[kinds.Kind, dict[str, Any]]], sort_by: str
                 ) -> list[tuple[kinds.Kind, dict[str, Any]]]:
    """`--sort-by=<jsonpath>`: numbers numerically, other values as text, missing values first."""
    try:
        template = jsonpath.JSONPath(jsonpath.relaxed(sort_by))
    except jsonpath.JSONPathError as exc:
        raise KubectlError(str(exc)) from exc

    def key(item: tuple[kinds.Kind, dict[str, Any]]) -> tuple[int, float, str]:
        try:
            values = [v for group in template.find_results(item[1]) for v in group]
        except jsonpath.JSONPathError:
            values = []
        if not values:
            return (0, 0.0, "")
        value = values[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, float(value), "")
        return (2, 0.0, value if isinstance(value, str) else jsonpath.go_json(value))

    return sorted(objects, key=key)

