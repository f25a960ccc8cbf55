"""OpenAI error bodies, both ways (wire-formats §1.6, §4.15).

Reading (:func:`read_error`, never raises): the OpenAI SDK dispatches on the HTTP
status alone and ``error.type`` strings are not enumerated, so the kind of a
provider's error answer comes from the status; only the in-stream error (status
unknown, :func:`error_from_object`) reads the ``type``/``code``. The message
rules every format shares are in :mod:`gateway.convert.provider_errors`.

Writing (:func:`error_body`): ``{"error": {"message", "type", "param", "code"}}``
with the type and code the OpenAI API gives each kind of error. Plain gateway
endpoints (/health, /metrics, unknown paths) answer in this shape too, the most
widely understood.
"""

from __future__ import annotations

from typing import Any

from gateway.convert._common import kind_for_status
from gateway.convert.provider_errors import (
    UNREADABLE,
    ProviderError,
    decode_error_body,
    error_message,
    refuses_key,
    unreadable_error,
)
from gateway.errors import ErrorKind

__all__ = ["OVERLOADED_STATUS", "error_body", "error_from_object", "read_error"]

#: The status an OpenAI client gets for an overloaded provider.
OVERLOADED_STATUS = 503

_KIND_FROM_TYPE = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "model_not_found": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.API_ERROR,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout": ErrorKind.TIMEOUT,
}
_TYPE = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.REQUEST_TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.OVERLOADED: "server_error",
    ErrorKind.API_ERROR: "server_error",
    ErrorKind.TIMEOUT: "server_error",
}
_CODE = {
    ErrorKind.AUTHENTICATION: "invalid_api_key",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
}


def error_from_object(obj: Any, status: int | None = None) -> tuple[ErrorKind, str] | None:
    """``(kind, message)`` from a decoded ``{"error": {...}}`` object, or None."""
    if not isinstance(obj, dict) or "error" not in obj:
        return None
    err = obj["error"]
    if isinstance(err, str):
        return (kind_for_status(status) if status else ErrorKind.API_ERROR), err
    if not isinstance(err, dict):
        return None
    if status:
        kind = kind_for_status(status)
    else:
        kind = _kind_of(err.get("code")) or _kind_of(err.get("type")) or ErrorKind.API_ERROR
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else "upstream error"


def _kind_of(name: Any) -> ErrorKind | None:
    return _KIND_FROM_TYPE.get(name) if isinstance(name, str) else None


def read_error(status: int, body: bytes) -> ProviderError:
    """Read an OpenAI-format upstream error response: the kind by its status, the
    provider's own message."""
    data = decode_error_body(body)
    if data is UNREADABLE:
        return unreadable_error(status, body)
    return ProviderError(kind_for_status(status), error_message(data), refuses_key(data))


def error_body(
    kind: ErrorKind, status: int, message: str, *, code: str | None = None
) -> dict[str, Any]:
    """The JSON error body an OpenAI client expects (``status`` is in the response head)."""
    return {
        "error": {
            "message": message,
            "type": _TYPE[kind],
            "param": None,
            "code": code or _CODE.get(kind),
        }
    }
