"""The text layer of `kubectl describe`: kubectl's PrefixWriter, its multi-line labels and
annotations, the Events section, and the generic describer (every field, sorted) for kinds
without a layout of their own.

Each line is written at an indentation level with tab-separated cells and the whole text is
laid out with a tabwriter, so consecutive `Key:\\tvalue` lines align as in kubectl.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from components.common import kinds
from harness.kubectl import merge, timefmt
from harness.kubectl.tabwriter import describe_writer

MAX_ANNOTATION_LEN = 140


class Writer:
    """kubectl's PrefixWriter: two spaces per level, then the tab-separated text."""

    def __init__(self) -> None:
        self.tab = describe_writer()
        self.text = ""

    def write(self, level: int, text: str) -> None:
        self.tab.write("  " * level + text)

    def flush(self) -> None:
        self.text += self.tab.flush()

    def result(self) -> str:
        self.flush()
        return self.text


def meta_of(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def labels_multiline(w: Writer, title: str, labels: dict[str, str] | None, level: int = 0) -> None:
    w.write(level, f"{title}:\t")
    if not labels:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(sorted(labels)):
        if i:
            w.write(level, "\t")
        w.write(0, f"{key}={labels[key]}\n")


def annotations_multiline(w: Writer, title: str, annotations: dict[str, str] | None, level: int = 0) -> None:
    w.write(level, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k != merge.LAST_APPLIED)
    if not keys:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(level, "\t")
        value = annotations[key].rstrip("\n")
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for line in value.split("\n"):
                short = line if len(line) <= MAX_ANNOTATION_LEN - 2 else line[:MAX_ANNOTATION_LEN - 2] + "..."
                w.write(level, f"\t{short}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def describe_events(w: Writer, events: list[dict[str, Any]] | None, now: datetime) -> None:
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    ordered = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for event in ordered:
        first = (timefmt.since(event.get("eventTime"), now) if event.get("eventTime")
                 else timefmt.since(event.get("firstTimestamp"), now))
        series, count = event.get("series"), int(event.get("count") or 0)
        if series:
            interval = f"{timefmt.since(series.get('lastObservedTime'), now)} (x{series.get('count')} over {first})"
        elif count > 1:
            interval = f"{timefmt.since(event.get('lastTimestamp'), now)} (x{count} over {first})"
        else:
            interval = first
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        w.write(1, f"{event.get('type', '')}\t{event.get('reason', '')}\t{interval}\t{source}\t"
                   f"{(event.get('message') or '').strip()}\n")


def controller_of(obj: dict[str, Any]) -> str:
    for ref in meta_of(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


def smart_label(field: str) -> str:
    """kubectl's smartLabelFor: `apiVersion` -> `API Version`."""
    if any(not (ch.isalpha() or ch == "-") for ch in field):
        return field
    runs = re.findall(r"[a-z]+|[A-Z]+|[0-9]+|[^a-zA-Z0-9]+", field)
    for i in range(len(runs) - 1):
        if runs[i].isupper() and runs[i + 1].islower():
            runs[i + 1] = runs[i][-1] + runs[i + 1]
            runs[i] = runs[i][:-1]
    parts = [run for run in runs if run]
    acronyms = {"API", "URL", "UID", "OSB", "GUID"}
    return " ".join(p.upper() if p.upper() in acronyms else p[:1].upper() + p[1:] for p in parts if p != "_")


def _unstructured(w: Writer, level: int, content: dict[str, Any], prefix: str, skip: set[str]) -> None:
    for field in sorted(content):
        value = content[field]
        path = f"{prefix}.{field}"
        if path in skip:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(field)}:\n")
            _unstructured(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(field)}:\n")
            for child in value:
                if isinstance(child, dict):
                    _unstructured(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{_go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(field)}:\t{_go_value(value)}\n")


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def describe_generic(obj: dict[str, Any], kind: kinds.Kind, events: list[dict[str, Any]] | None,
                     now: datetime) -> str:
    w = Writer()
    meta = meta_of(obj)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    content = {"apiVersion": kind.api_version, "kind": kind.kind, **obj}
    _unstructured(w, 0, content, "", {".metadata.managedFields", ".metadata.name", ".metadata.namespace",
                                      ".metadata.labels", ".metadata.annotations"})
    describe_events(w, events, now)
    return w.result()
