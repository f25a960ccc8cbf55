"""What a provider failure means: retry, rotate the key, fall back, or give up. Pure.

design.md ("Routing", last table) fixes what the client finally gets; this
module turns one failed try into a :class:`Failure` carrying that final error
and the decision for the next try:

| provider answer                  | retry same target | cool key | fall back | client gets      |
|----------------------------------|-------------------|----------|-----------|------------------|
| 400, 404, 413, 422               | no                | no       | no        | same status      |
| 401, 403, Gemini API_KEY_INVALID | next key if any   | yes      | yes       | 502 (key refused)|
| 429                              | yes (next key)    | yes      | yes       | 429 + Retry-After|
| 529, 503                         | yes (back off)    | no       | yes       | overloaded       |
| 500, 502, 504, other 5xx         | yes               | no       | yes       | 502              |
| connect / TLS error              | yes               | no       | yes       | 502              |
| timeout before any byte          | yes               | no       | yes       | 504              |

What the provider said comes read by its own format (``Format.read_error``, one
reader per format: gateway/formats/<fmt>/errors.py): its message, and whether it
refused the key (Gemini's ``API_KEY_INVALID``). Provider messages are passed on
(they describe the client's request), but every configured key, whole or as the
prefix and suffix providers print (gateway.redact), and anything shaped like an
API key, is redacted first.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.redact import Redactor

if TYPE_CHECKING:
    from gateway.convert.provider_errors import ProviderError

__all__ = [
    "Failure",
    "classify_status",
    "connect_failure",
    "redact",
    "retry_after_s",
    "timeout_failure",
]

#: Longest Retry-After we honour before a retry (design.md: capped at 30 s).
MAX_RETRY_AFTER_S = 30.0
#: Longest rest a provider's Retry-After gives a rate-limited key (gateway.keys).
MAX_KEY_REST_S = 300.0

_KEYLIKE = re.compile(
    r"(sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{20,})"
)


@attrs.frozen
class Failure:
    """One failed try and what to do next.

    Attributes:
        error: what the client gets if this is the last try.
        retry: try the same target again (after ``delay_s``).
        fallback: other targets may still be tried once this one is exhausted.
        cool_key: the key used must rest before it is used again.
        delay_s: the provider's Retry-After, capped, or None for our backoff.
        rest_s: the provider's Retry-After capped at :data:`MAX_KEY_REST_S`: how long
            the key should rest (None: the transformer's ``cooldown_s`` step).
        kind: a short label for metrics and logs (``status_429``, ``connect``, ...).
    """

    error: GatewayError
    retry: bool
    fallback: bool
    cool_key: bool = False
    delay_s: float | None = None
    rest_s: float | None = None
    kind: str = "error"


def redact(text: str, secrets: Iterable[str] | Redactor) -> str:
    """``text`` with every secret, and anything shaped like an API key, replaced.

    A secret matches whole or by the prefix and suffix providers print (gateway.redact).
    """
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    return _KEYLIKE.sub("[redacted]", redactor.text(text))


def retry_after_s(
    headers: Mapping[str, str], now: float | None = None, cap: float = MAX_RETRY_AFTER_S
) -> float | None:
    """The provider's ``retry-after-ms`` / ``retry-after``, in seconds, within [0, ``cap``].

    Only what RFC 9110 §10.2.3 allows (a number of seconds, here also with a
    fraction, or an HTTP-date) counts; ``NaN``, ``inf``, ``0x10``, digits of
    other scripts and garbage are ignored (None: our own backoff applies), a
    negative number or a date in the past means "now", anything beyond the cap
    is the cap. ``now`` (epoch seconds) is for tests.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        value = _seconds(raw_ms)
        if value is not None:
            return _capped(value / 1000, cap)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    value = _seconds(raw)
    if value is None:
        value = _date_delay(raw, time.time() if now is None else now)
    return None if value is None else _capped(value, cap)


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)


def _seconds(raw: str) -> float | None:
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)  # huge numbers become inf, which the cap takes care of
    return value if not math.isnan(value) else None


def _date_delay(raw: str, now: float) -> float | None:
    if len(raw) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    try:
        return when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None


def _capped(value: float, cap: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), cap)


def classify_status(
    provider: str,
    status: int,
    said: ProviderError,
    headers: Mapping[str, str],
    secrets: Iterable[str] | Redactor = (),
) -> Failure:
    """The meaning of a non-2xx answer from ``provider``.

    Args:
        provider: the provider's name, for messages.
        status: the HTTP status it answered.
        said: its error body as its format read it (``Format.read_error``).
        headers: its response headers (``retry-after``, ``retry-after-ms``).
        secrets: what to redact from its message.
    """
    message = f"{provider}: {redact(said.message, secrets)}"
    delay = retry_after_s(headers)
    if status in (401, 403) or said.key_refused:
        return Failure(
            UpstreamError(
                f"Provider {provider!r} refused the gateway's API key for it ({status}); "
                "your own credentials are fine: the gateway operator must fix the provider key.",
                status_hint=502,
            ),
            retry=True,
            fallback=True,
            cool_key=True,
            kind=f"status_{status}",
        )
    if status == 429:
        rest = retry_after_s(headers, cap=MAX_KEY_REST_S)
        return Failure(
            UpstreamError(
                message,
                kind=ErrorKind.RATE_LIMIT,
                status_hint=429,
                retry_after_s=_whole(rest) if rest is not None else 1,
            ),
            retry=True,
            fallback=True,
            cool_key=True,
            delay_s=delay,
            rest_s=rest,
            kind="status_429",
        )
    if status in (503, 529):
        return Failure(
            UpstreamError(message, kind=ErrorKind.OVERLOADED, status_hint=503),
            retry=True,
            fallback=True,
            delay_s=delay,
            kind=f"status_{status}",
        )
    if status >= 500:
        return Failure(
            UpstreamError(message, status_hint=502),
            retry=True,
            fallback=True,
            delay_s=delay,
            kind=f"status_{status}",
        )
    if status < 400:  # a redirect (never followed) or another status no provider should send
        return Failure(
            UpstreamError(
                f"Provider {provider!r} answered HTTP {status} instead of an answer; the gateway "
                "never follows redirects: check the provider's base_url.",
                status_hint=502,
            ),
            retry=False,
            fallback=True,
            kind=f"status_{status}",
        )
    kind = {
        404: ErrorKind.NOT_FOUND,
        413: ErrorKind.REQUEST_TOO_LARGE,
    }.get(status, ErrorKind.INVALID_REQUEST)
    return Failure(
        UpstreamError(message, kind=kind, status_hint=status),
        retry=False,
        fallback=False,
        kind=f"status_{status}",
    )


def connect_failure(provider: str, detail: str) -> Failure:
    return Failure(
        UpstreamError(f"Could not reach provider {provider!r}: {detail}.", status_hint=502),
        retry=True,
        fallback=True,
        kind="connect",
    )


def timeout_failure(provider: str, which: str, seconds: float) -> Failure:
    return Failure(
        UpstreamError(
            f"Provider {provider!r} did not answer within its {which} timeout ({seconds:g} s).",
            status_hint=504,
        ),
        retry=True,
        fallback=True,
        kind=f"timeout_{which}",
    )


def _whole(seconds: float) -> int:
    return max(1, int(seconds + 0.999))
