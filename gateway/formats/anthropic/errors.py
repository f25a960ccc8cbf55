"""Anthropic error bodies, both ways (wire-formats §2.6, §4.15).

Reading (:func:`read_error`, never raises): Anthropic's
``{"type": "error", "error": {"type", "message"}}``; the error's ``type`` decides
the kind, the HTTP status where the type is unknown or the body is not
Anthropic's. The message rules every format shares are in
:mod:`gateway.convert.provider_errors`.

Writing (:func:`error_body`): the same shape, with the type Anthropic gives each
kind of error. An overloaded provider is a 529 ``overloaded_error`` to an
Anthropic client, as Anthropic itself answers overload.
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
    "KIND_FROM_TYPE",
    "OVERLOADED_STATUS",
    "error_body",
    "error_from_object",
    "read_error",
]

#: The status an Anthropic client gets for an overloaded provider.
OVERLOADED_STATUS = 529

KIND_FROM_TYPE = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "billing_error": ErrorKind.PERMISSION,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "timeout_error": ErrorKind.TIMEOUT,
    "api_error": ErrorKind.API_ERROR,
    "overloaded_error": ErrorKind.OVERLOADED,
}
_TYPE = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.TIMEOUT: "timeout_error",
}


def _kind_of(err: dict[str, Any]) -> ErrorKind | None:
    name = err.get("type")
    return KIND_FROM_TYPE.get(name) if isinstance(name, str) else None


def error_from_object(obj: Any, status: int | None = None) -> tuple[ErrorKind, str] | None:
    """``(kind, message)`` from a decoded Anthropic error object, or None if it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return None
    err = obj["error"]
    kind = _kind_of(err)
    if kind is None:
        kind = kind_for_status(status) if status else ErrorKind.API_ERROR
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else str(
        err.get("type") or "error"
    )


def read_error(status: int, body: bytes) -> ProviderError:
    """Read an Anthropic-format upstream error response: the kind by its error type
    (else its status), the provider's own message."""
    data = decode_error_body(body)
    if data is UNREADABLE:
        return unreadable_error(status, body)
    err = error_object(data)
    kind = (_kind_of(err) if err is not None else None) or kind_for_status(status)
    return ProviderError(kind, error_message(data), refuses_key(data))


def error_body(
    kind: ErrorKind, status: int, message: str, *, code: str | None = None
) -> dict[str, Any]:
    """The JSON error body an Anthropic client expects (``status`` and ``code`` are not
    part of it)."""
    return {"type": "error", "error": {"type": _TYPE[kind], "message": message}}
