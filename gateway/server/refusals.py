"""What the server refuses on its own, and the words of every error it answers.

Two halves of one job. :func:`check_head` finds what h11 lets through but we
refuse (RFC 9112): a head over ``max_header_bytes`` that arrived whole in one
read (h11 caps only a head still incomplete: 431), both ``content-length``
and ``transfer-encoding`` (section 6.1, a smuggling attempt: 400), an HTTP
version other than 1.0 and 1.1 (505). :func:`error_reply` turns any error
the connection meets into ``(status, headers, body)``: h11 protocol errors
keep their status hint, a slow head is a 408, our ``GatewayError`` keeps its
status; the request's dialect words the body (gateway.server.dialect), and
the headers HTTP needs are added here (``allow`` on a 405, ``upgrade`` on a 426
that names a protocol, ``retry-after``, ``connection: close`` after protocol
errors, 408 and 413).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h11
import trio

from gateway.errors import (
    BadRequest,
    ErrorKind,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    UpgradeRequired,
)

if TYPE_CHECKING:
    from gateway.server.dialect import Dialect
    from gateway.server.responses import Headers

__all__ = ["ServerFault", "check_head", "error_reply", "fault_reply"]

_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


class ServerFault(GatewayError):
    """5xx the server words itself: a handler's bug (500), an unsupported HTTP version (505)."""

    kind = ErrorKind.API_ERROR
    default_status = 500


def check_head(event: h11.Request, max_header_bytes: int) -> bytes | None:
    """The client's ``x-request-id``, once the head passed the checks h11 leaves to us.

    Raises:
        h11.RemoteProtocolError: with the status to answer (431, 400, 505).
    """
    # Request line + header lines, as on the wire.
    size = len(event.method) + len(event.target) + 12
    rid = None
    for key, value in event.headers:
        size += len(key) + len(value) + 4
        if key == b"x-request-id":
            rid = value
    if size > max_header_bytes:
        raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
    framing = {key for key, _ in event.headers if key in _FRAMING_HEADERS}
    if len(framing) > 1:
        # RFC 9112 section 6.1: a request with both is a smuggling attempt or a
        # broken proxy; which length is right cannot be known. 400 and close.
        raise h11.RemoteProtocolError(
            "the request has both Content-Length and Transfer-Encoding; send one",
            error_status_hint=400,
        )
    if event.http_version not in (b"1.1", b"1.0"):
        raise h11.RemoteProtocolError(
            f"HTTP/{event.http_version.decode()} is not supported; use HTTP/1.1",
            error_status_hint=505,
        )
    return rid


def error_reply(
    exc: GatewayError | h11.RemoteProtocolError | trio.TooSlowError,
    dialect: Dialect,
    header_timeout_s: float,
) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` answering ``exc`` (a slow head took ``header_timeout_s``)."""
    close = True
    if isinstance(exc, h11.RemoteProtocolError):
        error = _protocol_error(exc)
    elif isinstance(exc, trio.TooSlowError):
        error = RequestTimeout(f"The request head took longer than {header_timeout_s:g} s.")
    else:
        error = exc
        close = exc.closes_connection
    status, headers, body = dialect.error_response(error)
    headers = list(headers)
    if isinstance(error, MethodNotAllowed):
        headers.append((b"allow", ", ".join(error.allowed).encode()))
    if isinstance(error, UpgradeRequired) and error.upgrade:
        headers.append((b"upgrade", error.upgrade.encode("ascii")))
    if error.retry_after_s is not None:
        headers.append((b"retry-after", b"%d" % error.retry_after_s))
    if close:
        headers.append((b"connection", b"close"))
    return status, headers, body


def fault_reply(request_id: str, dialect: Dialect) -> tuple[int, Headers, bytes]:
    """The 500 of a handler that failed: the request id, never the exception's text."""
    message = (
        "The gateway failed while handling this request; "
        f"the log has the details under request id {request_id}."
    )
    return dialect.error_response(ServerFault(message))


def _protocol_error(exc: h11.RemoteProtocolError) -> GatewayError:
    """A malformed request as an error its dialect can word: the status is h11's hint."""
    status = exc.error_status_hint
    if status == 431:
        message = "The request head is larger than this gateway accepts; send smaller headers."
    else:
        message = f"Malformed HTTP request: {exc}."
    if status == 413:
        return PayloadTooLarge(message)
    if status >= 500:
        return ServerFault(message, status_hint=status)
    return BadRequest(message, status_hint=status)
