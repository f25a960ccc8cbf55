"""The audit log's line: one JSON object per request, made from its records. Pure.

The access log (gateway.logs) is for operating the gateway; the audit log
answers "who called what, and what did it cost" (issue 10): one JSON line per
request, refused ones included, written to its own file (gateway.audit_log).
The line is made from the server's :class:`~gateway.server.exchange.HttpRecord`
and the app's record in its ``facts`` (gateway.record's ``CallRecord``), and
always has the same keys, in this order (JSON ``null`` for what is not known):

- ``time``: when the request's first byte arrived, ISO 8601 in UTC with
  milliseconds (``2025-05-01T12:00:00.123Z``);
- ``request_id``;
- every field of the app's record, by its own name: ``client_format``,
  ``key_name`` (null while the gateway is open), ``model`` (as asked),
  ``provider`` (the last one tried), ``upstream_model``, ``target``,
  ``fallback``, ``retries``, ``tokens_in``, ``tokens_out``, ``tokens_cached``,
  ``tokens_reasoning`` (gateway.record says what each means), and whatever
  fields the record gains, with no change here. A request that reached no
  client endpoint (a 404 path, a malformed head) has them all null;
- ``method``, ``path`` (credentials in the query redacted, as in the access log);
- ``status`` (499 when no response went out), ``latency_ms`` (first byte in to
  last byte out), ``ttfb_ms`` (to our response head; null without one),
  ``bytes_sent``, ``client`` (the peer's address), ``client_gone``.

Message content never appears, unless the operator sets ``logging.log_bodies``:
then ``request_body`` (the first :data:`BODY_CHARS` characters, as text; null
for none), ``response_body`` (a whole answer's; null for a stream, which is not
kept) and ``bodies_truncated``. Every line passes the caller's redactor (provider
and client keys), a body before it is cut (so a key across the cut is caught
whole) and the whole line after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from gateway.logs import redact_target
from gateway.record import CallRecord

if TYPE_CHECKING:
    from gateway.server.exchange import HttpRecord

__all__ = ["BODY_CHARS", "audit_line"]

#: Characters of a body an audit line keeps (64 KiB of ASCII JSON).
BODY_CHARS = 64 * 1024
#: Bytes read past the cut before redacting: a secret that straddles the cut is in
#: the window whole, so the redactor replaces it before the cut can leave half of it.
REDACT_MARGIN = 4096

#: The field names of each record class seen in ``HttpRecord.facts``.
_FACT_FIELDS: dict[type, tuple[str, ...]] = {}


def _fact_fields(cls: type) -> tuple[str, ...]:
    names = _FACT_FIELDS.get(cls)
    if names is None:
        names = _FACT_FIELDS[cls] = tuple(f.name for f in attrs.fields(cls))
    return names


def _iso(t: float) -> str:
    stamp = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _body(data: bytes, redact: Callable[[str], str]) -> tuple[str, bool]:
    """The first BODY_CHARS characters of ``data`` as text, redacted; and whether cut."""
    window = data[: BODY_CHARS + REDACT_MARGIN]
    text = redact(window.decode("utf-8", "replace"))
    cut = len(text) > BODY_CHARS or len(data) > len(window)
    return text[:BODY_CHARS], cut


def audit_line(
    record: HttpRecord, *, now: float, redact: Callable[[str], str], bodies: bool = False
) -> str:
    """The audit line of a finished request (no newline).

    Args:
        record: the request's record, as the server's observer gets it.
        now: the wall-clock time (``time.time()``) the record was made.
        redact: removes secrets from text (every provider and client key).
        bodies: add the request's and a whole response's body (``log_bodies``).
    """
    facts = record.facts
    line: dict[str, Any] = {
        "time": _iso(now - record.duration_s),
        "request_id": record.request_id,
    }
    if facts is None:
        line.update(dict.fromkeys(_fact_fields(CallRecord)))
    else:
        for name in _fact_fields(type(facts)):
            line[name] = getattr(facts, name)
    line["method"] = record.method
    line["path"] = redact_target(record.target)
    line["status"] = record.status if record.status is not None else 499
    line["latency_ms"] = round(record.duration_s * 1000, 3)
    line["ttfb_ms"] = round(record.head_s * 1000, 3) if record.head_s is not None else None
    line["bytes_sent"] = record.bytes_sent
    line["client"] = record.client
    line["client_gone"] = record.client_gone
    if bodies:
        request_body, cut_in = _body(record.request_body, redact)
        response_body, cut_out = _body(record.response_body, redact)
        line["request_body"] = request_body if record.request_body else None
        line["response_body"] = response_body if record.response_body else None
        line["bodies_truncated"] = cut_in or cut_out
    # ASCII JSON: a client's lone surrogate (valid in JSON, not in UTF-8) cannot break a write.
    return redact(json.dumps(line, default=str, separators=(",", ":")))
