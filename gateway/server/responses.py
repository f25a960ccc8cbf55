"""Response heads and bodies: the one place that knows our standard headers.

Every response carries ``date``, ``server``, ``x-request-id`` and
``x-gateway-overhead-ms`` (design.md, Front-end endpoints). Fixed bodies get a
``content-length``; streams go out chunked. ``connection: close`` is added by
the connection loop only after protocol errors, 408 and 413 (and while the
server drains), never after an ordinary 4xx: SDKs pool their connections.
"""

from __future__ import annotations

import http
import json
import time
from email.utils import formatdate
from typing import Any

__all__ = [
    "JSON",
    "REASONS",
    "SSE",
    "Headers",
    "date_header",
    "dump_json",
    "standard_headers",
]

Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
SSE = b"text/event-stream"
SERVER = b"gateway"

_date_cache: tuple[int, bytes] = (0, b"")

#: Reason phrases by status (h11 sends none unless given one).
REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}
REASONS[529] = b"Overloaded"


def date_header() -> bytes:
    """The HTTP date of now, recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def dump_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as every body we write."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_headers(request_id: str, overhead_s: float) -> Headers:
    """The headers every response carries."""
    return [
        (b"date", date_header()),
        (b"server", SERVER),
        (b"x-request-id", request_id.encode("ascii")),
        (b"x-gateway-overhead-ms", b"%.3f" % (overhead_s * 1000)),
    ]
