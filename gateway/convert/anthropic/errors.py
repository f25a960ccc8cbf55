"""Anthropic error bodies -> :class:`~gateway.errors.ErrorKind` (wire-formats §2.6, §4.15).

Contract: :func:`parse_error` never raises; a body that is not Anthropic's
``{"type": "error", "error": {"type", "message"}}`` falls back to the HTTP
status and the raw text. Bodies *to* clients come from
:func:`gateway.errors.error_body`.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.convert._common import error_message_of, kind_for_status
from gateway.errors import ErrorKind

__all__ = ["KIND_FROM_TYPE", "error_from_object", "parse_error"]

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


def error_from_object(obj: Any, status: int | None = None) -> tuple[ErrorKind, str] | None:
    """``(kind, message)`` from a decoded Anthropic error object, or None if it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return None
    err = obj["error"]
    kind = KIND_FROM_TYPE.get(err.get("type"))
    if kind is None:
        kind = kind_for_status(status) if status else ErrorKind.API_ERROR
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else str(
        err.get("type") or "error"
    )


def parse_error(status: int, body: bytes) -> tuple[ErrorKind, str]:
    """Read an Anthropic-format upstream error response.

    Args:
        status: the upstream HTTP status.
        body: the raw response body.

    Returns:
        ``(kind, message)``; the message is the provider's own.
    """
    try:
        found = error_from_object(json.loads(body), status)
    except (ValueError, RecursionError):
        found = None
    return found or (kind_for_status(status), error_message_of(body))
