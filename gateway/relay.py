"""Stream framing, keep-alives and in-stream errors, per client format. Pure.

Same-format streams are relayed without decoding and re-encoding events, but
only *whole* events go to the client: :class:`EventFramer` holds back the tail
after the last blank line. So when the provider breaks off mid-event, the
client never sees half an event followed by our error event (which would
corrupt its parser), and keep-alives are only ever written between events.

Keep-alives (design.md, "Response status and keep-alives"): an SSE comment to
OpenAI clients, ``event: ping`` to Anthropic clients, and a bare empty line to
Gemini clients (google-genai parses any non-``data:`` line as JSON).
In-stream errors follow wire-formats.md §4.15 "Mid-stream".
"""

from __future__ import annotations

from gateway.convert import CODECS
from gateway.errors import ErrorKind
from gateway.sse import SSEError

__all__ = ["KEEPALIVE", "EventFramer", "stream_error"]

KEEPALIVE = {
    "openai": b": keep-alive\n\n",
    "anthropic": b'event: ping\ndata: {"type":"ping"}\n\n',
    "gemini": b"\r\n",
}

#: Most bytes of one event held back while waiting for its end.
MAX_PENDING_BYTES = 16 * 1024 * 1024

_BOUNDARIES = (b"\n\n", b"\r\r", b"\n\r\n")


def stream_error(fmt: str, kind: ErrorKind, status: int, message: str) -> bytes:
    """The in-stream error event of ``fmt`` (the stream then ends): the format's renderer's."""
    return CODECS[fmt].stream_error(kind, message, status=status)


class EventFramer:
    """Cuts a raw SSE byte stream at event boundaries."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """The whole events completed by ``chunk`` (possibly b"")."""
        data = self._pending + chunk if self._pending else chunk
        cut = -1
        for boundary in _BOUNDARIES:
            at = data.rfind(boundary)
            if at >= 0 and at + len(boundary) > cut:
                cut = at + len(boundary)
        if cut < 0:
            if len(data) > MAX_PENDING_BYTES:
                raise SSEError(f"an upstream event exceeded {MAX_PENDING_BYTES} bytes")
            self._pending = data
            return b""
        self._pending = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        """What is left when the upstream ends: a last event missing its blank line."""
        rest, self._pending = self._pending, b""
        if rest.strip():
            return rest + (b"\r\n\r\n" if rest.endswith(b"\r\n") else b"\n\n")
        return b""
