"""kubectl's JSONPath dialect (k8s.io/client-go/util/jsonpath), for `-o jsonpath=`, CRD columns,
`--sort-by`, `custom-columns` and `wait --for=jsonpath=`.

A template is text with `{...}` actions: fields `.a.b` (`\\.` escapes a dot), `[i]`, slices
`[a:b:c]`, `[*]`, unions `[a,b]`, `['key']`, recursive descent `..`, filters
`[?(@.type=="Ready")]`, quoted text `{"\\n"}` and `{range ...}...{end}` blocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Union


class JSONPathError(Exception):
    pass


@dataclass
class Text:
    text: str


@dataclass
class Field:
    name: str


@dataclass
class Array:
    start: int | None
    end: int | None
    end_derived: bool
    step: int | None


@dataclass
class Filter:
    left: "Expr"
    right: "Expr"
    op: str


@dataclass
class Union_:
    branches: list["Expr"]


@dataclass
class Recursive:
    pass


@dataclass
class Wildcard:
    pass


@dataclass
class Identifier:
    name: str


@dataclass
class Literal:
    value: Any


Node = Union[Text, Field, Array, Filter, Union_, Recursive, Wildcard, Identifier, Literal]


@dataclass
class Expr:
    """The nodes of one action, evaluated left to right."""
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Range:
    expr: Expr
    body: list[Union["Range", Text, Expr]]


_TERMINATORS = set(" \t\r\n.,[]$@{}")
_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$")


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def go_unquote(text: str) -> str:
    """strconv.Unquote for "..." and '...' strings."""
    quote, body = text[0], text[1:-1]
    if len(text) < 2 or text[-1] != quote:
        raise JSONPathError(f"unquote string {text} error invalid syntax")
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
              "f": "\f", "v": "\v"}
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(body[i + 2:i + 2 + size], 16)))
            i += 2 + size
        elif nxt.isdigit():
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise JSONPathError(f"unquote string {text} error invalid syntax")
    return "".join(out)


class _Parser:
    def __init__(self, text: str):
        self.input = text
        self.pos = 0
        self.start = 0

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def consume(self) -> str:
        text = self.input[self.start:self.pos]
        self.start = self.pos
        return text

    def parse_template(self) -> list[Text | Expr]:
        items: list[Text | Expr] = []
        while self.pos < len(self.input):
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    items.append(Text(self.consume()))
                self.pos += 1
                self.consume()
                expr = Expr()
                self.parse_action(expr, in_braces=True)
                items.append(expr)
            else:
                self.pos += 1
        if self.pos > self.start:
            items.append(Text(self.consume()))
        return items

    def parse_action(self, cur: Expr, in_braces: bool) -> None:
        while True:
            rest = self.input[self.pos:]
            if in_braces and rest.startswith("}"):
                self.pos += 1
                self.consume()
                return
            if rest.startswith("[?("):
                self.parse_filter(cur)
                continue
            if rest.startswith(".."):
                if cur.nodes and isinstance(cur.nodes[-1], Recursive):
                    raise JSONPathError("invalid multiple recursive descent")
                self.pos += 2
                self.consume()
                cur.nodes.append(Recursive())
                if _is_alnum(self.peek()):
                    self.parse_field(cur)
                continue
            ch = self.next()
            if ch == "" or ch == "\n":
                if in_braces:
                    raise JSONPathError("unclosed action")
                return
            if ch in (" ", "@", "$"):
                self.consume()
            elif ch == "[":
                self.parse_array(cur)
            elif ch in ('"', "'"):
                self.parse_quote(cur, ch)
            elif ch == ".":
                self.parse_field(cur)
            elif ch in "+-" or ch.isdigit():
                self.pos -= 1
                self.parse_number(cur)
            elif _is_alnum(ch):
                self.pos -= 1
                self.parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: {ch!r}")

    def parse_field(self, cur: Expr) -> None:
        self.consume()
        while True:
            ch = self.next()
            if ch == "\\":
                self.next()
            elif ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        cur.nodes.append(Wildcard() if value == "*" else Field(value.replace("\\", "")))

    def parse_identifier(self, cur: Expr) -> None:
        while True:
            ch = self.next()
            if ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if value in ("true", "false"):
            cur.nodes.append(Literal(value == "true"))
        else:
            cur.nodes.append(Identifier(value))

    def parse_number(self, cur: Expr) -> None:
        if self.peek() in ("+", "-"):
            self.next()
        while self.peek() and (self.peek() == "." or self.peek().isdigit()):
            self.next()
        value = self.consume()
        try:
            cur.nodes.append(Literal(int(value)))
        except ValueError:
            try:
                cur.nodes.append(Literal(float(value)))
            except ValueError:
                raise JSONPathError(f"cannot parse number {value}") from None

    def parse_quote(self, cur: Expr, end: str) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if ch == "\\":
                self.next()
            elif ch == end:
                break
        cur.nodes.append(Text(go_unquote(self.consume())))

    def parse_array(self, cur: Expr) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated array")
            if ch == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            cur.nodes.append(Union_([parse_expression(f"[{p.strip()}]") for p in parts]))
            return
        key = _DICT_KEY.match(text)
        if key:
            cur.nodes.extend(parse_expression(f".{key.group(1)}").nodes)
            return
        match = _SLICE.match(text)
        if not match:
            raise JSONPathError(f"invalid array index {text}")
        first, second, third = match.groups()
        start = int(first) if first else None
        if second is None:
            end, derived = (start or 0) + 1, True
        else:
            end, derived = (int(second[1:]) if second[1:] else None), False
        step = int(third[1:]) if third and third[1:] else None
        if step is not None and step <= 0:
            raise JSONPathError("step must be > 0")
        cur.nodes.append(Array(start, end, derived, step))

    def parse_filter(self, cur: Expr) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if ch in ('"', "'"):
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")" and begin == end:
                break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(Filter(parse_expression(text), Expr(), "exists"))
        else:
            cur.nodes.append(Filter(parse_expression(match.group(1)), parse_expression(match.group(3)),
                                    match.group(2)))


def parse_expression(text: str) -> Expr:
    """One action's content (no braces), as filters and unions parse their parts."""
    expr = Expr()
    _Parser(text).parse_action(expr, in_braces=False)
    return expr


