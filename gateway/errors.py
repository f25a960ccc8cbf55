"""The gateway's exception tree.

Theory of operation: everything the gateway refuses is a :class:`GatewayError`
carrying an *error kind* (what went wrong, independent of format) and a
``status_hint``. The edge that talks to a client renders it in the client's
own format (``FORMATS[fmt].error_response(exc)``, gateway.formats), so an OpenAI
SDK sees an OpenAI error, an Anthropic SDK an Anthropic one and google-genai a
google.rpc.Status.

    GatewayError (abstract)
    ├── BadRequest            400 invalid_request
    ├── Unauthorized          401 authentication
    ├── Forbidden             403 permission
    ├── NotFound              404 not_found
    │   └── ModelNotFound     404 not_found, OpenAI code model_not_found
    ├── MethodNotAllowed      405 invalid_request
    ├── RequestTimeout        408 invalid_request  (connection closes)
    ├── PayloadTooLarge       413 request_too_large (connection closes)
    ├── UpgradeRequired       426 invalid_request  (WebSocket where HTTP is spoken, or the reverse)
    ├── RateLimited           429 rate_limit (carries retry_after_s)
    └── UpstreamError         502/503/504 api_error / overloaded / timeout

The error bodies of each format (wire-formats.md §1.6, §2.6, §3.6, §4.15) are in
its folder: ``gateway/formats/<fmt>/errors.py``.
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = [
    "BadRequest",
    "ErrorKind",
    "Forbidden",
    "GatewayError",
    "MethodNotAllowed",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "Unauthorized",
    "UpgradeRequired",
    "UpstreamError",
    "echo",
]

#: Most characters of a client's value repeated in an error message.
ECHO_CHARS = 80
#: Most characters of any error message: whatever a message quotes (a client's value,
#: a provider's words), an error body stays small.
MAX_MESSAGE_CHARS = 4096


def echo(value: str, limit: int = ECHO_CHARS, *, quote: bool = True) -> str:
    """``value`` for an error message: control characters escaped, cut to ``limit``.

    A client's value repeated whole would let a 100 KB model name make a 100 KB
    error (and log line); ``repr`` escapes newlines and the like. ``quote=False``
    leaves off repr's quotes (for a path in a sentence).
    """
    cut = value[:limit]
    text = repr(cut) if quote else repr(cut)[1:-1]
    if len(value) > limit:
        text += f"... ({len(value)} characters)"
    return text


class ErrorKind(enum.Enum):
    """What went wrong, independent of any wire format."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    API_ERROR = "api_error"
    TIMEOUT = "timeout"


class GatewayError(Exception):
    """Base of every error the gateway answers a client with.

    Args:
        message: what happened and what to fix; shown to the client, so it
            must never hold a secret.
        status_hint: the HTTP status to answer with (per class by default).
        code: an OpenAI-style ``error.code`` where one is customary.
        retry_after_s: whole seconds for a ``Retry-After`` header, if any.
    """

    kind: ErrorKind = ErrorKind.API_ERROR
    default_status: ClassVar[int] = 500
    closes_connection: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_hint: int | None = None,
        code: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        if type(self) is GatewayError:
            raise TypeError("GatewayError is abstract; raise one of its subclasses")
        if len(message) > MAX_MESSAGE_CHARS:
            tail = f"... ({len(message)} characters)"
            message = message[: MAX_MESSAGE_CHARS - len(tail)] + tail
        super().__init__(message)
        self.message = message
        self.status_hint = status_hint if status_hint is not None else self.default_status
        self.code = code
        self.retry_after_s = retry_after_s


class BadRequest(GatewayError):
    kind = ErrorKind.INVALID_REQUEST
    default_status = 400


class Unauthorized(GatewayError):
    kind = ErrorKind.AUTHENTICATION
    default_status = 401


class Forbidden(GatewayError):
    kind = ErrorKind.PERMISSION
    default_status = 403


class NotFound(GatewayError):
    kind = ErrorKind.NOT_FOUND
    default_status = 404


class ModelNotFound(NotFound):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model {echo(model)} does not exist or is not served by this gateway; "
            "GET /v1/models lists the models you can use.",
            code="model_not_found",
        )
        self.model = model


class MethodNotAllowed(GatewayError):
    kind = ErrorKind.INVALID_REQUEST
    default_status = 405

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class RequestTimeout(GatewayError):
    kind = ErrorKind.INVALID_REQUEST
    default_status = 408
    closes_connection = True


class PayloadTooLarge(GatewayError):
    kind = ErrorKind.REQUEST_TOO_LARGE
    default_status = 413
    closes_connection = True


class UpgradeRequired(GatewayError):
    """426 (RFC 9110 section 15.5.22): the endpoint speaks another protocol than the request.

    ``upgrade`` is the protocol to name in the ``Upgrade`` header (``websocket`` on a
    WebSocket endpoint asked with plain HTTP), or None on an HTTP-only endpoint asked
    for a WebSocket.
    """

    kind = ErrorKind.INVALID_REQUEST
    default_status = 426

    def __init__(self, message: str, *, upgrade: str | None = None) -> None:
        super().__init__(message)
        self.upgrade = upgrade


class RateLimited(GatewayError):
    kind = ErrorKind.RATE_LIMIT
    default_status = 429


class UpstreamError(GatewayError):
    """A provider failed or could not be reached; ``kind`` is set per instance."""

    default_status = 502

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.API_ERROR,
        status_hint: int | None = None,
        code: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message, status_hint=status_hint, code=code, retry_after_s=retry_after_s)
        self.kind = kind
