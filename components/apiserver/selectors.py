"""Label and field selectors: the `labelSelector`/`fieldSelector` query syntax and the
`LabelSelector` objects of deployments, services and affinity terms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

FIELD_LABELS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.serviceAccountName")

_KEY = r"[^\s(),=!<>]+"
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|!=|=|<|>)\s*([^\s(),=!<>]*)$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")


class SelectorError(ValueError):
    """A selector that does not parse; the apiserver answers 400."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str          # =, !=, in, notin, exists, !, <, >
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.operator == ">" else number < bound


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `app=x,tier!=db,env in (a,b),!legacy` (every requirement must hold)."""
    if not text or not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        if match := _SET.match(part):
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQUALITY.match(part):
            operator = "=" if match.group(2) == "==" else match.group(2)
            requirements.append(Requirement(match.group(1), operator, (match.group(3),)))
        elif match := _EXISTS.match(part):
            requirements.append(Requirement(match.group(2), "!" if match.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: found '{part}', expected: identifier")
    return requirements


def labels_match(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


def field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def parse_field_selector(text: str | None) -> list[tuple[str, str, str]]:
    """Parse `spec.nodeName=n1,status.phase!=Failed` into (field, operator, value) triples."""
    if not text or not text.strip():
        return []
    terms = []
    for part in text.split(","):
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, operator, value = match.groups()
        if field not in FIELD_LABELS:
            raise SelectorError(f"field label not supported: {field}")
        terms.append((field, "!=" if operator == "!=" else "=", value))
    return terms


def fields_match(terms: list[tuple[str, str, str]], obj: dict[str, Any]) -> bool:
    return all((field_value(obj, f) == v) == (op == "=") for f, op, v in terms)


def object_filter(label_selector: str | None, field_selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """One predicate for a list or watch request's selectors."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector)

    def accept(obj: dict[str, Any]) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels") or {}) and fields_match(fields, obj)

    return accept


def expression_matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    """One `matchExpressions` entry (In, NotIn, Exists, DoesNotExist; Gt and Lt for node selectors)."""
    operator = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": ">", "Lt": "<"}.get(
        expression.get("operator", ""))
    if operator is None:
        return False
    return Requirement(expression.get("key", ""), operator, tuple(expression.get("values") or ())).matches(labels)


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A `LabelSelector` object: nothing matches a missing selector, everything an empty one."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(expression_matches(e, labels) for e in selector.get("matchExpressions") or [])
