"""kubectl's error reporting: how an error becomes the text on stderr and the exit code.

Mirrors `cmdutil.CheckErr` and `StandardErrorMessage`: API errors print as
`Error from server (Reason): message`, other errors as `error: message`, several errors
(from a command that continues after a failing object) one per line.
"""

from __future__ import annotations

from typing import Any, TextIO

from components.common.apiclient import ApiError


class KubectlError(Exception):
    """An error kubectl reports itself (not a Status from the server)."""

    def __init__(self, message: str, exit_code: int = 1, *, raw: bool = False):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.raw = raw  # printed as is, without the `error: ` prefix


class SourcedApiError(ApiError):
    """An API error about an object read from a manifest, its message prefixed as kubectl does
    (`error when creating "x.yaml": ...`)."""

    def __init__(self, error: ApiError, prefix: str):
        status = dict(error.status)
        status["message"] = prefix + str(error)
        super().__init__(status)
        self.__cause__ = error.__cause__


def _connection_failed(error: ApiError) -> bool:
    return error.__cause__ is not None and error.code == 503 and not error.status.get("kind")


def _api_message(error: ApiError, address: str) -> str:
    if _connection_failed(error):
        return f"The connection to the server {address} was refused - did you specify the right host or port?"
    if error.reason == "Unauthorized":
        return f"error: You must be logged in to the server ({error})"
    if error.reason:
        return f"Error from server ({error.reason}): {error}"
    return f"Error from server: {error}"


def _invalid_message(error: ApiError) -> str | None:
    """`The Deployment "x" is invalid: field: message`, kubectl's rendering of an Invalid Status."""
    details: dict[str, Any] = error.status.get("details") or {}
    if error.reason != "Invalid" or not details:
        return None
    text = "The request is invalid"
    if details.get("kind") or details.get("name"):
        text = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
    causes = [f'{c.get("field", "")}: {c.get("message", "")}' for c in details.get("causes") or []]
    if not causes:
        return text
    if len(causes) == 1:
        return f"{text}: {causes[0]}"
    return f"{text}: \n" + "\n".join(f"* {c}" for c in causes)


def message_for(error: BaseException, address: str = "") -> str:
    """The line(s) kubectl prints for one error among several (no `error: ` prefix on plain ones)."""
    if isinstance(error, ApiError):
        return _api_message(error, address)
    if isinstance(error, KubectlError):
        return error.message
    return str(error)


def report(errors: list[BaseException], stderr: TextIO, address: str = "") -> int:
    """Print errors as kubectl's CheckErr does; returns the exit code (0 when there are none)."""
    if not errors:
        return 0
    if len(errors) == 1:
        error = errors[0]
        if isinstance(error, ApiError):
            text = _invalid_message(error) or _api_message(error, address)
        else:
            text = message_for(error)
            if not text.startswith("error: ") and not (isinstance(error, KubectlError) and error.raw):
                text = "error: " + text
        code = error.exit_code if isinstance(error, KubectlError) else 1
    else:
        text = "\n".join(message_for(e, address) for e in errors)
        code = 1
    if text:
        stderr.write(text if text.endswith("\n") else text + "\n")
    return code
