"""Relaying a started stream to the client: framing, the two relays, the relay loop.

Theory of operation (design.md, "Streaming and cancellation"; wire-formats.md
§4.15 "Mid-stream"). Once a provider answered a streaming call 2xx, the client
has its status and :func:`relay_stream` moves the provider's bytes over, through
one of two relays the call's adapter made (:mod:`gateway.proxy.adapters`):

- :class:`FramedRelay` when the client speaks the provider's format: the
  events are relayed without decoding and re-encoding, but only *whole* events
  go to the client: :class:`EventFramer` holds back the tail after the last
  blank line. So when the provider breaks off mid-event, the client never sees
  half an event followed by our error event (which would corrupt its parser),
  and keep-alives are only ever written between events. Usage is read from
  the bytes (:class:`gateway.usage.UsageReader`), and the last pieces are
  searched for the format's end markers;
- :class:`ConvertingRelay` otherwise: SSE decoder -> the provider format's
  stream parser -> canonical events -> the client format's stream renderer.

Both give the client's in-stream error event (the format's renderer's,
:func:`stream_error`) for a failure after the status, and pass every byte
through the request's redactor. Keep-alives (each format's wire ``KEEPALIVE``)
go out while the first bytes take their time (:mod:`gateway.proxy.keepalive`);
after them, each gap between reads is bounded by the file's ``idle`` timeout.

Pure but for :func:`relay_stream`, which owns the loop over the provider's body.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from gateway import sse
from gateway.convert.model import MessageStart, StreamError, Usage, UsageUpdate
from gateway.errors import ErrorKind
from gateway.formats import FORMATS
from gateway.proxy.keepalive import with_keepalives
from gateway.redact import NO_REDACTION, Redactor
from gateway.sse import SSEDecoder, SSEError
from gateway.usage import UsageReader

if TYPE_CHECKING:
    import httpx

    from gateway.formats.format import StreamParser, StreamRenderer
    from gateway.server.exchange import Exchange
    from gateway.transformers.model import Transformer

__all__ = [
    "ConvertingRelay",
    "EventFramer",
    "FramedRelay",
    "Relay",
    "relay_stream",
    "stream_error",
]


# -- framing and in-stream errors -------------------------------------------------------------

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


# -- the relays --------------------------------------------------------------------------------

#: Pieces of a same-format stream kept to look for its terminal event at the end: the
#: event with the stop reason is at most third from last (OpenAI: finish chunk, usage
#: chunk, ``[DONE]``), and a piece holds whole events.
_TAIL_PIECES = 3


class FramedRelay:
    """Same-format stream: whole upstream events, unchanged but for redacted secrets
    (their usage read on the way).

    Events are not decoded, but the last pieces relayed are searched for the format's
    terminal markers (its wire's ``TERMINAL_MARKERS``: bytes that only a stream's last
    event, or an error event, holds) when the upstream ends (O(1) per event), so that
    a stream that ends without one ends with an error event instead of looking
    complete (item 12 of issue 8). The event that carries the stop reason counts, as
    for the converting parsers (OpenAI's ``finish_reason`` without ``[DONE]``, which
    some compatible servers never send; Anthropic's ``message_delta`` without
    ``message_stop``): the answer is whole by then.

    Redaction runs on whole events (the framer's output), so a key split over two
    reads is still seen whole.
    """

    def __init__(self, fmt: str, redactor: Redactor = NO_REDACTION) -> None:
        self._fmt = fmt
        self._framer = EventFramer()
        self._redact = redactor.data
        self._usage = UsageReader(fmt)
        known = FORMATS.get(fmt)
        self._terminal = known.wire.TERMINAL_MARKERS if known is not None else ()
        #: The last few pieces relayed: the terminal event is among the last ones.
        self._tail: deque[bytes] = deque(maxlen=_TAIL_PIECES)

    ended = False  # the relay never ends a stream early itself

    @property
    def usage(self) -> Usage | None:
        """The provider's latest usage snapshot in the stream so far."""
        return self._usage.usage

    def feed(self, chunk: bytes) -> bytes:
        return self._redact(self._read(self._framer.feed(chunk)))

    def finish(self) -> bytes:
        rest = self._redact(self._read(self._framer.flush()))
        if self._complete():
            return rest
        return rest + self.error(
            ErrorKind.API_ERROR, 502, "The upstream stream ended before the response was complete."
        )

    def _complete(self) -> bool:
        """Whether the stream's last pieces hold its terminal event (or an error event)."""
        if not self._terminal:
            return True
        return any(marker in piece for piece in self._tail for marker in self._terminal)

    def _read(self, out: bytes) -> bytes:
        if out:
            self._usage.scan(out)
            self._tail.append(out)
        return out

    def error(self, kind: ErrorKind, status: int, message: str) -> bytes:
        return self._redact(stream_error(self._fmt, kind, status, message))


class ConvertingRelay:
    """Provider SSE bytes -> canonical events -> the client's SSE bytes."""

    def __init__(
        self, parser: StreamParser, renderer: StreamRenderer, redactor: Redactor = NO_REDACTION
    ) -> None:
        self._decoder = SSEDecoder()
        self._parser = parser
        self._renderer = renderer
        self._redact = redactor.data
        #: The provider's latest usage snapshot (from its canonical events).
        self.usage: Usage | None = None
        #: An error event went out (the provider's or ours): the stream is over.
        self.ended = False

    def _render_canonical(self, canonical: list[Any], out: list[bytes]) -> bool:
        """Render ``canonical`` into ``out``; True once an error event ended the stream."""
        render = self._renderer.render
        for c in canonical:
            kind = type(c)  # exact types, one look-up per event (the hot path)
            if kind is UsageUpdate or (kind is MessageStart and c.usage is not None):
                self.usage = c.usage
            out.append(render(c))
            if kind is StreamError:
                self.ended = True
                return True
        return False

    def _render(self, events: list[sse.Event]) -> list[bytes]:
        out: list[bytes] = []
        for ev in events:
            if self._render_canonical(self._parser.feed(ev), out):
                return out
        return out

    def feed(self, chunk: bytes) -> bytes:
        return self._redact(b"".join(self._render(self._decoder.feed(chunk))))

    def finish(self) -> bytes:
        out = self._render(self._decoder.close())
        self._render_canonical(self._parser.finish(), out)
        out.append(self._renderer.finish())
        return self._redact(b"".join(out))

    def error(self, kind: ErrorKind, status: int, message: str) -> bytes:
        self.ended = True
        return self._redact(self._renderer.render(StreamError(kind, message, status)))


#: Either relay (what an adapter's ``relay()`` gives).
Relay = FramedRelay | ConvertingRelay


# -- the relay loop ----------------------------------------------------------------------------


async def relay_stream(
    ex: Exchange,
    t: Transformer,
    resp: httpx.Response,
    relay: Relay,
    first_byte: trio.CancelScope,
    *,
    keepalive_s: float,
) -> None:
    """Relay a started stream from ``resp`` to ``ex``, idle-bounded, through ``relay``.

    Keep-alives go out every ``keepalive_s`` until the first bytes come (within the
    try's ``first_byte`` scope, whose deadline is lifted then); after that each gap
    is bounded by ``t.timeouts.idle``, past which the client gets an in-stream 504.
    The stream ends with the relay's ``finish()`` unless an error event ended it.
    """
    chunks = resp.aiter_bytes().__aiter__()
    first = await with_keepalives(ex, ex.dialect.name, _next_or_none(chunks), keepalive_s)
    first_byte.deadline = math.inf
    if first is not None:
        await ex.send(relay.feed(first))
        while not relay.ended:
            with trio.move_on_after(t.timeouts.idle) as idle:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
            if idle.cancelled_caught:
                message = (
                    f"Provider {t.name!r} went silent for longer than its idle "
                    f"timeout ({t.timeouts.idle:g} s)."
                )
                await ex.send(relay.error(ErrorKind.API_ERROR, 504, message))
                return
            out = relay.feed(chunk)
            if out:
                await ex.send(out)
    if not relay.ended:  # after an error event nothing more goes out
        await ex.send(relay.finish())


async def _next_or_none(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None
