"""Gemini (google.rpc.Status) error bodies, both ways (wire-formats §3.6, §4.15).

Reading (:func:`read_error`, never raises): ``{"error": {"code", "message",
"status", "details"}}``, sometimes wrapped in a list. An invalid API key is
reported by Gemini as 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``;
it is an authentication error here (§5.3 item 21), so OpenAI and Anthropic
clients see their own auth failure. The message rules every format shares are
in :mod:`gateway.convert.provider_errors`.

Writing (:func:`error_body`): the same shape; the ``status`` string comes from the
kind where Gemini has a specific one, else from the HTTP status.
"""

from __future__ import annotations

from typing import Any

from gateway.convert._common import kind_for_status
from gateway.convert.provider_errors import (
    UNREADABLE,
    ProviderError,
    decode_error_body,
    error_message,
    error_object,
    refuses_key,
    unreadable_error,
)
from gateway.errors import ErrorKind

__all__ = [
    "KIND_FROM_STATUS",
    "OVERLOADED_STATUS",
    "error_body",
    "error_from_object",
    "read_error",
]

#: The status a Gemini client gets for an overloaded provider.
OVERLOADED_STATUS = 503

KIND_FROM_STATUS = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
}
_STATUS_BY_KIND = {
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
}
_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _api_key_invalid(err: dict[str, Any]) -> bool:
    details = err.get("details")
    if not isinstance(details, list):
        return False
    return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details)


def _kind_of(err: dict[str, Any], code: int) -> ErrorKind:
    status = err.get("status")
    known = KIND_FROM_STATUS.get(status) if isinstance(status, str) else None
    return known or kind_for_status(code)


def error_from_object(obj: Any, status: int | None = None) -> tuple[ErrorKind, str, int] | None:
    """``(kind, message, code)`` from a decoded ``{"error": {...}}`` object, or None."""
    if isinstance(obj, list) and obj:  # some Gemini errors arrive wrapped in an array
        obj = obj[0]
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return None
    err = obj["error"]
    code = err.get("code") if isinstance(err.get("code"), int) else (status or 500)
    kind = ErrorKind.AUTHENTICATION if _api_key_invalid(err) else _kind_of(err, code)
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else "upstream error", code


def read_error(status: int, body: bytes) -> ProviderError:
    """Read a Gemini-format upstream error response: the kind by its ``status`` string
    (else its code), a refused key as an authentication error, the provider's own message."""
    data = decode_error_body(body)
    if data is UNREADABLE:
        return unreadable_error(status, body)
    refused = refuses_key(data)
    err = error_object(data)
    if err is None:
        kind = kind_for_status(status)
    elif refused:
        kind = ErrorKind.AUTHENTICATION
    else:
        code = err.get("code")
        kind = _kind_of(err, code if isinstance(code, int) else status)
    return ProviderError(kind, error_message(data), refused)


def error_body(
    kind: ErrorKind, status: int, message: str, *, code: str | None = None
) -> dict[str, Any]:
    """The JSON error body (google.rpc.Status) a Gemini client expects."""
    gstatus = _STATUS_BY_KIND.get(kind) or _STATUS_BY_CODE.get(status, "UNKNOWN")
    return {"error": {"code": status, "message": message, "status": gstatus}}
