"""gRPC status codes as the CA answers them, carried over HTTP/2 with a JSON body.

A refusal is `{"code": <gRPC code>, "status": "<code name>", "message": "<istiod's text>: <reason>"}`
with the HTTP status gRPC-gateway gives that code (Unauthenticated 401, InvalidArgument 400, ...).
"""

from __future__ import annotations

from typing import Any

OK = 0
INVALID_ARGUMENT = 3
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

NAMES = {OK: "OK", INVALID_ARGUMENT: "InvalidArgument", UNIMPLEMENTED: "Unimplemented",
         INTERNAL: "Internal", UNAVAILABLE: "Unavailable", UNAUTHENTICATED: "Unauthenticated"}
HTTP_STATUS = {OK: 200, INVALID_ARGUMENT: 400, UNIMPLEMENTED: 404, INTERNAL: 500, UNAVAILABLE: 503,
               UNAUTHENTICATED: 401}

# istiod's opaque answers; the specific reason follows after ": ".
AUTHENTICATE_FAILURE = "request authenticate failure"
IMPERSONATION_FAILURE = "request impersonation authentication failure"
CSR_SIGNING_ERROR = "CSR signing error"
UNMARSHAL_ERROR = "grpc: error unmarshalling request"


class Refusal(Exception):
    """A request the CA will not sign: a gRPC code and the message the caller sees."""

    def __init__(self, code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def status(self) -> str:
        return NAMES.get(self.code, str(self.code))

    @property
    def http_status(self) -> int:
        return self._http_status or HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "message": self.message}
