"""Gemini (google.rpc.Status) error bodies -> :class:`~gateway.errors.ErrorKind` (§3.6, §4.15).

Contract: :func:`parse_error` never raises. An invalid API key is reported by
Gemini as 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``; it is an
authentication error here (§5.3 item 21), so OpenAI and Anthropic clients see
their own auth failure. Bodies *to* clients come from
:func:`gateway.errors.error_body`.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.convert._common import error_message_of, kind_for_status
from gateway.errors import ErrorKind

__all__ = ["KIND_FROM_STATUS", "error_from_object", "parse_error"]

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


def _api_key_invalid(err: dict[str, Any]) -> bool:
    for detail in err.get("details") or ():
        if isinstance(detail, dict) and detail.get("reason") == "API_KEY_INVALID":
            return True
    return False


def error_from_object(obj: Any, status: int | None = None) -> tuple[ErrorKind, str, int] | None:
    """``(kind, message, code)`` from a decoded ``{"error": {...}}`` object, or None."""
    if isinstance(obj, list) and obj:  # some Gemini errors arrive wrapped in an array
        obj = obj[0]
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return None
    err = obj["error"]
    code = err.get("code") if isinstance(err.get("code"), int) else (status or 500)
    if _api_key_invalid(err):
        kind = ErrorKind.AUTHENTICATION
    else:
        kind = KIND_FROM_STATUS.get(err.get("status")) or kind_for_status(code)
    message = err.get("message")
    return kind, message if isinstance(message, str) and message else "upstream error", code


def parse_error(status: int, body: bytes) -> tuple[ErrorKind, str]:
    """Read a Gemini-format upstream error response: ``(kind, provider's message)``."""
    try:
        found = error_from_object(json.loads(body), status)
    except (ValueError, RecursionError):
        found = None
    if found is None:
        return kind_for_status(status), error_message_of(body)
    return found[0], found[1]
