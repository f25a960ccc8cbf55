"""OpenAI error bodies -> :class:`~gateway.errors.ErrorKind` (wire-formats §1.6, §4.15).

Contract: :func:`parse_error` never raises. The OpenAI SDK dispatches on the
HTTP status alone and ``error.type`` strings are not enumerated, so the kind
comes from the status; only the in-stream error (status unknown) reads the
``type``/``code``. Bodies *to* clients come from :func:`gateway.errors.error_body`.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.convert._common import error_message_of, kind_for_status
from gateway.errors import ErrorKind

__all__ = ["error_from_object", "parse_error"]

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
        kind = _KIND_FROM_TYPE.get(err.get("code")) or _KIND_FROM_TYPE.get(
            err.get("type"), ErrorKind.API_ERROR
        )
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else "upstream error"


def parse_error(status: int, body: bytes) -> tuple[ErrorKind, str]:
    """Read an OpenAI-format upstream error response: ``(kind, provider's message)``."""
    try:
        found = error_from_object(json.loads(body), status)
    except (ValueError, RecursionError):
        found = None
    return found or (kind_for_status(status), error_message_of(body))
