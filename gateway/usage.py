"""Token usage read from providers' answers, for ``gateway_tokens_total`` and the access log.

Same-format answers go to the client as the provider's bytes, undecoded (the
gateway's fast path), so usage is read the cheap way: the format's usage key
(OpenAI ``"usage"``, Anthropic ``"usage"`` at the top of ``message_delta`` and
inside ``message_start``'s message, Gemini ``"usageMetadata"``) is looked for
in the bytes (the format's wire ``USAGE_MARKER``), and only the JSON object right
after it is decoded, through the format's own ``read_usage`` so the counts mean
what the converters' counts mean (the whole prompt in, reasoning included out).
Converted answers need none of this: their canonical events and responses carry
:class:`Usage`.

Usage objects are snapshots, not increments: OpenAI's final chunk, Gemini's
cumulative ``usageMetadata`` on the last chunks, Anthropic's ``message_delta``
(which updates what ``message_start`` said): the last one wins, so nothing is
counted twice.

Bounds: each decode reads at most :data:`WINDOW` bytes past the key, a decoded
object's bytes are not searched again, and after :data:`MAX_MISSES` keys that
were not followed by a readable object a reader stops looking. So a hostile
provider that fills its stream with usage keys costs a few hundred KiB of
decoding at most; a usage object it makes up only changes a metric. Counts
are clamped to ``0 .. 2**53``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.convert.model import Usage
from gateway.formats import FORMATS

__all__ = ["MAX_MISSES", "WINDOW", "UsageReader", "clamp_tokens"]

#: Most bytes after a usage key decoded to find its object (real ones are < 1 KiB).
WINDOW = 4096
#: Usage keys without a readable object after them before a reader gives up.
MAX_MISSES = 64
_MAX_COUNT = 2**53

#: ``: {`` after a key, with the little whitespace pretty-printed JSON puts around the colon.
_OBJECT_AFTER_KEY = re.compile(rb"[ \t\r\n]{0,256}:[ \t\r\n]{0,256}\{")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a token count")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def clamp_tokens(count: int) -> int:
    """A count fit for a counter: never negative, never past 2**53."""
    return min(max(count, 0), _MAX_COUNT)


def _value_start(data: bytes, at: int) -> int:
    """Where the object after the key ending at ``at`` starts, or -1 (null, not an object)."""
    match = _OBJECT_AFTER_KEY.match(data, at)
    return match.end() - 1 if match else -1


class UsageReader:
    """The usage a provider reported in one answer of format ``fmt``.

    Feed a stream's bytes (whole events) to :meth:`scan`, or a whole answer to
    :meth:`read_object` (a decoded one); :attr:`usage` is the latest snapshot, None until one came.
    """

    __slots__ = ("_expected", "_key", "_marker", "_misses", "_wire", "usage")

    def __init__(self, fmt: str) -> None:
        known = FORMATS.get(fmt)
        self._wire = known.wire if known is not None else None
        self._marker = self._wire.USAGE_MARKER if self._wire is not None else None
        self._key = self._wire.USAGE_KEY if self._wire is not None else None
        self._expected = self._wire.USAGE_FIELDS if self._wire is not None else ()
        self._misses = 0
        self.usage: Usage | None = None

    def _decode(self, data: bytes, start: int) -> tuple[dict[str, Any] | None, int]:
        """The usage object at ``start`` and the offset after it (None and -1 if unreadable)."""
        text = data[start : start + WINDOW].decode("utf-8", "replace")
        try:
            obj, end = _DECODER.raw_decode(text)
        except (ValueError, RecursionError):
            self._misses += 1
            return None, -1
        if not isinstance(obj, dict) or not any(k in obj for k in self._expected):
            self._misses += 1
            return None, start + len(text[:end].encode("utf-8", "replace"))
        return obj, start + len(text[:end].encode("utf-8", "replace"))

    def _apply(self, obj: Mapping[str, Any]) -> None:
        if self._wire is None:
            return
        try:  # Anthropic's message_delta updates what message_start said
            self.usage = self._wire.read_usage(obj, self.usage)
        except (ValueError, OverflowError, TypeError):
            self._misses += 1

    def scan(self, data: bytes) -> None:
        """Read every usage object in ``data`` (whole SSE events), in order."""
        marker = self._marker
        if marker is None or self._misses >= MAX_MISSES:
            return
        at = data.find(marker)
        while at >= 0 and self._misses < MAX_MISSES:
            after = at + len(marker)
            start = _value_start(data, after)
            if start < 0:  # "usage": null and the like: nothing to decode
                at = data.find(marker, after)
                continue
            obj, end = self._decode(data, start)
            if obj is not None:
                self._apply(obj)
            at = data.find(marker, end if end > 0 else after)

    def read_object(self, answer: Mapping[str, Any]) -> None:
        """Read a whole answer already decoded (its top-level usage object), in O(1)."""
        key = self._key
        obj = answer.get(key) if key else None
        if isinstance(obj, dict) and any(k in obj for k in self._expected):
            self._apply(obj)
