"""Kubernetes' `Status` errors, with the reasons and messages kube-apiserver uses."""

from __future__ import annotations

from typing import Any

from components.common import kinds


def qualified_resource(kind: kinds.Kind) -> str:
    """`pods`, `deployments.apps`: how Kubernetes names a resource in error messages."""
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def qualified_kind(kind: kinds.Kind) -> str:
    """`Pod`, `Deployment.apps`: how Kubernetes names a kind in validation errors."""
    return f"{kind.kind}.{kind.group}" if kind.group else kind.kind


class StatusError(Exception):
    """An error the apiserver answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(kind: kinds.Kind | None, name: str, kind_field: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name} if name else {}
    if kind is not None:
        if kind.group:
            details["group"] = kind.group
        details["kind"] = kind_field or kind.plural
    return details


def not_found(kind: kinds.Kind, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{qualified_resource(kind)} "{name}" not found', _details(kind, name))


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(kind: kinds.Kind, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{qualified_resource(kind)} "{name}" already exists',
                       _details(kind, name))


def conflict(kind: kinds.Kind, name: str, detail: str = "the object has been modified; please apply your "
             "changes to the latest version and try again") -> StatusError:
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {qualified_resource(kind)} "{name}": '
                       f"{detail}", _details(kind, name))


def forbidden(kind: kinds.Kind, name: str, detail: str) -> StatusError:
    return StatusError(403, "Forbidden", f'{qualified_resource(kind)} "{name}" is forbidden: {detail}',
                       _details(kind, name))


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                       {})


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted '
                       f'media types include: application/json-patch+json, application/merge-patch+json, '
                       f'application/strategic-merge-patch+json (got "{content_type}")', {})


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large_resource_version(requested: int, current: int) -> StatusError:
    return StatusError(504, "Timeout", f"Too large resource version: {requested}, current: {current}",
                       {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                        "retryAfterSeconds": 1})


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def invalid(kind: kinds.Kind, name: str, causes: list[FieldError]) -> StatusError:
    """422 Invalid, one message for all field errors (bracketed when there are several)."""
    texts = [str(c) for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(kind, name, kind.kind)
    details["causes"] = [{"reason": c.reason, "message": c.body(), "field": c.field} for c in causes]
    return StatusError(422, "Invalid", f'{qualified_kind(kind)} "{name}" is invalid: {joined}', details)


class GoLiteral(str):
    """A value already spelled as Go prints it."""


def go_repr(value: Any) -> str:
    """A value as Go's `%#v` prints the Kubernetes types it stands for in field errors."""
    if isinstance(value, GoLiteral):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict) or value is None:
        if not value:
            return "map[string]string(nil)" if value is None else "map[string]string{}"
        return "map[string]string{" + ", ".join(f"{go_repr(k)}:{go_repr(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


class FieldError:
    """One entry of an Invalid error, formatted as `k8s.io/apimachinery/pkg/util/validation/field`."""

    REASONS = {"Required": "FieldValueRequired", "Invalid": "FieldValueInvalid", "Duplicate": "FieldValueDuplicate",
               "NotSupported": "FieldValueNotSupported", "Forbidden": "FieldValueForbidden",
               "NotFound": "FieldValueNotFound"}

    def __init__(self, type_: str, field: str, value: Any = None, detail: str = "",
                 supported: list[str] | None = None):
        self.type = type_
        self.field = field
        self.value = value
        self.detail = detail
        self.supported = supported or []

    @property
    def reason(self) -> str:
        return self.REASONS[self.type]

    def body(self) -> str:
        if self.type == "Required":
            return "Required value" + (f": {self.detail}" if self.detail else "")
        if self.type == "Forbidden":
            return "Forbidden" + (f": {self.detail}" if self.detail else "")
        if self.type == "Duplicate":
            return f"Duplicate value: {go_repr(self.value)}"
        if self.type == "NotFound":
            return f"Not found: {go_repr(self.value)}"
        if self.type == "NotSupported":
            values = ", ".join(go_repr(v) for v in self.supported)
            return f"Unsupported value: {go_repr(self.value)}: supported values: {values}"
        return f"Invalid value: {go_repr(self.value)}" + (f": {self.detail}" if self.detail else "")

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def __repr__(self) -> str:
        return f"FieldError({str(self)!r})"
