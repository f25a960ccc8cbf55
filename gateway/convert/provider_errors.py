"""Reading a provider's error body: what every format's error reader shares. Pure.

Each wire format reads its providers' error answers with its own ``read_error``
(``gateway/formats/<fmt>/errors.py``), which decides the :class:`ErrorKind` by
that format's rules. What the readers share lives here, so that one body always
gives one message whichever format reads it:

- decoding never raises: invalid UTF-8 or JSON, nesting past the recursion
  limit, an HTML page or an empty body all come out as the body's text (cut
  short), never as an exception (the body is the provider's, not trusted);
- an answer wrapped in a list (Gemini does that) is read as its first element;
- the message is the error's ``message``, else its ``type``, else the error (or
  the whole body) as compact JSON, at most :data:`MAX_MESSAGE_CHARS` characters;
- a refused key is reported by Google's endpoints as 400 ``INVALID_ARGUMENT`` with
  an ``ErrorInfo`` reason ``API_KEY_INVALID`` in whichever format they speak (the
  Gemini API, and its OpenAI-compatible endpoint too), so every reader looks for
  that reason (``ProviderError.key_refused``; design.md's failure table).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from gateway.convert._common import error_message_of, kind_for_status
from gateway.errors import ErrorKind

__all__ = [
    "MAX_MESSAGE_CHARS",
    "ProviderError",
    "decode_error_body",
    "error_message",
    "error_object",
    "refuses_key",
    "unreadable_error",
]

#: Longest provider message passed on.
MAX_MESSAGE_CHARS = 2000
#: Details of an error object looked at for a reason (a hostile body may list millions).
_MAX_DETAILS = 100


@attrs.frozen
class ProviderError:
    """What a provider's error answer said.

    Attributes:
        kind: what went wrong, by the format's rules (the HTTP status where the
            body says nothing better).
        message: the provider's own words (they describe the client's request).
        key_refused: the provider refused the key it was sent (Google's
            ``API_KEY_INVALID``, which comes with a 400).
    """

    kind: ErrorKind
    message: str
    key_refused: bool = False


class _Unreadable:
    """The decoded value of a body that is not JSON (a marker)."""


UNREADABLE: Any = _Unreadable()


def decode_error_body(body: bytes) -> Any:
    """The decoded body (a list's first element), or :data:`UNREADABLE`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return UNREADABLE
    if isinstance(data, list) and data:  # Gemini sometimes wraps its error in a list
        return data[0]
    return data


def unreadable_error(status: int, body: bytes) -> ProviderError:
    """A body that is not JSON: the status says what went wrong, its text is the message."""
    return ProviderError(kind_for_status(status), error_message_of(body, MAX_MESSAGE_CHARS))


def error_object(data: Any) -> dict[str, Any] | None:
    """The ``error`` object of a decoded body, if it has one."""
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def error_message(data: Any) -> str:
    """The message of a decoded error body (never empty), cut to :data:`MAX_MESSAGE_CHARS`."""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = _text(err.get("message")) or _text(err.get("type")) or _compact(err)
    else:
        message = _text(err) or _compact(data)
    return message[:MAX_MESSAGE_CHARS]


def refuses_key(data: Any) -> bool:
    """Whether a decoded error body gives the reason ``API_KEY_INVALID`` (the last reason
    among its first details wins)."""
    err = error_object(data)
    details = err.get("details") if err is not None else None
    reason = None
    if isinstance(details, list):
        for detail in details[:_MAX_DETAILS]:
            if isinstance(detail, dict) and _text(detail.get("reason")):
                reason = detail["reason"]
    return reason == "API_KEY_INVALID"


def _text(value: Any) -> str:
    return value if isinstance(value, str) and value.strip() else ""


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)[: MAX_MESSAGE_CHARS * 2]
    except (ValueError, RecursionError):  # pragma: no cover (json.loads gave it)
        return "no error message"
