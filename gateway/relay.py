"""Stream framing, keep-alives and in-stream errors, per client format. Pure.

Same-format streams are relayed without decoding and re-encoding events, but
only *whole* events go to the client: :class:`EventFramer` holds back the tail
after the last blank line. So when the provider breaks off mid-event, the
client never sees half an event followed by our error event (which would
corrupt its parser), and keep-alives are only ever written between events.

Keep-alives (design.md, "Response status and keep-alives") and in-stream errors
(wire-formats.md §4.15 "Mid-stream") are each format's own: its wire module's
``KEEPALIVE`` and its stream renderer's error event (gateway.formats).
"""

from __future__ import annotations

import re

from gateway import sse
from gateway.errors import ErrorKind
from gateway.formats import FORMATS
from gateway.sse import SSEError

__all__ = ["EventFramer", "stream_error"]


_BOUNDARIES = (b"\n\n", b"\r\r", b"\n\r\n")
_BOUNDARY = re.compile(b"|".join(re.escape(b) for b in _BOUNDARIES))
#: Bytes a boundary can reach back into the previous read (the longest is 3 long).
_OVERLAP = max(len(b) for b in _BOUNDARIES) - 1


def stream_error(fmt: str, kind: ErrorKind, status: int, message: str) -> bytes:
    """The in-stream error event of ``fmt`` (the stream then ends): the format's renderer's."""
    return FORMATS[fmt].stream_error(kind, message, status=status)


class EventFramer:
    """Cuts a raw SSE byte stream at event boundaries, in time linear in the stream.

    The unfinished tail waits in one ``bytearray``; each read is searched only
    where a boundary can newly appear (its own bytes plus the last
    ``_OVERLAP`` bytes before it, where a ``\\n\\n`` or ``\\r\\n\\r\\n`` may
    straddle two reads), never the whole tail again. One event larger than
    ``max_event_bytes`` (default :data:`gateway.sse.MAX_EVENT_BYTES`, the
    converting decoder's limit too) raises :class:`SSEError`, which the proxy
    turns into an in-stream error in the client's format.
    """

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._pending = bytearray()
        self._max = sse.MAX_EVENT_BYTES if max_event_bytes is None else max_event_bytes

    def feed(self, chunk: bytes) -> bytes:
        """The whole events completed by ``chunk`` (possibly b"").

        Raises:
            SSEError: an event is larger than the cap.
        """
        pending = self._pending
        if not pending:
            if len(chunk) > self._max:
                self._check_events(chunk, 0)
            cut = _last_boundary_end(chunk, 0)
            if cut == len(chunk):  # the hot path: reads that end on an event boundary
                return chunk
            if cut < 0:
                pending += chunk
                return b""
            pending += memoryview(chunk)[cut:]
            return chunk[:cut]
        start = max(0, len(pending) - _OVERLAP)
        pending += chunk
        if len(pending) > self._max:
            self._check_events(pending, start)
        cut = _last_boundary_end(pending, start)
        if cut < 0:
            return b""
        out = bytes(pending[:cut])
        del pending[:cut]  # what is left lies within this read: cost O(len(chunk))
        return out

    def _check_events(self, data: bytes | bytearray, start: int) -> None:
        """Raise if an event in ``data`` (no boundary before ``start``) is over the cap."""
        begin = 0
        for m in _BOUNDARY.finditer(data, start):
            if m.end() - begin > self._max:
                break
            begin = m.end()
        else:
            if len(data) - begin <= self._max:
                return
        self._pending = bytearray()
        raise SSEError(f"an upstream event exceeded {self._max} bytes")

    def flush(self) -> bytes:
        """What is left when the upstream ends: a last event missing its blank line."""
        rest, self._pending = bytes(self._pending), bytearray()
        if rest.strip():
            return rest + (b"\r\n\r\n" if rest.endswith(b"\r\n") else b"\n\n")
        return b""


def _last_boundary_end(data: bytes | bytearray, start: int) -> int:
    """The end of the last event boundary in ``data[start:]``, or -1."""
    cut = -1
    for boundary in _BOUNDARIES:
        at = data.rfind(boundary, start)
        if at >= 0 and at + len(boundary) > cut:
            cut = at + len(boundary)
    return cut
