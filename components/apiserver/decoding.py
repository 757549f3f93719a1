"""Strict decoding: check a JSON object against a kind's schema the way kube-apiserver's decoder
does (Go's encoding/json with unknown fields reported), with the same messages.

A wrong type is fatal (`json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas
of type int32`); otherwise every unknown field is reported (`strict decoding error: unknown field
"spec.template.spec.containers[0].imagee"`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Callable

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(QUANTITY_PATTERN)
_BASE64 = re.compile(r"[A-Za-z0-9+/]")


class DecodeError(ValueError):
    """The body cannot be decoded as its kind; the message is the part after `cannot be handled as a X: `."""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Schema(ABC):
    go_type = ""

    def type_error(self, value: Any, struct: str, path: str) -> DecodeError:
        kind = _json_kind(value)
        if kind == "number" and isinstance(self, Integer):
            kind = f"number {value}"
        return DecodeError(f"json: cannot unmarshal {kind} into Go struct field {struct}.{path} of type {self.go_type}")

    @abstractmethod
    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        """Check `value` (at `where`, with indices; at `struct`.`path` in Go's terms), collecting
        unknown fields and raising DecodeError on a wrong type."""


class Scalar(Schema):
    def __init__(self, go_type: str, accepts: Callable[[Any], bool]):
        self.go_type = go_type
        self.accepts = accepts

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is not None and not self.accepts(value):
            raise self.type_error(value, struct, path)


class Integer(Schema):
    def __init__(self, bits: int):
        self.go_type = f"int{bits}"
        self.limit = 1 << (bits - 1)

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not -self.limit <= value < self.limit:
            raise self.type_error(value, struct, path)


class Quantity(Schema):
    go_type = "resource.Quantity"

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return
        if not isinstance(value, str) or not _QUANTITY.match(value):
            raise DecodeError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")


class Base64(Schema):
    """A `[]byte` field: a base64 string in JSON."""

    go_type = "[]uint8"

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            raise self.type_error(value, struct, path)
        body = value.rstrip("=")
        for index, char in enumerate(body):
            if not _BASE64.match(char):
                raise DecodeError(f"illegal base64 data at input byte {index}")
        if len(value) % 4 or len(value) - len(body) > 2 or len(body) % 4 == 1:
            raise DecodeError(f"illegal base64 data at input byte {len(body) - len(body) % 4}")


class Struct(Schema):
    def __init__(self, name: str, fields: dict[str, Schema]):
        self.name = name
        self.go_type = f"v1.{name}"
        self.fields = fields

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self.type_error(value, struct, path)
        for key, item in value.items():
            child = self.fields.get(key)
            child_where = f"{where}.{key}" if where else key
            if child is None:
                unknown.append(child_where)
                continue
            child.walk(item, child_where, self.name, f"{path}.{key}" if path else key, unknown)


class ListOf(Schema):
    def __init__(self, item: Schema):
        self.item = item
        self.go_type = f"[]{item.go_type}"

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise self.type_error(value, struct, path)
        for index, item in enumerate(value):
            self.item.walk(item, f"{where}[{index}]", struct, path, unknown)


class MapOf(Schema):
    def __init__(self, value: Schema, go_type: str = ""):
        self.value = value
        self.go_type = go_type or f"map[string]{value.go_type}"

    def walk(self, value: Any, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self.type_error(value, struct, path)
        for key, item in value.items():
            self.value.walk(item, f"{where}.{key}", struct, path, unknown)


STRING = Scalar("string", lambda v: isinstance(v, str))
BOOL = Scalar("bool", lambda v: isinstance(v, bool))
INT32 = Integer(32)
INT64 = Integer(64)
INT_OR_STRING = Scalar("intstr.IntOrString",
                       lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
TIME = Scalar("v1.Time", lambda v: isinstance(v, str))
QUANTITY = Quantity()
BASE64 = Base64()
FREE_OBJECT = Scalar("map[string]interface {}", lambda v: isinstance(v, dict))
ANYTHING = Scalar("interface {}", lambda v: True)


def decode(obj: dict[str, Any], schema: Struct) -> None:
    """Raise DecodeError if `obj` does not decode strictly as `schema`."""
    unknown: list[str] = []
    schema.walk(obj, "", schema.name, "", unknown)
    if unknown:
        raise DecodeError("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