def _nest(items: list[Text | Expr]) -> list[Range | Text | Expr]:
    """Turn `{range X}` ... `{end}` into Range blocks."""
    root: list[Range | Text | Expr] = []
    stack: list[list[Range | Text | Expr]] = [root]
    for item in items:
        head = item.nodes[0] if isinstance(item, Expr) and item.nodes else None
        if isinstance(head, Identifier) and head.name == "range":
            block = Range(Expr(item.nodes[1:]), [])
            stack[-1].append(block)
            stack.append(block.body)
        elif isinstance(head, Identifier) and head.name == "end":
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            stack.pop()
        else:
            stack[-1].append(item)
    return root


class JSONPath:
    """A parsed template. `allow_missing_keys` is kubectl's setting for -o jsonpath."""

    def __init__(self, template: str, *, allow_missing_keys: bool = True):
        self.template = template
        self.allow_missing_keys = allow_missing_keys
        try:
            self.items = _nest(_Parser(template).parse_template())
        except (JSONPathError, IndexError, ValueError) as exc:
            raise JSONPathError(f"error parsing jsonpath {template}, {exc}") from exc

    def find_results(self, data: Any) -> list[list[Any]]:
        """One list of values per action (and per text), as FindResults."""
        return list(self.iter_results(data))

    def iter_results(self, data: Any) -> Iterator[list[Any]]:
        """The results one action at a time, so what precedes a failing action can be printed."""
        return self._run(self.items, [data])

    def _run(self, items: list[Range | Text | Expr], current: list[Any]) -> Iterator[list[Any]]:
        for item in items:
            if isinstance(item, Text):
                yield [item.text]
            elif isinstance(item, Range):
                for value in self._eval(current, item.expr):
                    yield from self._run(item.body, [value])
            else:
                yield self._eval(current, item)

    def execute(self, data: Any, *, as_json: bool = False) -> str:
        return "".join(format_results(values, as_json) for values in self.iter_results(data))

    # -- evaluation -------------------------------------------------------------------------------

    def _eval(self, values: list[Any], expr: Expr) -> list[Any]:
        for node in expr.nodes:
            values = self._walk(values, node)
        return values

    def _walk(self, values: list[Any], node: Node) -> list[Any]:
        if isinstance(node, Text):
            return [node.text]
        if isinstance(node, Literal):
            return [node.value for _ in values]
        if isinstance(node, Field):
            return self._field(values, node.name)
        if isinstance(node, Array):
            return self._array(values, node)
        if isinstance(node, Filter):
            return self._filter(values, node)
        if isinstance(node, Wildcard):
            return [v for value in values for v in _children(value)]
        if isinstance(node, Recursive):
            return _recursive(values)
        if isinstance(node, Union_):
            return [v for branch in node.branches for v in self._eval(values, branch)]
        if isinstance(node, Identifier):
            raise JSONPathError(f"unrecognized identifier {node.name}")
        raise JSONPathError(f"unexpected Node {node}")

    def _field(self, values: list[Any], name: str) -> list[Any]:
        if not values:
            return []
        if name == "":
            return [v for v in values if v is not None]
        found = [value[name] for value in values if isinstance(value, dict) and name in value]
        if not found and not self.allow_missing_keys:
            raise JSONPathError(f"{name} is not found")
        return found

    def _array(self, values: list[Any], node: Array) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise JSONPathError(f"{go_type(value)} is not array or slice")
            length = len(value)
            start = 0 if node.start is None else node.start
            if start < 0:
                start += length
            end = length if node.end is None else node.end
            if end < 0 or (end == 0 and node.end_derived):
                end += length
            if end == start:
                return results
            if start >= length or start < 0:
                raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
            if end > length or end < 0:
                raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
            if start > end:
                raise JSONPathError(f"starting index {start} is greater than ending index {end}")
            results.extend(v for v in value[start:end:node.step or 1] if v is not None)
        return results

    def _filter(self, values: list[Any], node: Filter) -> list[Any]:
        results = []
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{go_format(value)} is not array or slice and cannot be filtered")
            for item in value:
                try:
                    lefts = self._eval([item], node.left)
                except JSONPathError:
                    if node.op == "exists":
                        continue
                    raise
                if node.op == "exists":
                    if lefts:
                        results.append(item)
                    continue
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self._eval([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(lefts[0], rights[0], node.op):
                    results.append(item)
        return results


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _recursive(values: list[Any]) -> list[Any]:
    result: list[Any] = []
    for value in values:
        if value is None:
            continue
        children = _children(value)
        if children:
            result.append(value)
            result.extend(_recursive(children))
    return result


def _compare(left: Any, right: Any, op: str) -> bool:
    numeric = (int, float)
    same = (isinstance(left, numeric) and isinstance(right, numeric)
            and not isinstance(left, bool) and not isinstance(right, bool)) or type(left) is type(right)
    if not same:
        raise JSONPathError("incompatible types for comparison")
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, (bool, dict, list)) or left is None:
        raise JSONPathError("invalid type for comparison")
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    if op == ">=":
        return left >= right
    raise JSONPathError(f"unrecognized filter operator {op}")


def go_json(value: Any, indent: int | None = None) -> str:
    """encoding/json's output: sorted keys, HTML characters escaped."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=indent, separators=separators)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def go_format(value: Any) -> str:
    """fmt.Sprint of a decoded JSON value (`map[a:b]`, `[x y]`)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    return str(value)


def format_results(values: list[Any], as_json: bool = False) -> str:
    """PrintResults: scalars as text, maps and lists as JSON, values separated by spaces."""
    if as_json:
        return go_json(values, indent=4) + "\n"
    parts = []
    for value in values:
        if isinstance(value, (dict, list)):
            parts.append(go_json(value))
        else:
            parts.append(go_format(value))
    return " ".join(parts)


def relaxed(expression: str) -> str:
    """RelaxedJSONPathExpression: `a.b`, `.a.b`, `{a.b}` and `{.a.b}` all mean `{.a.b}`."""
    if not expression:
        return expression
    match = re.match(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$", expression)
    if match is None:
        raise JSONPathError("unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
                            "'{name1.name2}' or '{.name1.name2}'")
    return "{." + (match.group(1) or match.group(2)) + "}"
